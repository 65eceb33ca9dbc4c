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
#include <vector>

#include "runtime/BlockManager.h"
#include "runtime/KvPolicy.h"
#include "runtime/KvReservation.h"
#include "runtime/Sampler.h"
#include "runtime/SamplingParams.h"
#include "runtime/SequenceGroup.h"

namespace pagedc {

enum class PreemptionMode {
  Recompute,  // free the victim's blocks; it re-prefills prompt + generated tokens later
  Swap,       // move the victim's blocks to the host pool; falls back to recompute when it is full
};

struct SchedulerConfig {
  int64_t maxNumBatchedTokens = 2048;  // tokens computed per step, prompt chunks and decodes together
  int64_t maxNumSeqs = 256;            // sequences in the running set (a group counts its beam width or live samples)
  PreemptionMode preemptionMode = PreemptionMode::Recompute;
  // On: a prompt is computed in chunks that fit the step's remaining budget. Off: a prompt is
  // computed in one step, so a prompt longer than maxNumBatchedTokens is rejected.
  bool enableChunkedPrefill = false;
  // Bound on prompt + output when a request leaves maxTokens unset; 0 means no bound (and then
  // such a request is rejected, as it could never finish by length).
  int64_t maxModelLen = 0;
  // How KV memory is handed out (runtime/KvPolicy.h). The reservation policies admit a group only
  // when each of its sequences (best_of samples, beams) can reserve its chunk from a KvReservation of
  // reservationCapacity slots, never preempt, and skip the prefix cache; Static also admits nothing
  // while any group runs or is swapped.
  KvPolicy kvPolicy = KvPolicy::Paged;
  // Reservation policies: the KV budget in token slots; 0 means the block manager's device slots.
  // The block manager's pool must exceed it by a block per sequence (maxNumSeqs) so that blocks never
  // run out before reservations do (the reservation, not the pages, is the policy's memory).
  int64_t reservationCapacity = 0;
};

// The KV budget by what its slots hold now: the categories of the PagedAttention paper's Figure 2.
// The fields other than the flag sum to capacitySlots.
struct KvUsage {
  int64_t capacitySlots = 0;
  int64_t tokenSlots = 0;     // hold a computed token of a running sequence (a shared slot counted once)
  int64_t reservedSlots = 0;  // reserved for tokens running sequences may still compute (up to prompt + max_tokens)
  // Allocated but never to hold a token: reservation past prompt + max_tokens, and the reservations
  // of finished samples of a running group; paged: the unfilled slots of partly filled blocks.
  int64_t internalFragmentation = 0;
  // Free, yet the head of the waiting queue was left waiting for lack of room in the last
  // schedule() (reservation policies: no contiguous range long enough). Paged: always 0.
  int64_t externalFragmentation = 0;
  int64_t freeSlots = 0;  // the rest (paged: free and evictable cached blocks)
  bool admissionBlockedByMemory = false;  // the last schedule() left the waiting head queued for lack of KV memory
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
  // With needsLogits: the sequences whose next token comes from the last logits row. Usually
  // {seq}; when a prompt computed once for best_of samples completes, every sample (seq is then the
  // temporary sequence that computed the prompt and has been forked into them).
  std::vector<SeqId> sampleSeqs;
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

// The caller's sampled token for one sequence of a sampling (non-beam) request.
struct SequenceToken {
  SeqId seq = 0;
  TokenId token = 0;
  double logprob = 0.0;  // added to the sequence's cumulative logprob (best_of ranks by it)
  bool stop = false;     // the caller ends the sequence with this token (a stop string matched)
};

// A beam's most likely next tokens with their logprobs (BeamSearch::candidatesPerBeam of them).
struct BeamCandidates {
  SeqId seq = 0;
  std::vector<TokenLogprob> top;
};

// What the caller reports after running a plan: one SequenceToken per sampleSeqs entry of a
// sampling request, one BeamCandidates per sampleSeqs entry of a beam-search request.
struct StepSamples {
  std::vector<SequenceToken> tokens;
  std::vector<BeamCandidates> beams;
};

// One completion of a finished request. Parallel sampling: by sample index when best_of == n,
// else the n best by cumulative logprob. Beam search: the n best hypotheses by score.
struct Completion {
  int64_t index = 0;
  std::vector<TokenId> output;
  FinishReason reason = FinishReason::Length;
  double cumulativeLogprob = 0.0;
  std::optional<double> beamScore;  // beam search: cumulativeLogprob / generated ^ length_penalty
  std::optional<SeqId> seq;         // the sequence it came from (not for beam hypotheses)
};

struct FinishedRequest {
  RequestId requestId;
  // The request's: Aborted or Rejected, else the first completion's.
  FinishReason reason = FinishReason::Length;
  // Aborted or rejected: every sequence's output so far, unfinished ones with the request's reason.
  std::vector<Completion> completions;
  std::string message;  // why, for Rejected
};

// A sequence of a sampling request that ended this step (its request may go on).
struct FinishedSequence {
  RequestId requestId;
  SeqId seq = 0;
  int64_t sampleIndex = 0;
  FinishReason reason = FinishReason::Length;
};

struct StepResult {
  std::vector<FinishedSequence> finishedSequences;  // sampling requests only, in input order
  std::vector<FinishedRequest> finished;            // requests done (their blocks freed)
};

// Usage: addRequest as requests arrive; each step, plan = schedule(), run the model on the plan,
// then onStepDone(a token, or beam candidates, per sampleSeqs entry). Every schedule() must be
// followed by onStepDone() before the next. Misuse throws Error.
class Scheduler {
public:
  Scheduler(const SchedulerConfig& config, BlockManager& blocks);

