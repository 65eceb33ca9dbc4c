// Stop conditions checked after each generated token, following vLLM's StopChecker.
#include "runtime/StopChecker.h"

#include <algorithm>

#include "ir/Error.h"

namespace pagedc {

StopChecker::StopChecker(const SamplingParams& params)
    : stop_(params.stop),
      stopTokenIds_(params.stopTokenIds),
      eosTokenIds_(params.eosTokenIds),
      ignoreEos_(params.ignoreEos),
      includeStopStrInOutput_(params.includeStopStrInOutput),
      maxTokens_(params.maxTokens),
      minTokens_(params.minTokens) {
  for (const std::string& s : stop_) longestStop_ = std::max(longestStop_, s.size());
}

size_t StopChecker::findStopString(size_t newBytes) {
  size_t best = std::string::npos;
  for (const std::string& s : stop_) {
    // Only a match that ends in the new bytes is new: start where such a match could begin.
    const size_t reach = newBytes + s.size() - 1;
    const size_t start = text_.size() > reach ? text_.size() - reach : 0;
    const size_t at = text_.find(s, start);
    // The earliest match wins (ties to the earlier stop string), so the output is cut as early as
    // any stop string allows.
    if (at != std::string::npos && (best == std::string::npos || at < best)) {
      best = at;
      matchedLength_ = s.size();
    }
  }
  return best;
}

StopDecision StopChecker::onToken(int64_t tokenId, int64_t numGenerated, std::string_view newText) {
  if (finished_) fail("StopChecker: token ", tokenId, " passed after the sequence finished");
  text_.append(newText);
  StopDecision decision;
  // min_tokens overrides every stop condition, as in vLLM (the sampler already masks stop tokens,
  // but a stop string can still appear).
  if (numGenerated < minTokens_) return decision;

  auto contains = [](const std::vector<int64_t>& ids, int64_t id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  };
  auto dropTokenText = [&] {
    if (!includeStopStrInOutput_) text_.resize(text_.size() - newText.size());
  };

  if (!ignoreEos_ && contains(eosTokenIds_, tokenId)) {
    dropTokenText();
    decision.reason = FinishReason::Stop;
  } else if (size_t at = findStopString(newText.size()); at != std::string::npos) {
    decision.reason = FinishReason::Stop;
    decision.stopString = text_.substr(at, matchedLength_);
    text_.resize(std::min(text_.size(), includeStopStrInOutput_ ? at + matchedLength_ : at));
  } else if (contains(stopTokenIds_, tokenId)) {
    dropTokenText();
    decision.reason = FinishReason::Stop;
    decision.stopTokenId = tokenId;
  } else if (maxTokens_ && numGenerated >= *maxTokens_) {
    decision.reason = FinishReason::Length;
  }
  finished_ = decision.reason != FinishReason::None;
  return decision;
}

size_t StopChecker::streamableLength() const {
  if (finished_ || longestStop_ == 0) return text_.size();
  const size_t hold = longestStop_ - 1;
  size_t length = text_.size() > hold ? text_.size() - hold : 0;
  // Never split a UTF-8 character: back up over continuation bytes (10xxxxxx).
  while (length > 0 && length < text_.size() && (static_cast<unsigned char>(text_[length]) & 0xC0) == 0x80)
    --length;
  return length;
}

}  // namespace pagedc
