#include "bench/serving/StepCostModel.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <nlohmann/json.hpp>

#include "ir/Error.h"
#include "runtime/Sampler.h"

namespace pagedc::bench {

StepShape StepShape::of(const StepPlan& plan) {
  StepShape s;
  s.numTokens = plan.numTokens();
  s.numLogits = plan.numLogits();
  for (const ScheduledSequence& seq : plan.seqs) {
    const auto q = static_cast<int64_t>(seq.tokens.size());
    if (q == 1) {
      s.decodeContext += seq.contextLen;
    } else {
      // Query i of the chunk (0-based) attends to the prior context and to queries 0..i.
      const int64_t prior = seq.contextLen - q;
      s.prefillAttention += q * prior + q * (q + 1) / 2;
    }
  }
  s.copiedBlocks = static_cast<int64_t>(plan.swapOut.size() + plan.swapIn.size() + plan.copies.size());
  return s;
}

namespace {

std::vector<int64_t> powerOfTwoKnots(int64_t max) {
  std::vector<int64_t> knots;
  for (int64_t k = 1; k < max; k *= 2) knots.push_back(k);
  knots.push_back(max);
  return knots;
}

// Hat-function weights of x on the knots: piecewise-linear interpolation, linear extrapolation
// past the ends. Returns (index of the left knot, weight of the left knot).
std::pair<size_t, double> hat(const std::vector<int64_t>& knots, double x) {
  size_t i = 0;
  while (i + 2 < knots.size() && x > static_cast<double>(knots[i + 1])) ++i;
  const auto left = static_cast<double>(knots[i]), right = static_cast<double>(knots[i + 1]);
  return {i, (right - x) / (right - left)};
}

double interpolate(const std::vector<int64_t>& knots, const std::vector<double>& values, double x) {
  if (knots.size() == 1) return values[0];
  auto [i, w] = hat(knots, x);
  return w * values[i] + (1.0 - w) * values[i + 1];
}

// Solves the (small, dense) normal equations A x = b by Gaussian elimination with partial pivoting.
std::vector<double> solve(std::vector<std::vector<double>> a, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t col = 0; col < n; ++col) {
    size_t pivot = col;
    for (size_t r = col + 1; r < n; ++r)
      if (std::abs(a[r][col]) > std::abs(a[pivot][col])) pivot = r;
    if (std::abs(a[pivot][col]) < 1e-300) fail("step cost model: the calibration samples do not determine parameter ", col);
    std::swap(a[col], a[pivot]);
    std::swap(b[col], b[pivot]);
    for (size_t r = col + 1; r < n; ++r) {
      const double f = a[r][col] / a[col][col];
      for (size_t c = col; c < n; ++c) a[r][c] -= f * a[col][c];
      b[r] -= f * b[col];
    }
  }
  std::vector<double> x(n);
  for (size_t r = n; r-- > 0;) {
    double sum = b[r];
    for (size_t c = r + 1; c < n; ++c) sum -= a[r][c] * x[c];
    x[r] = sum / a[r][r];
  }
  return x;
}

}  // namespace

