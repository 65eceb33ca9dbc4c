// When a sequence stops: EOS, stop tokens, stop strings over its incrementally fed text, max_tokens.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/FinishReason.h"
#include "runtime/SamplingParams.h"

namespace pagedc {

struct StopDecision {
  FinishReason reason = FinishReason::None;  // None, Stop or Length
  // What stopped it, for vLLM's stop_reason: the stop token id or the stop string (neither for EOS
  // or length).
  std::optional<int64_t> stopTokenId;
  std::optional<std::string> stopString;
};

// One per sequence. The tokenizer lives outside the runtime's core, so the caller detokenizes and
// passes each token's new text; the checker keeps the output text and cuts it at a stop string.
class StopChecker {
public:
  explicit StopChecker(const SamplingParams& params);

  // Called once per generated token after it is appended: numGenerated counts it, newText is the
  // text it added (possibly empty while a multi-byte character is incomplete). Order as vLLM's:
  // nothing before min_tokens, then EOS (unless ignore_eos), a stop string, a stop token, and
  // max_tokens last. A stopping token's own text is dropped unless include_stop_str_in_output.
  StopDecision onToken(int64_t tokenId, int64_t numGenerated, std::string_view newText);

  // The output text so far (cut at a matched stop string).
  const std::string& text() const { return text_; }
  // Text that arrives after the last token (the detokenizer's held-back bytes at the end).
  void appendFinalText(std::string_view text) { text_ += text; }
  // How much of text() may be streamed to the client now: a stop string that is still being
  // completed by later tokens must never have been sent, so the last (longest stop - 1) bytes are
  // held back, moved back to a UTF-8 character boundary. All of it once the sequence has finished.
  size_t streamableLength() const;

private:
  // The earliest stop string that occurs in text_ and overlaps the last newBytes bytes (older text
  // was already searched); npos when none. Sets matchedLength_.
  size_t findStopString(size_t newBytes);

  std::vector<std::string> stop_;
  std::vector<int64_t> stopTokenIds_;
  std::vector<int64_t> eosTokenIds_;
  bool ignoreEos_;
  bool includeStopStrInOutput_;
  std::optional<int64_t> maxTokens_;
  int64_t minTokens_;
  size_t longestStop_ = 0;
  size_t matchedLength_ = 0;
  bool finished_ = false;
  std::string text_;
};

}  // namespace pagedc