  // Queues a request (FCFS by call order). A request that can never run is not an error here: it
  // is reported in the next plan's aborted list.
  void addRequest(const RequestId& id, std::vector<TokenId> prompt, const SamplingParams& params);
  StepPlan schedule();
  // Appends the tokens (runs the beam step for beam requests) and reports what finished.
  StepResult onStepDone(const StepSamples& samples);
  // Sampling requests only: onStepDone({tokens, {}}).
  StepResult onStepDone(std::span<const SequenceToken> tokens);
  // Frees the request's blocks at once; false when it is unknown or already finished.
  bool abort(const RequestId& id);

  // A request's state (its sequences, outputs, beam search), or null when it is not queued or
  // running. Valid until the next non-const call.
  const SequenceGroup* find(const RequestId& id) const;

  int64_t numRunning() const { return static_cast<int64_t>(running_.size()); }
  // Sequences counted against maxNumSeqs: each running group's maxRunningSeqs().
  int64_t numRunningSeqs() const;
  int64_t numWaiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t numSwapped() const { return static_cast<int64_t>(swapped_.size()); }
  int64_t numPreemptions() const { return numPreemptions_; }
  bool hasUnfinished() const { return !running_.empty() || !waiting_.empty() || !swapped_.empty(); }
  // Tokens computed so far by scheduled plans: prompt (including re-prefills) and decode.
  int64_t numPromptTokensScheduled() const { return promptTokens_; }
  int64_t numDecodeTokensScheduled() const { return decodeTokens_; }
  // Requests finished by rejection or abort since the last call (onStepDone reports the others).
  std::vector<FinishedRequest> takeDropped();
  const SchedulerConfig& config() const { return config_; }
  // The KV budget's breakdown now (after the last schedule() or onStepDone()).
  KvUsage kvUsage() const;

private:
  using GroupPtr = std::unique_ptr<SequenceGroup>;

  // Tokens one sequence (or the group's root, seqIndex -1) computes this step.
  struct Work {
    int64_t seqIndex = -1;
    int64_t numTokens = 0;
  };

  void scheduleRunning(StepPlan& plan, int64_t& budget, bool& preempted);
  void scheduleSwapped(StepPlan& plan, int64_t& budget);
  void scheduleWaiting(StepPlan& plan, int64_t& budget);
  // What the group computes within budget: every sequence's unknown KV when it all fits, else
  // chunks that stop short of each sequence's latest token so that the group's sequences get their
  // logits together in a later step. Empty when nothing fits.
  std::vector<Work> planGroup(const SequenceGroup& g, int64_t budget) const;
  int64_t blocksNeeded(const SequenceGroup& g, const std::vector<Work>& work) const;
  // Gives the group slots for its work and adds it to the plan; false (nothing changed) when blocks are short.
  bool emit(SequenceGroup& g, const std::vector<Work>& work, StepPlan& plan);
  // The sequences holding the group's blocks: its root while the prompt is computed, else the live ones.
  std::vector<SeqId> blockOwners(const SequenceGroup& g) const;
  void freeBlocks(SequenceGroup& g);
  void preempt(GroupPtr victim, StepPlan& plan);
  void reject(GroupPtr g, std::string message, StepPlan* plan);
  void finish(SequenceGroup& g, FinishReason reason, std::string message, std::vector<FinishedRequest>& out);
  std::optional<std::string> neverFits(const SequenceGroup& g) const;
  std::optional<FinishReason> finishReason(const SequenceGroup& g, const Sequence& s, TokenId last) const;
  void applyTokens(SequenceGroup& g, const std::vector<const SequenceToken*>& tokens, StepResult& result);
  void applyBeams(SequenceGroup& g, const std::vector<const BeamCandidates*>& beams, StepResult& result);
  void removeRunning(const SequenceGroup& g);
  // Reservation policies: the slots each of the group's sequences reserves, and taking / returning
  // the group's ranges (reserve: false, and nothing taken, when some range cannot be placed).
  int64_t reservationPerSeq(const SequenceGroup& g) const;
  int64_t reservationCount(const SequenceGroup& g) const;
  bool reserve(const SequenceGroup& g);
  void releaseReservation(const SequenceGroup& g);

  SchedulerConfig config_;
  BlockManager& blocks_;
  // Each queue is ordered by arrival, oldest first.
  std::deque<GroupPtr> waiting_;
  std::deque<GroupPtr> running_;
  std::deque<GroupPtr> swapped_;
  std::unordered_map<RequestId, SequenceGroup*> known_;
  std::vector<AbortedRequest> pendingRejects_;
  std::vector<FinishedRequest> dropped_;
  // The last plan's sequences awaiting a token or beam candidates, with their requests;
  // schedule() refuses while a step is in flight.
  std::unordered_map<SeqId, RequestId> awaiting_;
  bool stepInFlight_ = false;
  int64_t nextArrival_ = 0;
  SeqId nextSeq_ = 0;
  int64_t numPreemptions_ = 0;
  int64_t promptTokens_ = 0;
  int64_t decodeTokens_ = 0;
  // Reservation policies only: the budget's contiguous allocator and each admitted group's ranges.
  std::optional<KvReservation> reservation_;
  std::unordered_map<RequestId, std::vector<int64_t>> reserved_;
  bool admissionBlockedByMemory_ = false;
};

}  // namespace pagedc
