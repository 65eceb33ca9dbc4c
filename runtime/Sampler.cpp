// The sampling step in double with a per-sequence generator: tokens depend only on the sequence's own inputs.
#include "runtime/Sampler.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <random>

#include "ir/Error.h"

namespace pagedc {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
// SplitMix64's Weyl increment (2^64 / golden ratio) and finaliser (Steele, Lea, Flood 2014).
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Larger logit first; equal logits by lower id, so every ordering (top-k, top-p, top logprobs) is
// a total order and does not depend on the sort algorithm.
struct ByLogitDescending {
  std::span<const double> logits;
  bool operator()(int32_t a, int32_t b) const {
    if (logits[a] != logits[b]) return logits[a] > logits[b];
    return a < b;
  }
};

void checkTokenInRange(const char* what, int64_t token, size_t vocab) {
  if (token < 0 || static_cast<uint64_t>(token) >= vocab)
    fail("sampler: ", what, " token id ", token, " is outside the logits row of ", vocab, " entries");
}

}  // namespace

SamplerRng SamplerRng::seeded(int64_t seed, int64_t sampleIndex) {
  // mix64 is a bijection, so distinct (seed, index) pairs with the same seed get distinct keys.
  return SamplerRng(mix64(mix64(static_cast<uint64_t>(seed)) + static_cast<uint64_t>(sampleIndex)), 0);
}

SamplerRng SamplerRng::unseeded() {
  // One random_device read per process (it can be slow or a syscall); the counter keeps every
  // request's key distinct after that.
  static const uint64_t base = [] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }();
  static std::atomic<uint64_t> next{0};
  return SamplerRng(mix64(base + next.fetch_add(1, std::memory_order_relaxed) * kGolden), 0);
}

SamplerRng SamplerRng::forRequest(const SamplingParams& params, int64_t sampleIndex) {
  return params.seed ? seeded(*params.seed, sampleIndex) : unseeded();
}

uint64_t SamplerRng::nextBits() {
  ++counter_;
  return mix64(key_ + counter_ * kGolden);
}

double SamplerRng::nextUniform() {
  return static_cast<double>(nextBits() >> 11) * 0x1.0p-53;
}

int64_t greedyToken(std::span<const double> logits) {
  int64_t best = -1;
  double bestLogit = kNegInf;
  // Strictly greater: the first (lowest-id) of equal maxima wins.
  for (size_t i = 0; i < logits.size(); ++i)
    if (logits[i] > bestLogit) {
      bestLogit = logits[i];
      best = static_cast<int64_t>(i);
    }
  return best;
}

TokenLogprobs computeLogprobs(std::span<const double> logits, int64_t tokenId, int64_t topN) {
  checkTokenInRange("logprobs", tokenId, logits.size());
  double maxLogit = kNegInf;
  for (double logit : logits) maxLogit = std::max(maxLogit, logit);
  if (!std::isfinite(maxLogit)) fail("sampler: cannot compute logprobs, the row's largest logit is ", maxLogit);
  // log_softmax(x)_i = (x_i - max) - log(sum_j exp(x_j - max)): no overflow, and the largest term is 1.
  double sum = 0.0;
  for (double logit : logits) sum += std::exp(logit - maxLogit);
  const double logSum = std::log(sum);
  auto logprobOf = [&](size_t i) { return (logits[i] - maxLogit) - logSum; };

  TokenLogprobs result;
  result.logprob = logprobOf(static_cast<size_t>(tokenId));
  for (double logit : logits) result.rank += logit >= logits[tokenId];

  const size_t count = std::min(static_cast<size_t>(std::max<int64_t>(topN, 0)), logits.size());
  if (count > 0) {
    std::vector<int32_t> ids(logits.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(count), ids.end(),
                      ByLogitDescending{logits});
    for (size_t i = 0; i < count; ++i) result.top.push_back({ids[i], logprobOf(static_cast<size_t>(ids[i]))});
  }
  return result;
}

TokenLogprobs computeLogprobs(std::span<const float> logits, int64_t tokenId, int64_t topN) {
  std::vector<double> wide(logits.begin(), logits.end());
  return computeLogprobs(std::span<const double>(wide), tokenId, topN);
}

