#include "bench/serving/Workload.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "ir/Error.h"
#include "runtime/tokenizer/Tokenizer.h"

namespace pagedc::bench {

namespace {

// Independent streams from one seed (splitmix64 of seed and the stream's number).
uint64_t streamSeed(uint64_t seed, uint64_t stream) {
  uint64_t x = seed + 0x9e3779b97f4a7c15ull * (stream + 1);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A length distribution: lognormal(mu, sigma), rounded, at least 1.
struct LogNormalLength {
  double targetMean = 0.0;
  double sigma = 0.0;
  double mu = 0.0;
  int64_t draw(std::mt19937_64& rng) const {
    std::lognormal_distribution<double> d(mu, sigma);
    return std::max<int64_t>(1, std::llround(d(rng)));
  }
};

struct PairDistribution {
  LogNormalLength prompt, output;
  // Draws (prompt, output) with prompt + output + prefix <= maxModelLen, redrawing longer pairs (the
  // paper's traces were filtered to the model's context the same way).
  std::pair<int64_t, int64_t> draw(std::mt19937_64& rng, int64_t room) const {
    for (int attempt = 0; attempt < 10000; ++attempt) {
      int64_t p = prompt.draw(rng), o = output.draw(rng);
      if (p + o <= room) return {p, o};
    }
    fail("workload: no prompt/output pair fits in ", room, " tokens after 10000 draws");
  }
};

// Chooses mu for each length so that the means after rounding and the length filter land on the
// targets: a few fixed-point rounds on a fixed internal sample (deterministic, independent of seed).
PairDistribution calibrated(double promptMean, double promptSigma, double outputMean, double outputSigma, int64_t room) {
  PairDistribution d;
  d.prompt = {promptMean, promptSigma, std::log(promptMean) - promptSigma * promptSigma / 2};
  d.output = {outputMean, outputSigma, std::log(outputMean) - outputSigma * outputSigma / 2};
  for (int round = 0; round < 6; ++round) {
    std::mt19937_64 rng(12345);
    double sp = 0.0, so = 0.0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      auto [p, o] = d.draw(rng, room);
      sp += static_cast<double>(p);
      so += static_cast<double>(o);
    }
    d.prompt.mu += std::log(promptMean / (sp / n));
    d.output.mu += std::log(outputMean / (so / n));
  }
  return d;
}

// The PagedAttention paper's traces: ShareGPT (mean 161 prompt / 338 output tokens, long tails: real
// conversations) and Alpaca (19 / 58, instructions with short, more uniform lengths). Lognormal
// fits the right-skewed, heavy-tailed histograms of both (the paper's Figure 11); the sigmas are
// chosen so that ShareGPT's tails reach a thousand tokens and beyond and Alpaca's stay short.
PairDistribution datasetDistribution(const std::string& dataset, int64_t room) {
  if (dataset == "sharegpt-synth") return calibrated(161, 1.0, 338, 0.9, room);
  if (dataset == "alpaca-synth") return calibrated(19, 0.6, 58, 0.8, room);
  fail("workload: dataset '", dataset, "' is not sharegpt-synth, alpaca-synth or a .jsonl file");
}

struct JsonlEntry {
  std::vector<TokenId> prompt;  // empty: synthetic of promptLen
  int64_t promptLen = 0;
  int64_t outputLen = 0;
};

std::vector<JsonlEntry> readJsonl(const WorkloadSpec& spec, const Tokenizer* tokenizer) {
  std::ifstream in(spec.dataset);
  if (!in) fail(spec.dataset, ": cannot open the workload file");
  std::vector<JsonlEntry> entries;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto where = [&] { return spec.dataset + ":" + std::to_string(number); };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail(where(), ": not JSON: ", e.what());
    }
    if (!j.is_object()) fail(where(), ": each line must be a JSON object");
    JsonlEntry e;
    auto positive = [&](const char* field) {
      const auto& v = j[field];
      if (!v.is_number_integer() || v.get<int64_t>() < 1) fail(where(), ": '", field, "' must be a positive integer, got ", v.dump());
      return v.get<int64_t>();
    };
    if (j.contains("prompt_token_ids")) {
      const auto& ids = j["prompt_token_ids"];
      if (!ids.is_array() || ids.empty()) fail(where(), ": 'prompt_token_ids' must be a non-empty list of token ids");
      for (const auto& id : ids) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= spec.vocabSize)
          fail(where(), ": 'prompt_token_ids' holds ", id.dump(), ", not a token id in [0, ", spec.vocabSize, ")");
        e.prompt.push_back(id.get<TokenId>());
      }
    } else if (j.contains("prompt")) {
      if (!j["prompt"].is_string()) fail(where(), ": 'prompt' must be a string");
      if (!tokenizer) fail(where(), ": a text 'prompt' needs the model's tokenizer.json (or give 'prompt_token_ids' or 'prompt_len')");
      for (int32_t id : tokenizer->encode(j["prompt"].get<std::string>(), true)) e.prompt.push_back(id);
      if (e.prompt.empty()) fail(where(), ": 'prompt' tokenizes to nothing");
    } else if (j.contains("prompt_len")) {
      e.promptLen = positive("prompt_len");
    } else {
      fail(where(), ": needs 'prompt', 'prompt_token_ids' or 'prompt_len'");
    }
    if (!e.prompt.empty()) e.promptLen = static_cast<int64_t>(e.prompt.size());
    e.outputLen = j.contains("output_len") ? positive("output_len") : spec.defaultOutputLen;
    if (spec.sharedPrefixTokens + e.promptLen + e.outputLen > spec.maxModelLen)
      fail(where(), ": ", spec.sharedPrefixTokens + e.promptLen, " prompt + ", e.outputLen, " output tokens exceed max_model_len ", spec.maxModelLen);
    entries.push_back(std::move(e));
  }
  if (entries.empty()) fail(spec.dataset, ": no requests in the file");
  return entries;
}

