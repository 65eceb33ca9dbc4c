// The iteration-level scheduler: decides, step by step, which sequences run, which tokens each
// computes, which groups are preempted, and which block copies must happen first.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "runtime/BlockManager.h"
#include "runtime/SamplingParams.h"
#include "runtime/SequenceGroup.h"

namespace pagedc {

enum class PreemptionMode {
  Recompute,  // free the victim's blocks; it re-prefills prompt + generated tokens later
  Swap,       // move the victim's blocks to the host pool; falls back to recompute when it is full
};

struct SchedulerConfig {
  int64_t maxNumBatchedTokens = 2048;  // tokens computed per step, prompt chunks and decodes together
  int64_t maxNumSeqs = 256;            // sequences in the running set
  PreemptionMode preemptionMode = PreemptionMode::Recompute;
  // On: a prompt is computed in chunks that fit the step's remaining budget. Off: a prompt is
  // computed in one step, so a prompt longer than maxNumBatchedTokens is rejected.
  bool enableChunkedPrefill = false;
  // Bound on prompt + output when a request leaves maxTokens unset; 0 means no bound (and then
  // such a request is rejected, as it could never finish by length).
  int64_t maxModelLen = 0;
};

// One sequence's work in a step: the tokens it computes, in the order of RaggedInterface's inputs.
struct ScheduledSequence {
  RequestId requestId;
  SeqId seq = 0;
  std::vector<TokenId> tokens;
  std::vector<int64_t> positions;
  std::vector<int64_t> slots;
  bool isPrompt = false;      // part of a (re-)prefill rather than a single decode token
  bool needsLogits = false;   // the last token is the sequence's latest: sample from it
  bool allLogits = false;     // logits for every token of the step (prompt logprobs), not only the last
  int64_t contextLen = 0;     // tokens in the cache after this step
  std::vector<BlockId> blockTable;
};

struct AbortedRequest {
  RequestId requestId;
  std::string message;
};

// What the backend does for one step: first swapOut, then swapIn, then copies (copy-on-write),
// then run the model on seqs.
struct StepPlan {
  std::vector<ScheduledSequence> seqs;
  std::vector<BlockCopy> swapOut;
  std::vector<BlockCopy> swapIn;
  std::vector<BlockCopy> copies;
  std::vector<RequestId> preempted;
  std::vector<AbortedRequest> aborted;  // rejected requests, with why

  int64_t numTokens() const;
  int64_t numLogits() const;  // logits rows the runner returns: every token of allLogits sequences, else 1 per needsLogits
  bool empty() const { return seqs.empty(); }
};

struct SampledToken {
  SeqId seq = 0;
  TokenId token = 0;
};

struct FinishedRequest {
  RequestId requestId;
  FinishReason reason = FinishReason::Length;
  std::vector<TokenId> output;
  std::string message;  // why, for Rejected
};

// Usage: addRequest as requests arrive; each step, plan = schedule(), run the model on the plan,
// then onStepDone(one sampled token per sequence with needsLogits). Every schedule() must be
// followed by onStepDone() before the next. Misuse throws Error.
class Scheduler {
public:
  Scheduler(const SchedulerConfig& config, BlockManager& blocks);

  // Queues a request (FCFS by call order). Only n = 1 is supported; a request that can never
  // run is not an error here: it is reported in the next plan's aborted list.
  void addRequest(const RequestId& id, std::vector<TokenId> prompt, const SamplingParams& params);
  StepPlan schedule();
  // Appends the sampled tokens and returns the requests that finished (their blocks freed).
  std::vector<FinishedRequest> onStepDone(std::span<const SampledToken> sampled);
  // Frees the request's blocks at once; false when it is unknown or already finished.
  bool abort(const RequestId& id);

  int64_t numRunning() const { return static_cast<int64_t>(running_.size()); }
  int64_t numWaiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t numSwapped() const { return static_cast<int64_t>(swapped_.size()); }
  int64_t numPreemptions() const { return numPreemptions_; }
  bool hasUnfinished() const { return !running_.empty() || !waiting_.empty() || !swapped_.empty(); }
  // Requests finished by rejection or abort since the last call (onStepDone reports the others).
  std::vector<FinishedRequest> takeDropped();
  const SchedulerConfig& config() const { return config_; }

private:
  using GroupPtr = std::unique_ptr<SequenceGroup>;

  void scheduleRunning(StepPlan& plan, int64_t& budget, bool& preempted);
  void scheduleSwapped(StepPlan& plan, int64_t& budget);
  void scheduleWaiting(StepPlan& plan, int64_t& budget);
  // Gives the group slots for n tokens and adds it to the plan; false when blocks are short.
  bool emit(SequenceGroup& g, int64_t n, StepPlan& plan);
  void preempt(GroupPtr victim, StepPlan& plan);
  void reject(GroupPtr g, std::string message, StepPlan* plan);
  std::optional<std::string> neverFits(const SequenceGroup& g) const;
  int64_t chunkFor(const SequenceGroup& g, int64_t budget) const;
  std::optional<FinishReason> finishReason(const SequenceGroup& g, TokenId last) const;

  SchedulerConfig config_;
  BlockManager& blocks_;
  // Each queue is ordered by arrival, oldest first.
  std::deque<GroupPtr> waiting_;
  std::deque<GroupPtr> running_;
  std::deque<GroupPtr> swapped_;
  std::unordered_set<RequestId> known_;
  std::vector<AbortedRequest> pendingRejects_;
  std::vector<FinishedRequest> dropped_;
  // The last plan's sequences awaiting a sampled token; schedule() refuses while awaiting.
  std::unordered_set<SeqId> awaitingLogits_;
  bool stepInFlight_ = false;
  int64_t nextArrival_ = 0;
  SeqId nextSeq_ = 0;
  int64_t numPreemptions_ = 0;
};

}  // namespace pagedc
