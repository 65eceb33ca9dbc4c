// One request's state inside the scheduler: its prompt, its sequences (parallel samples or beams),
// their generated tokens and how far each one's KV is computed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/BeamSearch.h"
#include "runtime/BlockManager.h"
#include "runtime/FinishReason.h"
#include "runtime/SamplingParams.h"

namespace pagedc {

using RequestId = std::string;

enum class RequestStatus { Waiting, Running, Swapped, Finished };

// One sequence of a group. Its known tokens are the group's prompt + output; the first numComputed
// of them have KV in the cache. Recompute preemption only resets numComputed: the next admission
// re-prefills prompt + output, so no generated token is lost.
struct Sequence {
  SeqId id = 0;
  int64_t sampleIndex = 0;  // parallel sampling: its random stream and its completion's place
  std::vector<TokenId> output;
  int64_t numComputed = 0;
  double cumulativeLogprob = 0.0;  // sum of the logprobs the caller reported for its tokens
  FinishReason finishReason = FinishReason::None;
  bool finished() const { return finishReason != FinishReason::None; }
};

// A request. Parallel sampling: best_of sequences from the start, each finishing on its own (its
// blocks freed, its record kept for the result). Beam search: the running beams (width of them
// after the first step) and the search state with the finished hypotheses.
struct SequenceGroup {
  RequestId requestId;
  int64_t arrival = 0;  // admission order key: smaller arrived earlier
  SamplingParams params;
  std::vector<TokenId> prompt;
  std::vector<Sequence> seqs;
  std::optional<BeamSearch> beam;
  // While several live sequences need the prompt's KV (first admission of best_of > 1, or
  // re-admission after recompute), the prompt is computed once on this temporary sequence and
  // forked into every live sequence as soon as its last prompt token has a slot.
  std::optional<SeqId> root;
  int64_t rootComputed = 0;
  // Prompt logprobs were asked for and the prompt has not been computed in full yet.
  bool promptLogprobsPending = false;
  RequestStatus status = RequestStatus::Waiting;
  int64_t numPreemptions = 0;

  int64_t promptLen() const { return static_cast<int64_t>(prompt.size()); }
  int64_t numTokens(const Sequence& s) const { return promptLen() + static_cast<int64_t>(s.output.size()); }
  // Known tokens without KV: the rest of the prompt while prefilling, the latest token when decoding.
  int64_t numUncomputed(const Sequence& s) const { return numTokens(s) - s.numComputed; }
  TokenId tokenAt(const Sequence& s, int64_t i) const {
    return i < promptLen() ? prompt[static_cast<size_t>(i)] : s.output[static_cast<size_t>(i - promptLen())];
  }
  std::vector<TokenId> allTokens(const Sequence& s) const {
    std::vector<TokenId> all = prompt;
    all.insert(all.end(), s.output.begin(), s.output.end());
    return all;
  }
  int64_t numLive() const {
    int64_t live = 0;
    for (const Sequence& s : seqs) live += s.finished() ? 0 : 1;
    return live;
  }
  // Sequences this group may run at once: the beam width, or its unfinished samples.
  int64_t maxRunningSeqs() const { return beam ? beam->width() : numLive(); }
  const Sequence* find(SeqId id) const {
    for (const Sequence& s : seqs)
      if (s.id == id) return &s;
    return nullptr;
  }
  Sequence* find(SeqId id) {
    for (Sequence& s : seqs)
      if (s.id == id) return &s;
    return nullptr;
  }
};

}  // namespace pagedc