StepCostModel StepCostModel::fit(const std::vector<Sample>& samples, int64_t maxTokens) {
  if (maxTokens < 2) fail("step cost model: maxTokens must be >= 2, got ", maxTokens);
  StepCostModel m;
  m.knots_ = powerOfTwoKnots(maxTokens);
  // H's knots reach the most logits rows measured (larger batches extrapolate linearly).
  int64_t maxLogits = 2;
  for (const Sample& s : samples) maxLogits = std::max(maxLogits, s.shape.numLogits);
  m.hKnots_ = powerOfTwoKnots(maxLogits);
  const size_t k = m.knots_.size();
  const size_t kh = m.hKnots_.size();
  // Parameters: G at every knot, H at every H knot but the first (H(1) = 0), then a, p, b.
  const size_t numParams = k + (kh - 1) + 3;
  if (samples.size() < numParams) fail("step cost model: ", samples.size(), " samples cannot fit ", numParams, " parameters");
  std::vector<std::vector<double>> rows;
  std::vector<double> targets;
  for (const Sample& s : samples) {
    if (!(s.seconds > 0)) fail("step cost model: a sample of ", s.shape.numTokens, " tokens took ", s.seconds, " s");
    std::vector<double> row(numParams, 0.0);
    if (s.shape.numTokens > 0) {
      auto [i, w] = hat(m.knots_, static_cast<double>(s.shape.numTokens));
      row[i] += w;
      row[i + 1] += 1.0 - w;
    }
    if (s.shape.numLogits > 1) {
      auto [i, w] = hat(m.hKnots_, static_cast<double>(s.shape.numLogits));
      if (i > 0) row[k + i - 1] += w;  // H(knot 0 = 1) is fixed at 0
      row[k + i] += 1.0 - w;
    }
    const size_t linear = k + kh - 1;
    row[linear] = static_cast<double>(s.shape.decodeContext);
    row[linear + 1] = static_cast<double>(s.shape.prefillAttention);
    row[linear + 2] = static_cast<double>(s.shape.copiedBlocks);
    // Relative error: each equation divided by its measurement.
    for (double& v : row) v /= s.seconds;
    rows.push_back(std::move(row));
    targets.push_back(1.0);
  }
  // Columns scaled to unit maximum so the feature magnitudes (1 vs millions of key pairs) do not
  // swamp the elimination; a tiny ridge keeps knots no sample reaches from making it singular.
  std::vector<double> scale(numParams, 0.0);
  for (const auto& row : rows)
    for (size_t c = 0; c < numParams; ++c) scale[c] = std::max(scale[c], std::abs(row[c]));
  for (size_t c = 0; c < numParams; ++c) {
    if (scale[c] == 0.0) {
      if (c < k) fail("step cost model: no calibration sample has about ", m.knots_[c], " tokens");
      if (c < k + kh - 1) fail("step cost model: no calibration sample has about ", m.hKnots_[c - k + 1], " logits rows");
      scale[c] = 1.0;  // an unused linear term (e.g. no block copies measured) stays 0
    }
  }
  std::vector<std::vector<double>> ata(numParams, std::vector<double>(numParams, 0.0));
  std::vector<double> atb(numParams, 0.0);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t i = 0; i < numParams; ++i) {
      const double xi = rows[r][i] / scale[i];
      atb[i] += xi * targets[r];
      for (size_t j = 0; j < numParams; ++j) ata[i][j] += xi * rows[r][j] / scale[j];
    }
  }
  for (size_t i = 0; i < numParams; ++i) ata[i][i] += 1e-9;
  std::vector<double> x = solve(ata, atb);
  for (size_t c = 0; c < numParams; ++c) x[c] /= scale[c];
  m.g_.assign(x.begin(), x.begin() + static_cast<ptrdiff_t>(k));
  m.h_.assign(1, 0.0);
  m.h_.insert(m.h_.end(), x.begin() + static_cast<ptrdiff_t>(k), x.begin() + static_cast<ptrdiff_t>(k + kh - 1));
  m.a_ = x[k + kh - 1];
  m.p_ = x[k + kh];
  m.b_ = x[k + kh + 1];
  m.samples_ = samples;
  std::vector<double> errors;
  for (const Sample& s : samples) errors.push_back(std::abs(m.seconds(s.shape) - s.seconds) / s.seconds);
  std::ranges::sort(errors);
  m.medianError_ = errors[errors.size() / 2];
  m.maxError_ = errors.back();
  return m;
}

double StepCostModel::seconds(const StepShape& shape) const {
  double t = 0.0;
  if (shape.numTokens > 0) t += interpolate(knots_, g_, static_cast<double>(shape.numTokens));
  if (shape.numLogits > 1) t += interpolate(hKnots_, h_, static_cast<double>(shape.numLogits));
  t += a_ * static_cast<double>(shape.decodeContext) + p_ * static_cast<double>(shape.prefillAttention) +
       b_ * static_cast<double>(shape.copiedBlocks);
  return std::max(t, 0.0) + sampling_ * static_cast<double>(shape.numLogits);
}

nlohmann::json StepCostModel::toJson() const {
  nlohmann::json samples = nlohmann::json::array();
  for (const Sample& s : samples_)
    samples.push_back({{"tokens", s.shape.numTokens}, {"logits", s.shape.numLogits}, {"decode_context", s.shape.decodeContext},
                       {"prefill_attention", s.shape.prefillAttention}, {"copied_blocks", s.shape.copiedBlocks}, {"seconds", s.seconds}});
  return {{"description", description}, {"knots", knots_}, {"g", g_}, {"h_knots", hKnots_}, {"h", h_}, {"seconds_per_decode_key", a_},
          {"seconds_per_prefill_pair", p_}, {"seconds_per_copied_block", b_}, {"seconds_per_sampled_row", sampling_}, {"median_relative_error", medianError_},
          {"max_relative_error", maxError_}, {"samples", samples}};
}

