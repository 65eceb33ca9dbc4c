// The iteration-level scheduler (vLLM's FCFS scheduler): running decodes first, preemption of the
// newest group when blocks run out, swapped groups back before new admissions.
#include "runtime/Scheduler.h"

#include <algorithm>
#include <sstream>
#include <utility>

#include "ir/Error.h"

namespace pagedc {

const char* finishReasonName(FinishReason reason) {
  switch (reason) {
  case FinishReason::Length: return "length";
  case FinishReason::Stop: return "stop";
  case FinishReason::Aborted: return "abort";
  case FinishReason::Rejected: return "rejected";
  }
  return "?";
}

int64_t StepPlan::numTokens() const {
  int64_t total = 0;
  for (const auto& s : seqs) total += static_cast<int64_t>(s.tokens.size());
  return total;
}

int64_t StepPlan::numLogits() const {
  int64_t rows = 0;
  for (const auto& s : seqs) rows += s.allLogits ? static_cast<int64_t>(s.tokens.size()) : (s.needsLogits ? 1 : 0);
  return rows;
}

namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Keeps a queue ordered by arrival; preempted groups usually land at the front.
void insertByArrival(std::deque<std::unique_ptr<SequenceGroup>>& queue, std::unique_ptr<SequenceGroup> g) {
  auto it = std::ranges::find_if(queue, [&](const auto& other) { return other->arrival > g->arrival; });
  queue.insert(it, std::move(g));
}

}  // namespace

Scheduler::Scheduler(const SchedulerConfig& config, BlockManager& blocks) : config_(config), blocks_(blocks) {
  if (config_.maxNumBatchedTokens < 1)
    fail("scheduler: maxNumBatchedTokens must be >= 1, got ", config_.maxNumBatchedTokens);
  if (config_.maxNumSeqs < 1) fail("scheduler: maxNumSeqs must be >= 1, got ", config_.maxNumSeqs);
  if (config_.maxModelLen < 0) fail("scheduler: maxModelLen must be >= 0, got ", config_.maxModelLen);
}

std::optional<std::string> Scheduler::neverFits(const SequenceGroup& g) const {
  auto reason = [&](auto&&... parts) {
    std::ostringstream out;
    out << "request " << g.requestId << ": ";
    (out << ... << parts);
    return std::optional<std::string>(out.str());
  };
  if (g.params.effectiveBestOf() != 1 || g.params.n != 1 || g.params.useBeamSearch)
    return reason("n, best_of > 1 and beam search are not supported by the scheduler yet");
  if (!g.params.maxTokens && config_.maxModelLen == 0)
    return reason("max_tokens is unset and the scheduler has no maxModelLen to bound generation");
  if (config_.maxModelLen > 0 && g.numTokens() > config_.maxModelLen)
    return reason(g.numTokens(), " tokens exceed the maximum model length of ", config_.maxModelLen);
  // Admission keeps the watermark free, so only the rest of the pool can ever hold a prompt.
  const auto& bm = blocks_.config();
  int64_t usable = bm.numDeviceBlocks - static_cast<int64_t>(bm.watermark * static_cast<double>(bm.numDeviceBlocks));
  int64_t needed = ceilDiv(g.numTokens(), bm.blockSize);
  if (needed > usable)
    return reason(g.numTokens(), " tokens need ", needed, " KV cache blocks of ", bm.blockSize,
                  " tokens, but only ", usable, " can ever be available (", bm.numDeviceBlocks, " in the pool)");
  if (!config_.enableChunkedPrefill && g.numTokens() > config_.maxNumBatchedTokens)
    return reason(g.numTokens(), " tokens exceed maxNumBatchedTokens (", config_.maxNumBatchedTokens,
                  ") and chunked prefill is off");
  return std::nullopt;
}

void Scheduler::addRequest(const RequestId& id, std::vector<TokenId> prompt, const SamplingParams& params) {
  if (known_.count(id)) fail("scheduler: addRequest: request ", id, " already exists");
  if (prompt.empty()) fail("scheduler: addRequest: request ", id, " has an empty prompt");
  auto g = std::make_unique<SequenceGroup>();
  g->requestId = id;
  g->arrival = nextArrival_++;
  g->seq = nextSeq_++;
  g->params = params;
  g->prompt = std::move(prompt);
  known_.insert(id);
  if (auto msg = neverFits(*g)) {
    reject(std::move(g), *msg, nullptr);
    return;
  }
  waiting_.push_back(std::move(g));
}

void Scheduler::reject(GroupPtr g, std::string message, StepPlan* plan) {
  if (blocks_.hasSequence(g->seq)) blocks_.freeSequence(g->seq);
  g->status = RequestStatus::Finished;
  AbortedRequest aborted{g->requestId, message};
  if (plan)
    plan->aborted.push_back(aborted);
  else
    pendingRejects_.push_back(aborted);
  dropped_.push_back({g->requestId, FinishReason::Rejected, g->output, std::move(message)});
  known_.erase(g->requestId);
}