std::vector<double> Sampler::processLogits(std::span<const float> logits, const SamplingParams& params,
                                           const TokenHistory& history) {
  processInto(logits, params, history);
  return processed_;
}

void Sampler::processInto(std::span<const float> logits, const SamplingParams& params, const TokenHistory& history) {
  const size_t vocab = logits.size();
  processed_.assign(logits.begin(), logits.end());
  for (size_t i = 0; i < vocab; ++i)
    if (std::isnan(processed_[i])) fail("sampler: the model produced NaN for token ", i);

  for (const auto& [token, bias] : params.logitBias) {
    checkTokenInRange("logit_bias", token, vocab);
    processed_[static_cast<size_t>(token)] += bias;
  }
  for (int64_t token : history.prompt) checkTokenInRange("prompt", token, vocab);
  for (int64_t token : history.output) checkTokenInRange("output", token, vocab);

  // Each distinct token once, however often it occurs; seen_ is restored to all-zero afterwards so
  // the next call costs O(history), not O(vocab).
  if (params.repetitionPenalty != 1.0) {
    seen_.resize(vocab, 0);
    auto penalise = [&](std::span<const int64_t> tokens) {
      for (int64_t token : tokens) {
        auto t = static_cast<size_t>(token);
        if (seen_[t]) continue;
        seen_[t] = 1;
        double& logit = processed_[t];
        logit = logit > 0.0 ? logit / params.repetitionPenalty : logit * params.repetitionPenalty;
      }
    };
    penalise(history.prompt);
    penalise(history.output);
    for (int64_t token : history.prompt) seen_[static_cast<size_t>(token)] = 0;
    for (int64_t token : history.output) seen_[static_cast<size_t>(token)] = 0;
  }

  if (params.presencePenalty != 0.0 || params.frequencyPenalty != 0.0) {
    counts_.resize(vocab, 0);
    for (int64_t token : history.output) ++counts_[static_cast<size_t>(token)];
    // Applying a token's penalty zeroes its count: applied once per distinct token, and counts_
    // is left clean.
    for (int64_t token : history.output) {
      auto t = static_cast<size_t>(token);
      if (counts_[t] == 0) continue;
      processed_[t] -= params.presencePenalty + params.frequencyPenalty * counts_[t];
      counts_[t] = 0;
    }
  }

  // vLLM masks every stop token (EOS unless ignore_eos, and stop_token_ids) until min_tokens.
  if (static_cast<int64_t>(history.output.size()) < params.minTokens) {
    for (int64_t token : params.stopTokenIds) {
      checkTokenInRange("stop_token_ids", token, vocab);
      processed_[static_cast<size_t>(token)] = kNegInf;
    }
    if (!params.ignoreEos)
      for (int64_t token : params.eosTokenIds) {
        checkTokenInRange("eos_token_ids", token, vocab);
        processed_[static_cast<size_t>(token)] = kNegInf;
      }
  }
}

