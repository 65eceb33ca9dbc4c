// One request's state inside the scheduler: its prompt, its generated tokens and how far its KV is computed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/BlockManager.h"
#include "runtime/SamplingParams.h"

namespace pagedc {

using RequestId = std::string;

enum class RequestStatus { Waiting, Running, Swapped, Finished };

enum class FinishReason {
  Length,    // max_tokens generated, or the scheduler's maxModelLen reached
  Stop,      // an EOS or stop token sampled (after min_tokens)
  Aborted,   // abort() by the caller
  Rejected,  // can never be scheduled (larger than the KV cache or the token budget)
};

const char* finishReasonName(FinishReason reason);

// A sequence group holds one sequence (n = 1). Its known tokens are prompt + output; the first
// numComputed of them have KV in the cache. Recompute preemption only resets numComputed: the
// next admission re-prefills prompt + output in one pass, so no generated token is lost.
struct SequenceGroup {
  RequestId requestId;
  int64_t arrival = 0;  // admission order key: smaller arrived earlier
  SeqId seq = 0;
  SamplingParams params;
  std::vector<TokenId> prompt;
  std::vector<TokenId> output;
  int64_t numComputed = 0;
  RequestStatus status = RequestStatus::Waiting;
  int64_t numPreemptions = 0;

  int64_t numTokens() const { return static_cast<int64_t>(prompt.size() + output.size()); }
  // Known tokens without KV: the rest of the prompt while prefilling, the latest token when decoding.
  int64_t numUncomputed() const { return numTokens() - numComputed; }
  TokenId tokenAt(int64_t i) const {
    auto p = static_cast<int64_t>(prompt.size());
    return i < p ? prompt[static_cast<size_t>(i)] : output[static_cast<size_t>(i - p)];
  }
  std::vector<TokenId> allTokens() const {
    std::vector<TokenId> all = prompt;
    all.insert(all.end(), output.begin(), output.end());
    return all;
  }
};

}  // namespace pagedc