int64_t Scheduler::chunkFor(const SequenceGroup& g, int64_t budget) const {
  int64_t want = g.numUncomputed();
  if (config_.enableChunkedPrefill) return std::min(want, budget);
  return want <= budget ? want : 0;
}

bool Scheduler::emit(SequenceGroup& g, int64_t n, StepPlan& plan) {
  auto result = blocks_.appendSlots(g.seq, n);
  if (!result) return false;
  ScheduledSequence s;
  s.requestId = g.requestId;
  s.seq = g.seq;
  int64_t start = g.numComputed;
  for (int64_t i = start; i < start + n; ++i) {
    s.tokens.push_back(g.tokenAt(i));
    s.positions.push_back(i);
  }
  s.slots = std::move(result->slots);
  g.numComputed += n;
  s.isPrompt = g.output.empty() || start < g.numTokens() - 1;
  s.needsLogits = g.numComputed == g.numTokens();
  s.contextLen = g.numComputed;
  s.blockTable = blocks_.blockTable(g.seq);
  plan.copies.insert(plan.copies.end(), result->copies.begin(), result->copies.end());
  if (s.needsLogits) awaitingLogits_.insert(g.seq);
  plan.seqs.push_back(std::move(s));
  return true;
}

void Scheduler::preempt(GroupPtr victim, StepPlan& plan) {
  ++numPreemptions_;
  ++victim->numPreemptions;
  plan.preempted.push_back(victim->requestId);
  if (config_.preemptionMode == PreemptionMode::Swap) {
    SeqId seqs[] = {victim->seq};
    if (auto copies = blocks_.swapOut(seqs)) {
      plan.swapOut.insert(plan.swapOut.end(), copies->begin(), copies->end());
      victim->status = RequestStatus::Swapped;
      insertByArrival(swapped_, std::move(victim));
      return;
    }
    // The host pool is full: recomputing later is the only way to free the device blocks now.
  }
  blocks_.freeSequence(victim->seq);
  victim->numComputed = 0;
  victim->status = RequestStatus::Waiting;
  insertByArrival(waiting_, std::move(victim));
}

void Scheduler::scheduleRunning(StepPlan& plan, int64_t& budget, bool& preempted) {
  for (size_t i = 0; i < running_.size();) {
    SequenceGroup& g = *running_[i];
    int64_t n = chunkFor(g, budget);
    if (n == 0) {
      ++i;
      continue;
    }
    if (emit(g, n, plan)) {
      budget -= n;
      ++i;
      continue;
    }
    preempted = true;
    if (i + 1 < running_.size()) {
      // Out of blocks: the newest running group gives way, then g retries.
      GroupPtr victim = std::move(running_.back());
      running_.pop_back();
      preempt(std::move(victim), plan);
      continue;
    }
    GroupPtr self = std::move(running_[i]);
    running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
    if (i == 0) {
      // Alone on the device and still short: the pool can never hold this sequence.
      std::string msg = "request " + self->requestId + ": " + std::to_string(self->numComputed + n) +
                        " tokens outgrew the KV cache (" + std::to_string(blocks_.config().numDeviceBlocks) +
                        " blocks of " + std::to_string(blocks_.blockSize()) + ")";
      reject(std::move(self), std::move(msg), &plan);
      --numPreemptions_;
      continue;
    }
    preempt(std::move(self), plan);
  }
}

void Scheduler::scheduleSwapped(StepPlan& plan, int64_t& budget) {
  while (!swapped_.empty()) {
    SequenceGroup& g = *swapped_.front();
    if (numRunning() >= config_.maxNumSeqs) break;
    int64_t n = chunkFor(g, budget);
    if (n == 0) break;
    // The group needs its blocks back plus room for this step's tokens.
    int64_t tableBlocks = static_cast<int64_t>(blocks_.blockTable(g.seq).size());
    int64_t growth = ceilDiv(g.numComputed + n, blocks_.blockSize()) - ceilDiv(g.numComputed, blocks_.blockSize());
    SeqId seqs[] = {g.seq};
    if (!blocks_.canSwapIn(seqs) || blocks_.numAvailableBlocks() < tableBlocks + growth) break;
    auto copies = blocks_.swapIn(seqs);
    if (!copies) break;
    plan.swapIn.insert(plan.swapIn.end(), copies->begin(), copies->end());
    GroupPtr owned = std::move(swapped_.front());
    swapped_.pop_front();
    owned->status = RequestStatus::Running;
    // Should the append still fail, the group waits on the device for the next step.
    if (emit(*owned, n, plan)) budget -= n;
    insertByArrival(running_, std::move(owned));
  }
}

