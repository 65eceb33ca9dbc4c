// Validation of SamplingParams, with vLLM's rules and messages a client can act on.
#include "runtime/SamplingParams.h"

#include <cmath>
#include <vector>

#include "ir/Error.h"

namespace pagedc {

namespace {

// NaN fails every comparison, so each bound is written as !(value within bound) to reject it too;
// infinities are rejected separately so the message does not claim e.g. that inf is below a minimum.
void requireFinite(const char* name, double value) {
  if (!std::isfinite(value)) fail(name, " must be a finite number, got ", value);
}

void requireTokenId(const std::string& what, int64_t id, int64_t vocabSize) {
  if (id < 0 || id >= vocabSize)
    fail(what, " must be a token id in [0, ", vocabSize, "), got ", id);
}

void requireTokenIds(const char* name, const std::vector<int64_t>& ids, int64_t vocabSize) {
  for (size_t i = 0; i < ids.size(); ++i)
    requireTokenId(std::string(name) + "[" + std::to_string(i) + "]", ids[i], vocabSize);
}

void requireLogprobCount(const char* name, const std::optional<int64_t>& count) {
  if (count && (*count < 0 || *count > kMaxLogprobs))
    fail(name, " must be in [0, ", kMaxLogprobs, "], got ", *count);
}

}  // namespace

void SamplingParams::validate(int64_t vocabSize) const {
  if (vocabSize <= 0) fail("the model's vocabulary size must be positive, got ", vocabSize);

  if (n < 1) fail("n must be >= 1, got ", n);
  if (bestOf && *bestOf < n) fail("best_of must be >= n (", n, "), got ", *bestOf);

  requireFinite("temperature", temperature);
  if (!(temperature >= 0.0)) fail("temperature must be >= 0, got ", temperature);
  requireFinite("top_p", topP);
  if (!(topP > 0.0 && topP <= 1.0)) fail("top_p must be in (0, 1], got ", topP);
  if (topK < -1) fail("top_k must be -1 or 0 (off) or >= 1, got ", topK);
  requireFinite("min_p", minP);
  if (!(minP >= 0.0 && minP <= 1.0)) fail("min_p must be in [0, 1], got ", minP);

  requireFinite("repetition_penalty", repetitionPenalty);
  if (!(repetitionPenalty > 0.0)) fail("repetition_penalty must be > 0, got ", repetitionPenalty);
  requireFinite("presence_penalty", presencePenalty);
  if (!(std::abs(presencePenalty) <= kMaxPresenceFrequencyPenalty))
    fail("presence_penalty must be in [-2, 2], got ", presencePenalty);
  requireFinite("frequency_penalty", frequencyPenalty);
  if (!(std::abs(frequencyPenalty) <= kMaxPresenceFrequencyPenalty))
    fail("frequency_penalty must be in [-2, 2], got ", frequencyPenalty);
  for (const auto& [token, bias] : logitBias) {
    requireTokenId("logit_bias key", token, vocabSize);
    if (!(std::abs(bias) <= kMaxLogitBias))
      fail("logit_bias[", token, "] must be in [-100, 100], got ", bias);
  }

  if (maxTokens && *maxTokens < 1) fail("max_tokens must be >= 1, got ", *maxTokens);
  if (minTokens < 0) fail("min_tokens must be >= 0, got ", minTokens);
  if (maxTokens && minTokens > *maxTokens)
    fail("min_tokens must be <= max_tokens (", *maxTokens, "), got ", minTokens);

  requireLogprobCount("logprobs", logprobs);
  requireLogprobCount("prompt_logprobs", promptLogprobs);

  for (size_t i = 0; i < stop.size(); ++i)
    if (stop[i].empty()) fail("stop[", i, "] must not be an empty string");
  requireTokenIds("stop_token_ids", stopTokenIds, vocabSize);
  requireTokenIds("eos_token_ids", eosTokenIds, vocabSize);

  // The combinations vLLM rejects: beam search is deterministic over best_of beams, and the beam
  // parameters mean nothing without it.
  if (useBeamSearch) {
    if (effectiveBestOf() < 2)
      fail("best_of (or n when best_of is unset) must be > 1 when using beam search, got ",
           effectiveBestOf());
    if (temperature != 0.0) fail("temperature must be 0 when using beam search, got ", temperature);
    if (topP != 1.0) fail("top_p must be 1 when using beam search, got ", topP);
    if (topK > 0) fail("top_k must be -1 when using beam search, got ", topK);
    requireFinite("length_penalty", lengthPenalty);
  } else {
    if (lengthPenalty != 1.0)
      fail("length_penalty must be 1 when not using beam search, got ", lengthPenalty);
    if (earlyStopping != EarlyStopping::Heuristic)
      fail("early_stopping must be false when not using beam search");
    // Greedy decoding gives every candidate the same tokens, so more than one is wasted work.
    if (isGreedy() && effectiveBestOf() > 1)
      fail(bestOf ? "best_of" : "n", " must be 1 when using greedy sampling (temperature 0), got ",
           effectiveBestOf());
  }
}

}  // namespace pagedc