void validate(const WorkloadSpec& spec) {
  if (!(spec.rate > 0)) fail("workload: rate must be > 0 requests per second, got ", spec.rate);
  if (!(spec.burstiness > 0) || !std::isfinite(spec.burstiness)) fail("workload: burstiness must be > 0, got ", spec.burstiness);
  if (spec.durationSeconds < 0) fail("workload: duration must be >= 0 seconds, got ", spec.durationSeconds);
  if (spec.durationSeconds > 0 && std::isinf(spec.rate)) fail("workload: a duration needs a finite rate");
  if (spec.durationSeconds == 0 && spec.numRequests < 0) fail("workload: num_requests must be >= 0, got ", spec.numRequests);
  if (spec.parallelSamples < 1) fail("workload: n must be >= 1, got ", spec.parallelSamples);
  if (spec.beamWidth < 0 || spec.beamWidth == 1) fail("workload: beam width must be 0 (off) or >= 2, got ", spec.beamWidth);
  if (spec.beamWidth > 1 && spec.parallelSamples > 1) fail("workload: parallel sampling (n > 1) and beam search do not combine");
  if (spec.maxModelLen < 2) fail("workload: max_model_len must be >= 2, got ", spec.maxModelLen);
  if (spec.sharedPrefixTokens < 0 || spec.sharedPrefixTokens >= spec.maxModelLen - 1)
    fail("workload: the shared prefix must be in [0, max_model_len - 1), got ", spec.sharedPrefixTokens);
  if (spec.vocabSize < 2) fail("workload: vocabulary must have at least 2 tokens, got ", spec.vocabSize);
  if (spec.defaultOutputLen < 1) fail("workload: default output length must be >= 1, got ", spec.defaultOutputLen);
}

bool isJsonl(const std::string& dataset) { return dataset.size() > 6 && dataset.ends_with(".jsonl"); }

}  // namespace

std::vector<double> arrivalTimes(int64_t n, double rate, double burstiness, uint64_t seed) {
  std::vector<double> times(static_cast<size_t>(std::max<int64_t>(n, 0)), 0.0);
  if (std::isinf(rate)) return times;
  std::mt19937_64 rng(seed);
  // Gamma gaps with mean 1 / rate: shape 1 is exponential (Poisson arrivals); the coefficient of
  // variation is 1 / sqrt(shape).
  std::gamma_distribution<double> gap(burstiness, 1.0 / (rate * burstiness));
  double t = 0.0;
  for (double& time : times) time = (t += gap(rng));
  return times;
}