void Scheduler::scheduleWaiting(StepPlan& plan, int64_t& budget) {
  while (!waiting_.empty()) {
    SequenceGroup& g = *waiting_.front();
    // A recomputed group's prompt grew by its outputs, so it is checked again.
    if (auto msg = neverFits(g)) {
      GroupPtr owned = std::move(waiting_.front());
      waiting_.pop_front();
      reject(std::move(owned), *msg, &plan);
      continue;
    }
    if (numRunning() >= config_.maxNumSeqs || budget <= 0) break;
    auto all = g.allTokens();
    // FCFS: the head waits for room rather than letting later, smaller requests pass it.
    if (!blocks_.canAddSequence(all)) break;
    g.numComputed = blocks_.addSequence(g.seq, all);
    int64_t n = chunkFor(g, budget);
    if (n == 0 || !emit(g, n, plan)) {
      blocks_.freeSequence(g.seq);
      g.numComputed = 0;
      break;
    }
    budget -= n;
    GroupPtr owned = std::move(waiting_.front());
    waiting_.pop_front();
    owned->status = RequestStatus::Running;
    insertByArrival(running_, std::move(owned));
  }
}

StepPlan Scheduler::schedule() {
  if (stepInFlight_) fail("scheduler: schedule() called again before onStepDone() for the previous plan");
  StepPlan plan;
  plan.aborted = std::exchange(pendingRejects_, {});
  int64_t budget = config_.maxNumBatchedTokens;
  bool preempted = false;
  scheduleRunning(plan, budget, preempted);
  // After a preemption the freed blocks go to the older groups, not back to anyone this step.
  if (!preempted) {
    scheduleSwapped(plan, budget);
    if (swapped_.empty()) scheduleWaiting(plan, budget);
  }
  stepInFlight_ = !plan.seqs.empty();
  return plan;
}

std::optional<FinishReason> Scheduler::finishReason(const SequenceGroup& g, TokenId last) const {
  auto generated = static_cast<int64_t>(g.output.size());
  if (g.params.maxTokens && generated >= *g.params.maxTokens) return FinishReason::Length;
  if (config_.maxModelLen > 0 && g.numTokens() >= config_.maxModelLen) return FinishReason::Length;
  // EOS and stop tokens count only once min_tokens are generated (the sampler masks them before).
  if (generated > g.params.minTokens) {
    if (!g.params.ignoreEos && std::ranges::find(g.params.eosTokenIds, last) != g.params.eosTokenIds.end())
      return FinishReason::Stop;
    if (std::ranges::find(g.params.stopTokenIds, last) != g.params.stopTokenIds.end()) return FinishReason::Stop;
  }
  return std::nullopt;
}

std::vector<FinishedRequest> Scheduler::onStepDone(std::span<const SampledToken> sampled) {
  if (!stepInFlight_ && !sampled.empty()) fail("scheduler: onStepDone() without a scheduled step");
  stepInFlight_ = false;
  std::vector<FinishedRequest> finished;
  auto findRunning = [&](SeqId seq) {
    return std::ranges::find_if(running_, [&](const GroupPtr& g) { return g->seq == seq; });
  };
  for (const auto& s : sampled) {
    if (!awaitingLogits_.erase(s.seq))
      fail("scheduler: onStepDone: sequence ", s.seq, " was not scheduled with logits in the last step (or got two tokens)");
    auto it = findRunning(s.seq);
    if (it == running_.end()) continue;  // aborted since the plan was made
    SequenceGroup& g = **it;
    g.output.push_back(s.token);
    TokenId token[] = {s.token};
    blocks_.appendTokens(g.seq, token);
    if (auto reason = finishReason(g, s.token)) {
      blocks_.freeSequence(g.seq);
      g.status = RequestStatus::Finished;
      finished.push_back({g.requestId, *reason, g.output, {}});
      known_.erase(g.requestId);
      running_.erase(it);
    }
  }
  for (SeqId seq : awaitingLogits_)
    if (findRunning(seq) != running_.end()) fail("scheduler: onStepDone: no sampled token for sequence ", seq);
  awaitingLogits_.clear();
  return finished;
}

bool Scheduler::abort(const RequestId& id) {
  for (auto* queue : {&waiting_, &running_, &swapped_}) {
    auto it = std::ranges::find_if(*queue, [&](const GroupPtr& g) { return g->requestId == id; });
    if (it == queue->end()) continue;
    SequenceGroup& g = **it;
    if (blocks_.hasSequence(g.seq)) blocks_.freeSequence(g.seq);
    g.status = RequestStatus::Finished;
    dropped_.push_back({g.requestId, FinishReason::Aborted, g.output, "aborted"});
    known_.erase(g.requestId);
    queue->erase(it);
    return true;
  }
  return false;
}

std::vector<FinishedRequest> Scheduler::takeDropped() { return std::exchange(dropped_, {}); }

}  // namespace pagedc