StepCostModel StepCostModel::fromJson(const nlohmann::json& j) {
  auto field = [&](const char* name) -> const nlohmann::json& {
    if (!j.is_object() || !j.contains(name)) fail("step cost model: missing field '", name, "'");
    return j.at(name);
  };
  StepCostModel m;
  try {
    m.description = field("description").get<std::string>();
    m.knots_ = field("knots").get<std::vector<int64_t>>();
    m.g_ = field("g").get<std::vector<double>>();
    m.hKnots_ = field("h_knots").get<std::vector<int64_t>>();
    m.h_ = field("h").get<std::vector<double>>();
    m.a_ = field("seconds_per_decode_key").get<double>();
    m.p_ = field("seconds_per_prefill_pair").get<double>();
    m.b_ = field("seconds_per_copied_block").get<double>();
    m.sampling_ = field("seconds_per_sampled_row").get<double>();
    m.medianError_ = field("median_relative_error").get<double>();
    m.maxError_ = field("max_relative_error").get<double>();
    for (const auto& s : field("samples"))
      m.samples_.push_back({{s.at("tokens").get<int64_t>(), s.at("logits").get<int64_t>(), s.at("decode_context").get<int64_t>(),
                             s.at("prefill_attention").get<int64_t>(), s.at("copied_blocks").get<int64_t>()},
                            s.at("seconds").get<double>()});
  } catch (const nlohmann::json::exception& e) {
    fail("step cost model: ", e.what());
  }
  if (m.knots_.size() < 2 || m.g_.size() != m.knots_.size())
    fail("step cost model: 'knots' and 'g' must have the same length (at least 2), got ", m.knots_.size(), " and ", m.g_.size());
  if (m.hKnots_.size() < 2 || m.h_.size() != m.hKnots_.size())
    fail("step cost model: 'h_knots' and 'h' must have the same length (at least 2), got ", m.hKnots_.size(), " and ", m.h_.size());
  for (const auto* knots : {&m.knots_, &m.hKnots_})
    for (size_t i = 1; i < knots->size(); ++i)
      if ((*knots)[i] <= (*knots)[i - 1]) fail("step cost model: knots must increase, got ", (*knots)[i - 1], " then ", (*knots)[i]);
  return m;
}

namespace {

double timeIt(ModelRunner& runner, const StepPlan& plan, int repetitions) {
  runner.execute(plan);  // warm-up: primitives for this shape, caches
  std::vector<double> times;
  for (int r = 0; r < repetitions; ++r) {
    auto start = std::chrono::steady_clock::now();
    runner.execute(plan);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::ranges::sort(times);
  return times[times.size() / 2];
}

// numSeqs sequences, each computing `query` tokens after `prior` tokens of context, on disjoint
// block ranges of the pool.
StepPlan makePlan(const ModelFacts& facts, int64_t numSeqs, int64_t query, int64_t prior, int64_t poolBlocks) {
  const int64_t bs = facts.blockSize;
  const int64_t blocksPerSeq = (prior + query + bs - 1) / bs;
  if (numSeqs * blocksPerSeq > poolBlocks)
    fail("step cost calibration: ", numSeqs, " sequences of ", prior + query, " tokens need ", numSeqs * blocksPerSeq,
         " blocks; the runner has ", poolBlocks);
  StepPlan plan;
  for (int64_t s = 0; s < numSeqs; ++s) {
    ScheduledSequence seq;
    seq.requestId = "calibration-" + std::to_string(s);
    seq.seq = s;
    for (int64_t b = 0; b < blocksPerSeq; ++b) seq.blockTable.push_back(s * blocksPerSeq + b);
    for (int64_t p = prior; p < prior + query; ++p) {
      seq.tokens.push_back(static_cast<TokenId>((s * 7919 + p * 104729) % facts.vocabSize));
      seq.positions.push_back(p);
      seq.slots.push_back(seq.blockTable[static_cast<size_t>(p / bs)] * bs + p % bs);
    }
    seq.contextLen = prior + query;
    seq.isPrompt = query > 1;
    seq.needsLogits = true;
    seq.sampleSeqs = {s};
    plan.seqs.push_back(std::move(seq));
  }
  return plan;
}

}  // namespace

double measureSamplingSeconds(int64_t vocab) {
  std::vector<float> row(static_cast<size_t>(vocab));
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& v : row) v = normal(rng);
  Sampler sampler;
  SamplingParams params;
  params.temperature = 0.0;
  SamplerRng samplerRng = SamplerRng::seeded(1);
  std::vector<int64_t> prompt = {1, 2, 3}, output;
  std::vector<double> times;
  for (int rep = 0; rep < 9; ++rep) {
    auto start = std::chrono::steady_clock::now();
    double sink = 0.0;
    for (int i = 0; i < 50; ++i) {
      SampledToken t = sampler.sample(row, params, TokenHistory{prompt, output}, samplerRng);
      sink += computeLogprobs(std::span<const float>(row), t.tokenId, 0).logprob;
    }
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 50 + sink * 0.0);
  }
  std::ranges::sort(times);
  return times[times.size() / 2];
}

