// The per-request sampling parameters (vLLM's SamplingParams, OpenAI's request fields) and their validation.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pagedc {

// The most top-N logprobs a request may ask for, per generated or prompt token (OpenAI's limit, and
// vLLM's default max_logprobs): each one costs a partial sort of the vocabulary per token.
inline constexpr int64_t kMaxLogprobs = 20;
// OpenAI's bounds for logit_bias values and for the presence and frequency penalties.
inline constexpr double kMaxLogitBias = 100.0;
inline constexpr double kMaxPresenceFrequencyPenalty = 2.0;

// Beam search's stopping rule, as HF transformers and vLLM define early_stopping.
enum class EarlyStopping {
  Heuristic,  // false: stop when no unfinished beam can beat the finished ones (estimated)
  Immediate,  // true: stop as soon as best_of beams have finished
  Never,      // "never": run until no unfinished beam can beat the finished ones (exact)
};

struct SamplingParams {
  // Completions returned, and candidates generated to choose them from (best_of; unset means n).
  int64_t n = 1;
  std::optional<int64_t> bestOf;

  // 0 means greedy (argmax, ties to the lowest token id).
  double temperature = 1.0;
  int64_t topK = -1;     // -1 or 0: off
  double topP = 1.0;     // 1: off
  double minP = 0.0;     // 0: off

  // vLLM/HF semantics over prompt and output tokens: a positive logit is divided by it, a negative
  // one multiplied. 1: off.
  double repetitionPenalty = 1.0;
  // OpenAI semantics over generated tokens: logit -= presence * (count > 0) + frequency * count.
  double presencePenalty = 0.0;
  double frequencyPenalty = 0.0;
  // Token id -> value added to its logit, in [-100, 100] (-100 effectively bans, +100 forces).
  std::map<int64_t, double> logitBias;

  // Unset: the request draws from a generator seeded from a process-wide source.
  std::optional<int64_t> seed;

  // Generation ends when one of these is sampled (after min_tokens).
  std::vector<int64_t> stopTokenIds;
  // Generation ends when the detokenized output contains one of these (StopChecker); the output is
  // cut before it unless includeStopStrInOutput.
  std::vector<std::string> stop;
  bool includeStopStrInOutput = false;
  // Whether the output text leaves out special tokens (BOS, EOS, chat markers).
  bool skipSpecialTokens = true;

  // Unset: up to the model's context length (the scheduler's bound).
  std::optional<int64_t> maxTokens = 16;
  // EOS and stop tokens are masked, and stop strings not checked, until this many are generated.
  int64_t minTokens = 0;
  // The model's end-of-sequence token(s), filled in by the server from generation_config.json.
  std::vector<int64_t> eosTokenIds;
  bool ignoreEos = false;

  // Top-N logprobs per generated token (0: only the sampled token's) and per prompt token.
  std::optional<int64_t> logprobs;
  std::optional<int64_t> promptLogprobs;

  // Carried for the scheduler, which runs the beam search; the sampler does not read them.
  bool useBeamSearch = false;
  double lengthPenalty = 1.0;
  EarlyStopping earlyStopping = EarlyStopping::Heuristic;

  int64_t effectiveBestOf() const { return bestOf.value_or(n); }
  bool isGreedy() const { return temperature == 0.0; }

  // Throws Error naming the first bad field, what it must be, and what it got, e.g.
  // "temperature must be >= 0, got -1"; the message is meant for an HTTP 400 body. vocabSize bounds
  // every token id (logit_bias keys, stop_token_ids, eos_token_ids).
  void validate(int64_t vocabSize) const;
};

}  // namespace pagedc
