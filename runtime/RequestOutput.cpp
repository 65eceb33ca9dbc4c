// Merging incremental request outputs.
#include "runtime/RequestOutput.h"

#include <algorithm>

#include "ir/Error.h"

namespace pagedc {

void RequestOutput::append(const RequestOutput& later) {
  if (requestId.empty()) requestId = later.requestId;
  if (later.requestId != requestId)
    fail("RequestOutput::append: output of request ", later.requestId, " appended to request ", requestId);
  if (!later.promptLogprobs.empty()) promptLogprobs = later.promptLogprobs;
  for (const CompletionOutput& c : later.completions) {
    auto it = std::ranges::find(completions, c.index, &CompletionOutput::index);
    if (it == completions.end()) {
      it = std::ranges::upper_bound(completions, c.index, {}, &CompletionOutput::index);
      CompletionOutput fresh;
      fresh.index = c.index;
      it = completions.insert(it, std::move(fresh));
    }
    it->tokens.insert(it->tokens.end(), c.tokens.begin(), c.tokens.end());
    it->logprobs.insert(it->logprobs.end(), c.logprobs.begin(), c.logprobs.end());
    it->text += c.text;
    it->cumulativeLogprob = c.cumulativeLogprob;
    if (c.beamScore) it->beamScore = c.beamScore;
    if (c.finishReason != FinishReason::None) it->finishReason = c.finishReason;
    if (c.stopString) it->stopString = c.stopString;
  }
  finished = finished || later.finished;
  if (!later.message.empty()) message = later.message;
}

}  // namespace pagedc
