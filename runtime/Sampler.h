// The sampling step: one sequence's logits row, parameters and history -> its next token, reproducibly.
#pragma once

// docs/RUNTIME.md ("Sampler") explains the processing order and the numerics.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "runtime/SamplingParams.h"

namespace pagedc {

// A sequence's own random stream, so that a seeded request draws the same numbers whatever else
// is in the batch. Counter-based (SplitMix64 over key + counter): the state is two integers, cheap
// to copy (forking for n > 1) and to save with a preempted sequence, and the bits are the same on
// every platform (unlike std::uniform_real_distribution, whose algorithm is unspecified).
class SamplerRng {
public:
  // sampleIndex separates the n (or best_of) samples of one seeded request, which would otherwise
  // all draw the same tokens.
  static SamplerRng seeded(int64_t seed, int64_t sampleIndex = 0);
  // A fresh key from a process-wide source (std::random_device once, then a counter), for requests
  // without a seed; distinct for every call.
  static SamplerRng unseeded();
  // seeded() with the request's seed when it has one, unseeded() otherwise.
  static SamplerRng forRequest(const SamplingParams& params, int64_t sampleIndex = 0);

  uint64_t nextBits();
  // Uniform in [0, 1) with 53 random bits: exact multiples of 2^-53.
  double nextUniform();

  uint64_t key() const { return key_; }
  uint64_t counter() const { return counter_; }

private:
  SamplerRng(uint64_t key, uint64_t counter) : key_(key), counter_(counter) {}
  uint64_t key_;
  uint64_t counter_;
};

// The tokens the penalties look at: repetition over both, presence/frequency and min_tokens over
// output only.
struct TokenHistory {
  std::span<const int64_t> prompt;
  std::span<const int64_t> output;
};

struct TokenLogprob {
  int64_t tokenId = 0;
  double logprob = 0.0;
};

struct TokenLogprobs {
  double logprob = 0.0;  // of the token asked about
  int64_t rank = 0;      // how many tokens are at least as likely, itself included (vLLM's rank)
  std::vector<TokenLogprob> top;  // the N most likely, most likely first, ties to the lowest id
};

struct SampledToken {
  int64_t tokenId = 0;
  // Present when params.logprobs is set: the sampled token's logprob and the top logprobs.
  std::optional<TokenLogprobs> logprobs;
};

// Which distribution logprobs describe. vLLM's default is Raw: the model's own distribution,
// before bias, penalties, temperature and filtering, so that logprobs mean the same whatever the
// request's sampling settings. Processed is the distribution actually sampled from (filtered
// tokens get -inf; a greedy request's distribution is the processed logits' softmax).
enum class LogprobsMode { Raw, Processed };

// One row of a batch: the sequence's logits, parameters, history and random stream.
struct SequenceToSample {
  std::span<const float> logits;
  const SamplingParams* params = nullptr;
  TokenHistory history;
  SamplerRng* rng = nullptr;
};

// log_softmax of a logits row: tokenId's logprob and rank, and the topN most likely tokens. Used
// for generated tokens and, by the scheduler, for prompt_logprobs.
TokenLogprobs computeLogprobs(std::span<const double> logits, int64_t tokenId, int64_t topN);
TokenLogprobs computeLogprobs(std::span<const float> logits, int64_t tokenId, int64_t topN);

// Holds scratch buffers between calls (a vocabulary-sized row each), so one Sampler per thread.
// params are assumed validated (SamplingParams::validate); token ids out of range, NaN logits, or
// a row where every token is masked throw Error.
class Sampler {
public:
  explicit Sampler(LogprobsMode logprobsMode = LogprobsMode::Raw) : logprobsMode_(logprobsMode) {}

  // Draws at most one number from rng (none when greedy).
  SampledToken sample(std::span<const float> logits, const SamplingParams& params,
                      const TokenHistory& history, SamplerRng& rng);

  // A loop over sample(), one row at a time in order: each result is bitwise what sample() alone
  // gives (batch invariance), since nothing is shared between rows but scratch space.
  std::vector<SampledToken> sampleBatch(std::span<const SequenceToSample> sequences);

  // The stages, exposed for tests and for callers that need the distribution itself.
  // Logit bias, then penalties (repetition, presence, frequency), then min_tokens masking of EOS
  // and stop tokens (-inf), in double.
  std::vector<double> processLogits(std::span<const float> logits, const SamplingParams& params,
                                    const TokenHistory& history);
  // Temperature, then top-k, top-p and min-p on the processed logits: the normalised probability of
  // every token (0 for filtered ones). Greedy (temperature 0) puts probability 1 on the argmax.
  std::vector<double> probabilities(std::span<const double> processed, const SamplingParams& params);

private:
  // processLogits() into processed_, without the copy.
  void processInto(std::span<const float> logits, const SamplingParams& params, const TokenHistory& history);
  // Unnormalised weights exp((logit - max) / temperature) after filtering, into weights_.
  void filteredWeights(std::span<const double> processed, const SamplingParams& params);

  LogprobsMode logprobsMode_;
  std::vector<double> processed_;
  std::vector<double> weights_;
  std::vector<double> scaled_;      // (logit - max) / temperature, -inf where filtered
  std::vector<int32_t> order_;      // candidate token ids, sorted when top-k/top-p need it
  std::vector<int32_t> counts_;     // per-token count of output tokens (kept zeroed between calls)
  std::vector<uint8_t> seen_;       // per-token "in prompt or output" (kept zeroed between calls)
};

// The argmax of a row, ties to the lowest id; -1 when every entry is -inf.
int64_t greedyToken(std::span<const double> logits);

}  // namespace pagedc