Workload makeWorkload(const WorkloadSpec& spec, const Tokenizer* tokenizer) {
  validate(spec);
  std::mt19937_64 lengthRng(streamSeed(spec.seed, 1)), tokenRng(streamSeed(spec.seed, 2));
  std::uniform_int_distribution<TokenId> token(0, static_cast<TokenId>(spec.vocabSize - 1));
  std::vector<TokenId> prefix;
  for (int64_t i = 0; i < spec.sharedPrefixTokens; ++i) prefix.push_back(token(tokenRng));

  // Arrivals first, for a duration: their count decides how many requests there are.
  std::vector<double> arrivals;
  if (spec.durationSeconds > 0) {
    std::mt19937_64 rng(streamSeed(spec.seed, 3));
    std::gamma_distribution<double> gap(spec.burstiness, 1.0 / (spec.rate * spec.burstiness));
    for (double t = gap(rng); t <= spec.durationSeconds; t += gap(rng)) arrivals.push_back(t);
  }

  std::ostringstream description;
  description << spec.dataset << ": ";
  std::vector<JsonlEntry> entries;
  std::optional<PairDistribution> dist;
  int64_t count = spec.durationSeconds > 0 ? static_cast<int64_t>(arrivals.size()) : spec.numRequests;
  if (isJsonl(spec.dataset)) {
    entries = readJsonl(spec, tokenizer);
    if (spec.durationSeconds == 0 && count <= 0) count = static_cast<int64_t>(entries.size());
    description << entries.size() << " lines" << (count > static_cast<int64_t>(entries.size()) ? " (cycled)" : "");
  } else {
    dist = datasetDistribution(spec.dataset, spec.maxModelLen - spec.sharedPrefixTokens);
    description << "prompt lognormal(mu=" << std::round(dist->prompt.mu * 100) / 100 << ", sigma=" << dist->prompt.sigma << "), output lognormal(mu="
                << std::round(dist->output.mu * 100) / 100 << ", sigma=" << dist->output.sigma << "), pairs over "
                << spec.maxModelLen - spec.sharedPrefixTokens << " tokens redrawn";
  }
  if (spec.durationSeconds == 0) arrivals = arrivalTimes(count, spec.rate, spec.burstiness, streamSeed(spec.seed, 3));

  Workload w;
  double promptSum = 0.0, outputSum = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    BenchRequest r;
    r.id = "req-" + std::to_string(i);
    r.arrival = arrivals[static_cast<size_t>(i)];
    r.prompt = prefix;
    int64_t promptLen = 0;
    if (dist) {
      auto [p, o] = dist->draw(lengthRng, spec.maxModelLen - spec.sharedPrefixTokens);
      promptLen = p;
      r.outputLen = o;
    } else {
      const JsonlEntry& e = entries[static_cast<size_t>(i) % entries.size()];
      r.prompt.insert(r.prompt.end(), e.prompt.begin(), e.prompt.end());
      promptLen = e.prompt.empty() ? e.promptLen : 0;
      r.outputLen = e.outputLen;
    }
    for (int64_t t = 0; t < promptLen; ++t) r.prompt.push_back(token(tokenRng));
    promptSum += static_cast<double>(r.prompt.size() - prefix.size());
    outputSum += static_cast<double>(r.outputLen);
    // Lengths are forced, as the paper replays its traces' output lengths: EOS is ignored.
    r.params.maxTokens = r.outputLen;
    r.params.ignoreEos = true;
    if (spec.beamWidth > 1) {
      r.params.useBeamSearch = true;
      r.params.n = spec.beamWidth;
      r.params.bestOf = spec.beamWidth;
      r.params.temperature = 0.0;
    } else if (spec.parallelSamples > 1) {
      r.params.n = spec.parallelSamples;
      r.params.temperature = 1.0;
      r.params.seed = static_cast<int64_t>(streamSeed(spec.seed, 100 + static_cast<uint64_t>(i)) >> 1);
    } else {
      // One sample: greedy. The tokens chosen do not change any length or memory figure, and
      // greedy decoding costs the benchmark's host the least.
      r.params.temperature = 0.0;
    }
    w.requests.push_back(std::move(r));
  }
  const double n = std::max<double>(1.0, static_cast<double>(count));
  description << "; " << count << " requests, mean prompt " << std::round(promptSum / n * 10) / 10 << " (+" << spec.sharedPrefixTokens
              << " shared) / output " << std::round(outputSum / n * 10) / 10 << " tokens";
  if (spec.parallelSamples > 1) description << ", n = " << spec.parallelSamples;
  if (spec.beamWidth > 1) description << ", beam width " << spec.beamWidth;
  description << "; arrivals " << (std::isinf(spec.rate) ? std::string("all at 0") : (spec.burstiness == 1.0 ? "Poisson" : "gamma"));
  if (!std::isinf(spec.rate)) description << " at " << spec.rate << " req/s" << (spec.burstiness != 1.0 ? ", burstiness " + std::to_string(spec.burstiness) : "");
  description << ", seed " << spec.seed;
  w.description = description.str();
  return w;
}

}  // namespace pagedc::bench
