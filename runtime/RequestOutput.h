// What the engine reports about a request after a step: incremental, so a server can stream it,
// and mergeable into the whole result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/FinishReason.h"
#include "runtime/PrefixCache.h"
#include "runtime/Sampler.h"
#include "runtime/SequenceGroup.h"

namespace pagedc {

// One completion's news. Streamed requests (sampling with best_of == n) report each step's new
// token; beam search and best_of > n report their completions once, whole, when they finish.
struct CompletionOutput {
  int64_t index = 0;                    // which of the request's n completions
  std::vector<TokenId> tokens;          // new tokens
  std::vector<TokenLogprobs> logprobs;  // one per new token when the request asks for logprobs
  std::string text;                     // new text, when the engine has a detokenizer
  double cumulativeLogprob = 0.0;       // over every token so far
  std::optional<double> beamScore;      // beam search: cumulativeLogprob / generated ^ length_penalty
  FinishReason finishReason = FinishReason::None;  // set in the output where it finished
  std::optional<std::string> stopString;           // the stop string that ended it
};

struct RequestOutput {
  RequestId requestId;
  // Once, in the output of the step that computed the whole prompt, when prompt_logprobs is set:
  // one entry per prompt token, the first empty (it has no preceding context).
  std::vector<std::optional<TokenLogprobs>> promptLogprobs;
  std::vector<CompletionOutput> completions;  // those with news, by index
  bool finished = false;  // the last output of the request
  std::string message;    // why it was rejected

  // Folds a later output of the same request into this one (tokens, logprobs and text appended;
  // scores and reasons replaced): applied to every output of a request, gives the whole result.
  void append(const RequestOutput& later);
};

}  // namespace pagedc