StepCostModel calibrateStepCost(ModelRunner& runner, const CalibrationOptions& options) {
  const ModelFacts& facts = runner.facts();
  const int64_t poolBlocks = runner.numDeviceBlocks();
  const int64_t poolTokens = poolBlocks * facts.blockSize;
  const int64_t maxLen = facts.maxPositions > 0 ? std::min(facts.maxPositions, options.maxModelLen) : options.maxModelLen;
  std::vector<StepCostModel::Sample> samples;
  auto measure = [&](StepPlan plan, const char* what) {
    StepShape shape = StepShape::of(plan);
    double seconds = timeIt(runner, plan, options.repetitions);
    if (options.verbose)
      std::fprintf(stderr, "calibration: %-8s tokens %5lld logits %4lld decode keys %7lld prefill pairs %9lld blocks %3lld: %8.3f ms\n", what,
                   static_cast<long long>(shape.numTokens), static_cast<long long>(shape.numLogits),
                   static_cast<long long>(shape.decodeContext), static_cast<long long>(shape.prefillAttention),
                   static_cast<long long>(shape.copiedBlocks), seconds * 1e3);
    samples.push_back({shape, seconds});
  };
  // Decode batches at a short and a long context: G + H at each batch knot, and the per-key cost.
  for (int64_t batch = 1; batch <= options.maxSeqs; batch *= 2) {
    const int64_t longContext = std::clamp<int64_t>(std::min(poolTokens, int64_t{32768}) / batch, 32, maxLen - 1);
    for (int64_t context : {int64_t{16}, std::min<int64_t>(256, longContext), longContext}) {
      if (context == longContext && context == 256) continue;
      if (batch * (context + facts.blockSize) > poolTokens) continue;
      measure(makePlan(facts, batch, 1, context - 1, poolBlocks), "decode");
    }
  }
  // Single prompts at every knot (one logits row): G alone, plus their causal attention.
  for (int64_t tokens = 2; tokens <= options.maxTokens; tokens *= 2)
    if (tokens <= maxLen && tokens + facts.blockSize <= poolTokens) measure(makePlan(facts, 1, tokens, 0, poolBlocks), "prompt");
  // Chunks over prior context and several prompts per step: the same token counts with other
  // attention work, which separates the attention terms from G.
  for (int64_t prior : {512, 1024, 1536})
    if (prior + 256 < maxLen && prior + 256 + facts.blockSize <= poolTokens) measure(makePlan(facts, 1, 256, prior, poolBlocks), "chunk");
  for (auto [seqs, len] : {std::pair<int64_t, int64_t>{8, 256}, {32, 64}, {4, 512}, {16, 128}})
    if (seqs * len <= options.maxTokens && seqs * (len + facts.blockSize) <= poolTokens) measure(makePlan(facts, seqs, len, 0, poolBlocks), "prompts");
  // Block copies: a batch-1 decode step with 32, 64 and 128 blocks swapped out and as many in,
  // against the same step without; the median per-block difference.
  std::vector<double> perBlock;
  const int64_t hostBlocks = runner.numHostBlocks();
  const StepPlan base = makePlan(facts, 1, 1, 15, poolBlocks);
  for (int64_t blocks : {32, 64, 128}) {
    if (hostBlocks < blocks || poolBlocks < 2 * blocks + 2) break;
    StepPlan plan = base;
    for (int64_t i = 0; i < blocks; ++i) {
      plan.swapOut.push_back({poolBlocks - 1 - i, i});
      plan.swapIn.push_back({i, poolBlocks - 1 - blocks - i});
    }
    const double without = timeIt(runner, base, options.repetitions);
    const double with = timeIt(runner, plan, options.repetitions);
    perBlock.push_back(std::max(0.0, with - without) / static_cast<double>(2 * blocks));
    if (options.verbose)
      std::fprintf(stderr, "calibration: swap     %lld blocks out and in: %8.3f ms against %8.3f ms\n", static_cast<long long>(blocks), with * 1e3,
                   without * 1e3);
  }
  StepCostModel model = StepCostModel::fit(samples, options.maxTokens);
  model.setSecondsPerSampledRow(measureSamplingSeconds(facts.vocabSize));
  if (!perBlock.empty()) {
    std::ranges::sort(perBlock);
    model.setSecondsPerCopiedBlock(perBlock[perBlock.size() / 2]);
  }
  return model;
}

}  // namespace pagedc::bench