void Sampler::filteredWeights(std::span<const double> processed, const SamplingParams& params) {
  const size_t vocab = processed.size();
  double maxLogit = kNegInf;
  order_.clear();
  for (size_t i = 0; i < vocab; ++i)
    if (processed[i] > kNegInf) {
      order_.push_back(static_cast<int32_t>(i));
      maxLogit = std::max(maxLogit, processed[i]);
    }
  if (order_.empty()) fail("sampler: every token is masked (all logits are -inf)");

  // Scaling the difference from the maximum, not the logit itself: softmax is unchanged, the largest
  // scaled value is exactly 0 (weight 1), and a tiny temperature cannot overflow to inf - inf = NaN.
  const double temperature = params.temperature;
  auto scaledOf = [&](int32_t i) {
    const double logit = processed[static_cast<size_t>(i)];
    return logit == maxLogit ? 0.0 : (logit - maxLogit) / temperature;
  };

  const size_t candidates = order_.size();
  const size_t keepK = params.topK > 0 ? std::min(static_cast<size_t>(params.topK), candidates) : candidates;
  const bool useTopP = params.topP < 1.0;
  const ByLogitDescending byLogit{processed};
  if (useTopP) {
    // Top-p needs the kept set in probability order (= logit order).
    std::partial_sort(order_.begin(), order_.begin() + static_cast<ptrdiff_t>(keepK), order_.end(), byLogit);
    order_.resize(keepK);
  } else if (keepK < candidates) {
    // Exactly k: ties at the k-th logit go to the lower ids (vLLM keeps every tie; exactly k is
    // what the issue asks for and agrees with greedy's tie rule).
    std::nth_element(order_.begin(), order_.begin() + static_cast<ptrdiff_t>(keepK), order_.end(), byLogit);
    order_.resize(keepK);
  }

  if (useTopP) {
    // Keep a token while the probability mass strictly before it (renormalised over what top-k
    // kept) is below top_p: the smallest prefix whose mass reaches top_p, as vLLM and HF compute it.
    double total = 0.0;
    for (int32_t i : order_) total += std::exp(scaledOf(i));
    double before = 0.0;
    size_t kept = 0;
    while (kept < order_.size() && before / total < params.topP) {
      before += std::exp(scaledOf(order_[kept]));
      ++kept;
    }
    order_.resize(kept);
  }

  scaled_.assign(vocab, kNegInf);
  weights_.assign(vocab, 0.0);
  for (int32_t i : order_) {
    const double scaled = scaledOf(i);
    const double weight = std::exp(scaled);
    // min-p relative to the most likely token, whose weight is exactly 1 and always survives
    // top-k and top-p (it sorts first), so the threshold is min_p itself.
    if (params.minP > 0.0 && weight < params.minP) continue;
    scaled_[static_cast<size_t>(i)] = scaled;
    weights_[static_cast<size_t>(i)] = weight;
  }
}

std::vector<double> Sampler::probabilities(std::span<const double> processed, const SamplingParams& params) {
  std::vector<double> probs(processed.size(), 0.0);
  if (params.isGreedy()) {
    int64_t token = greedyToken(processed);
    if (token < 0) fail("sampler: every token is masked (all logits are -inf)");
    probs[static_cast<size_t>(token)] = 1.0;
    return probs;
  }
  filteredWeights(processed, params);
  double total = 0.0;
  for (double weight : weights_) total += weight;
  for (size_t i = 0; i < probs.size(); ++i) probs[i] = weights_[i] / total;
  return probs;
}

SampledToken Sampler::sample(std::span<const float> logits, const SamplingParams& params,
                             const TokenHistory& history, SamplerRng& rng) {
  processInto(logits, params, history);
  SampledToken result;
  if (params.isGreedy()) {
    result.tokenId = greedyToken(processed_);
    if (result.tokenId < 0) fail("sampler: every token is masked (all logits are -inf)");
  } else {
    filteredWeights(processed_, params);
    // Inverse CDF over the kept weights in token-id order, in double: the sums are a fixed sequence
    // of IEEE additions, so the same logits and the same uniform give the same token everywhere.
    double total = 0.0;
    for (double weight : weights_) total += weight;
    const double target = rng.nextUniform() * total;
    double cumulative = 0.0;
    int64_t lastPositive = -1;
    result.tokenId = -1;
    for (size_t i = 0; i < weights_.size(); ++i) {
      if (weights_[i] == 0.0) continue;
      lastPositive = static_cast<int64_t>(i);
      cumulative += weights_[i];
      if (cumulative > target) {
        result.tokenId = lastPositive;
        break;
      }
    }
    // u * total can round up to total itself; the draw then belongs to the last token.
    if (result.tokenId < 0) result.tokenId = lastPositive;
  }

  if (params.logprobs) {
    const int64_t topN = *params.logprobs;
    if (logprobsMode_ == LogprobsMode::Raw)
      result.logprobs = computeLogprobs(logits, result.tokenId, topN);
    else if (params.isGreedy())
      result.logprobs = computeLogprobs(std::span<const double>(processed_), result.tokenId, topN);
    else
      result.logprobs = computeLogprobs(std::span<const double>(scaled_), result.tokenId, topN);
  }
  return result;
}

std::vector<SampledToken> Sampler::sampleBatch(std::span<const SequenceToSample> sequences) {
  std::vector<SampledToken> results;
  results.reserve(sequences.size());
  for (const SequenceToSample& sequence : sequences) {
    if (!sequence.params || !sequence.rng) fail("sampler: batch row without parameters or generator");
    results.push_back(sample(sequence.logits, *sequence.params, sequence.history, *sequence.rng));
  }
  return results;
}

}  // namespace pagedc
