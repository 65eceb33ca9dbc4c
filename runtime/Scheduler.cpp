// The iteration-level scheduler (vLLM's FCFS scheduler): running groups first, preemption of the
// newest group when blocks run out, swapped groups back before new admissions. A group (one
// request) holds its parallel samples or beams and is scheduled, preempted, swapped and freed as
// a whole.
#include "runtime/Scheduler.h"

#include <algorithm>
#include <sstream>
#include <utility>

#include "ir/Error.h"

namespace pagedc {

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
  if (reservesContiguously(config_.kvPolicy)) {
    if (config_.maxModelLen == 0)
      fail("scheduler: the ", kvPolicyName(config_.kvPolicy), " policy reserves by length and needs maxModelLen > 0");
    if (config_.reservationCapacity < 0) fail("scheduler: reservationCapacity must be >= 0, got ", config_.reservationCapacity);
    const auto& bm = blocks_.config();
    reservation_.emplace(config_.reservationCapacity > 0 ? config_.reservationCapacity : bm.numDeviceBlocks * bm.blockSize);
  }
}

int64_t Scheduler::reservationCount(const SequenceGroup& g) const {
  // Every sample or beam the request may run: the baselines cannot share, so each holds its own range.
  return g.params.effectiveBestOf();
}

int64_t Scheduler::reservationPerSeq(const SequenceGroup& g) const {
  const int64_t maxTokens = g.params.maxTokens ? *g.params.maxTokens : config_.maxModelLen - g.promptLen();
  return reservationTokens(config_.kvPolicy, g.promptLen(), std::max<int64_t>(maxTokens, 1), config_.maxModelLen);
}

bool Scheduler::reserve(const SequenceGroup& g) {
  std::vector<int64_t> offsets;
  const int64_t perSeq = reservationPerSeq(g);
  for (int64_t i = 0; i < reservationCount(g); ++i) {
    std::optional<int64_t> offset = reservation_->reserve(perSeq);
    if (!offset) {
      for (int64_t o : offsets) reservation_->release(o);
      return false;
    }
    offsets.push_back(*offset);
  }
  reserved_[g.requestId] = std::move(offsets);
  return true;
}

void Scheduler::releaseReservation(const SequenceGroup& g) {
  if (!reservation_) return;
  auto it = reserved_.find(g.requestId);
  if (it == reserved_.end()) return;
  for (int64_t offset : it->second) reservation_->release(offset);
  reserved_.erase(it);
}

int64_t Scheduler::numRunningSeqs() const {
  int64_t total = 0;
  for (const auto& g : running_) total += g->maxRunningSeqs();
  return total;
}

const SequenceGroup* Scheduler::find(const RequestId& id) const {
  auto it = known_.find(id);
  return it == known_.end() ? nullptr : it->second;
}

std::optional<std::string> Scheduler::neverFits(const SequenceGroup& g) const {
  auto reason = [&](auto&&... parts) {
    std::ostringstream out;
    out << "request " << g.requestId << ": ";
    (out << ... << parts);
    return std::optional<std::string>(out.str());
  };
  const int64_t width = g.maxRunningSeqs();
  if (width > config_.maxNumSeqs)
    return reason(width, " sequences (best_of or beam width) exceed maxNumSeqs (", config_.maxNumSeqs, ")");
  if (width > config_.maxNumBatchedTokens)
    return reason(width, " sequences can never decode together within maxNumBatchedTokens (",
                  config_.maxNumBatchedTokens, ")");
  if (!g.params.maxTokens && config_.maxModelLen == 0)
    return reason("max_tokens is unset and the scheduler has no maxModelLen to bound generation");
  int64_t longest = g.promptLen();
  int64_t longestOutput = 0;
  for (const Sequence& s : g.seqs)
    if (!s.finished()) {
      longest = std::max(longest, g.numTokens(s));
      longestOutput = std::max(longestOutput, static_cast<int64_t>(s.output.size()));
    }
  if (config_.maxModelLen > 0 && longest > config_.maxModelLen)
    return reason(longest, " tokens exceed the maximum model length of ", config_.maxModelLen);
  // Admission keeps the watermark free, so only the rest of the pool can ever hold a prompt.
  const auto& bm = blocks_.config();
  int64_t usable = bm.numDeviceBlocks - static_cast<int64_t>(bm.watermark * static_cast<double>(bm.numDeviceBlocks));
  int64_t needed = ceilDiv(longest, bm.blockSize);
  if (needed > usable)
    return reason(longest, " tokens need ", needed, " KV cache blocks of ", bm.blockSize,
                  " tokens, but only ", usable, " can ever be available (", bm.numDeviceBlocks, " in the pool)");
  if (reservation_) {
    const int64_t slots = reservationCount(g) * reservationPerSeq(g);
    if (slots > reservation_->capacity())
      return reason(reservationCount(g), " sequences reserving ", reservationPerSeq(g), " slots each under ", kvPolicyName(config_.kvPolicy),
                    " need ", slots, ", more than the KV budget of ", reservation_->capacity());
  }
  if (!config_.enableChunkedPrefill) {
    // Several sequences re-prefill the prompt once, then each its output but the latest token.
    const bool viaRoot = g.numLive() > 1;
    const int64_t onePass = viaRoot ? std::max(g.promptLen(), longestOutput - 1) : longest;
    if (onePass > config_.maxNumBatchedTokens)
      return reason(onePass, " tokens exceed maxNumBatchedTokens (", config_.maxNumBatchedTokens,
                    ") and chunked prefill is off");
  }
  return std::nullopt;
}

void Scheduler::addRequest(const RequestId& id, std::vector<TokenId> prompt, const SamplingParams& params) {
  if (known_.count(id)) fail("scheduler: addRequest: request ", id, " already exists");
  if (prompt.empty()) fail("scheduler: addRequest: request ", id, " has an empty prompt");
  if (params.n < 1 || params.effectiveBestOf() < params.n)
    fail("scheduler: addRequest: request ", id, ": n must be in [1, best_of], got n ", params.n, " and best_of ",
         params.effectiveBestOf());
  auto g = std::make_unique<SequenceGroup>();
  g->requestId = id;
  g->arrival = nextArrival_++;
  g->params = params;
  g->prompt = std::move(prompt);
  g->promptLogprobsPending = params.promptLogprobs.has_value();
  // A beam search starts from one beam; parallel sampling has all best_of samples from the start
  // (the prompt is computed once and forked into them).
  const int64_t numSeqs = params.useBeamSearch ? 1 : params.effectiveBestOf();
  for (int64_t i = 0; i < numSeqs; ++i) g->seqs.push_back(Sequence{.id = nextSeq_++, .sampleIndex = i});
  std::optional<std::string> unbounded;
  if (params.useBeamSearch) {
    int64_t maxNew = params.maxTokens ? *params.maxTokens
                                      : (config_.maxModelLen > 0 ? config_.maxModelLen - g->promptLen() : 0);
    if (maxNew >= 1)
      g->beam.emplace(params, maxNew);
    else if (config_.maxModelLen > 0)
      unbounded = "request " + id + ": the prompt leaves no room for generation within maxModelLen (" +
                  std::to_string(config_.maxModelLen) + ")";
  }
  known_[id] = g.get();
  if (auto msg = unbounded ? unbounded : neverFits(*g)) {
    reject(std::move(g), *msg, nullptr);
    return;
  }
  waiting_.push_back(std::move(g));
}

std::vector<SeqId> Scheduler::blockOwners(const SequenceGroup& g) const {
  if (g.root) return {*g.root};
  std::vector<SeqId> owners;
  for (const Sequence& s : g.seqs)
    if (!s.finished()) owners.push_back(s.id);
  return owners;
}

void Scheduler::freeBlocks(SequenceGroup& g) {
  for (SeqId id : blockOwners(g))
    if (blocks_.hasSequence(id)) blocks_.freeSequence(id);
  g.root.reset();
  g.rootComputed = 0;
  for (Sequence& s : g.seqs) s.numComputed = 0;
}

namespace {

// The result of a request that ended: its completions in the order the caller returns them.
FinishedRequest makeFinished(const SequenceGroup& g, std::optional<FinishReason> dropped, std::string message) {
  FinishedRequest f;
  f.requestId = g.requestId;
  f.message = std::move(message);
  if (g.beam && !dropped) {
    int64_t index = 0;
    for (const BeamHypothesis& h : g.beam->results())
      f.completions.push_back({index++, h.output, h.reason, h.cumLogprob, h.score, std::nullopt});
  } else {
    std::vector<const Sequence*> order;
    for (const Sequence& s : g.seqs) order.push_back(&s);
    const bool rank = !dropped && !g.beam && g.params.effectiveBestOf() > g.params.n;
    if (rank) {
      // best_of > n: the n samples with the highest cumulative logprob (vLLM's choice).
      std::ranges::stable_sort(order, std::greater<>{}, &Sequence::cumulativeLogprob);
      order.resize(static_cast<size_t>(g.params.n));
    }
    int64_t index = 0;
    for (const Sequence* s : order) {
      FinishReason reason = s->finished() ? s->finishReason : dropped.value_or(FinishReason::Length);
      std::optional<SeqId> seq;
      if (!g.beam) seq = s->id;
      f.completions.push_back({rank || g.beam ? index : s->sampleIndex, s->output, reason, s->cumulativeLogprob,
                               std::nullopt, seq});
      ++index;
    }
  }
  f.reason = dropped ? *dropped : (f.completions.empty() ? FinishReason::Length : f.completions.front().reason);
  return f;
}

}  // namespace

void Scheduler::reject(GroupPtr g, std::string message, StepPlan* plan) {
  freeBlocks(*g);
  releaseReservation(*g);
  g->status = RequestStatus::Finished;
  AbortedRequest aborted{g->requestId, message};
  if (plan)
    plan->aborted.push_back(aborted);
  else
    pendingRejects_.push_back(aborted);
  dropped_.push_back(makeFinished(*g, FinishReason::Rejected, std::move(message)));
  known_.erase(g->requestId);
}

std::vector<Scheduler::Work> Scheduler::planGroup(const SequenceGroup& g, int64_t budget) const {
  std::vector<Work> work;
  if (budget <= 0) return work;
  auto chunk = [&](int64_t want, int64_t room) -> int64_t {
    if (config_.enableChunkedPrefill) return std::min(want, room);
    return want <= room ? want : 0;
  };
  if (g.root) {
    if (int64_t n = chunk(g.promptLen() - g.rootComputed, budget); n > 0) work.push_back({-1, n});
    return work;
  }
  int64_t total = 0, live = 0;
  for (const Sequence& s : g.seqs)
    if (!s.finished()) {
      total += g.numUncomputed(s);
      ++live;
    }
  if (total == 0) return work;
  if (total <= budget) {
    for (size_t i = 0; i < g.seqs.size(); ++i)
      if (!g.seqs[i].finished() && g.numUncomputed(g.seqs[i]) > 0)
        work.push_back({static_cast<int64_t>(i), g.numUncomputed(g.seqs[i])});
    return work;
  }
  if (live == 1) {
    for (size_t i = 0; i < g.seqs.size(); ++i)
      if (!g.seqs[i].finished())
        if (int64_t n = chunk(g.numUncomputed(g.seqs[i]), budget); n > 0) work.push_back({static_cast<int64_t>(i), n});
    return work;
  }
  // Several sequences that cannot all reach their latest token: each advances short of it, so that
  // they all get their logits in the same later step (a beam step needs every beam's).
  int64_t room = budget;
  for (size_t i = 0; i < g.seqs.size(); ++i) {
    const Sequence& s = g.seqs[i];
    if (s.finished() || g.numUncomputed(s) <= 1) continue;
    if (int64_t n = chunk(g.numUncomputed(s) - 1, room); n > 0) {
      work.push_back({static_cast<int64_t>(i), n});
      room -= n;
    }
  }
  return work;
}

int64_t Scheduler::blocksNeeded(const SequenceGroup& g, const std::vector<Work>& work) const {
  std::vector<SlotRequest> requests;
  for (const Work& w : work)
    requests.push_back({w.seqIndex < 0 ? *g.root : g.seqs[static_cast<size_t>(w.seqIndex)].id, w.numTokens});
  return blocks_.blocksNeededToAppend(requests);
}

bool Scheduler::emit(SequenceGroup& g, const std::vector<Work>& work, StepPlan& plan) {
  if (blocksNeeded(g, work) > blocks_.numAvailableBlocks()) return false;
  for (const Work& w : work) {
    const bool isRoot = w.seqIndex < 0;
    Sequence* seq = isRoot ? nullptr : &g.seqs[static_cast<size_t>(w.seqIndex)];
    const SeqId id = isRoot ? *g.root : seq->id;
    auto result = blocks_.appendSlots(id, w.numTokens);
    if (!result) fail("scheduler: request ", g.requestId, ": appendSlots failed after the group's blocks were counted");
    ScheduledSequence s;
    s.requestId = g.requestId;
    s.seq = id;
    const int64_t start = isRoot ? g.rootComputed : seq->numComputed;
    const int64_t known = isRoot ? g.promptLen() : g.numTokens(*seq);
    for (int64_t i = start; i < start + w.numTokens; ++i) {
      s.tokens.push_back(isRoot ? g.prompt[static_cast<size_t>(i)] : g.tokenAt(*seq, i));
      s.positions.push_back(i);
    }
    s.slots = std::move(result->slots);
    const int64_t computed = start + w.numTokens;
    s.isPrompt = isRoot || seq->output.empty() || start < known - 1;
    s.allLogits = g.promptLogprobsPending && start < g.promptLen();
    s.contextLen = computed;
    s.blockTable = blocks_.blockTable(id);
    plan.copies.insert(plan.copies.end(), result->copies.begin(), result->copies.end());
    (s.isPrompt ? promptTokens_ : decodeTokens_) += w.numTokens;
    if (computed >= g.promptLen()) g.promptLogprobsPending = false;
    if (isRoot) g.rootComputed = computed;
    else seq->numComputed = computed;
    if (computed == known) {
      if (isRoot) {
        // The prompt has its slots: every live sequence now shares its blocks (copy-on-write), and
        // then gets its own output back (after recompute) or samples its first token from this row.
        bool firstTokens = true;
        for (Sequence& q : g.seqs) {
          if (q.finished()) continue;
          blocks_.fork(id, q.id);
          if (!q.output.empty()) {
            blocks_.appendTokens(q.id, q.output);
            firstTokens = false;
          }
          q.numComputed = g.promptLen();
        }
        blocks_.freeSequence(id);
        g.root.reset();
        g.rootComputed = 0;
        if (firstTokens)
          for (const Sequence& q : g.seqs)
            if (!q.finished()) s.sampleSeqs.push_back(q.id);
      } else {
        s.sampleSeqs.push_back(id);
      }
      s.needsLogits = !s.sampleSeqs.empty();
    }
    for (SeqId q : s.sampleSeqs) awaiting_[q] = g.requestId;
    plan.seqs.push_back(std::move(s));
  }
  return true;
}

void Scheduler::preempt(GroupPtr victim, StepPlan& plan) {
  ++numPreemptions_;
  ++victim->numPreemptions;
  plan.preempted.push_back(victim->requestId);
  if (config_.preemptionMode == PreemptionMode::Swap) {
    auto owners = blockOwners(*victim);
    if (auto copies = blocks_.swapOut(owners)) {
      plan.swapOut.insert(plan.swapOut.end(), copies->begin(), copies->end());
      victim->status = RequestStatus::Swapped;
      insertByArrival(swapped_, std::move(victim));
      return;
    }
    // The host pool is full: recomputing later is the only way to free the device blocks now.
  }
  freeBlocks(*victim);
  releaseReservation(*victim);  // re-admission reserves again
  victim->status = RequestStatus::Waiting;
  insertByArrival(waiting_, std::move(victim));
}

void Scheduler::scheduleRunning(StepPlan& plan, int64_t& budget, bool& preempted) {
  auto sum = [](const std::vector<Work>& work) {
    int64_t n = 0;
    for (const Work& w : work) n += w.numTokens;
    return n;
  };
  for (size_t i = 0; i < running_.size();) {
    SequenceGroup& g = *running_[i];
    auto work = planGroup(g, budget);
    if (work.empty()) {
      ++i;
      continue;
    }
    if (emit(g, work, plan)) {
      budget -= sum(work);
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
      // Alone on the device and still short: the pool can never hold this group.
      int64_t longest = self->root ? self->promptLen() : 0;
      for (const Sequence& s : self->seqs)
        if (!s.finished()) longest = std::max(longest, s.numComputed + 1);
      std::string msg = "request " + self->requestId + ": " + std::to_string(longest) + " tokens" +
                        (self->numLive() > 1 ? " in " + std::to_string(self->numLive()) + " sequences" : std::string()) +
                        " outgrew the KV cache (" + std::to_string(blocks_.config().numDeviceBlocks) + " blocks of " +
                        std::to_string(blocks_.blockSize()) + ")";
      reject(std::move(self), std::move(msg), &plan);
      continue;
    }
    preempt(std::move(self), plan);
  }
}

void Scheduler::scheduleSwapped(StepPlan& plan, int64_t& budget) {
  const int64_t bs = blocks_.blockSize();
  while (!swapped_.empty()) {
    SequenceGroup& g = *swapped_.front();
    if (numRunningSeqs() + g.maxRunningSeqs() > config_.maxNumSeqs) break;
    auto work = planGroup(g, budget);
    if (work.empty()) break;
    // The group needs its blocks back plus room for this step's tokens: new blocks, and a copy of
    // each partly filled block that is written while another of the group's sequences keeps it.
    auto owners = blockOwners(g);
    std::unordered_map<BlockId, int64_t> refs, writers;
    for (SeqId id : owners)
      for (BlockId b : blocks_.blockTable(id)) ++refs[b];
    int64_t growth = 0;
    for (const Work& w : work) {
      SeqId id = w.seqIndex < 0 ? *g.root : g.seqs[static_cast<size_t>(w.seqIndex)].id;
      int64_t c = blocks_.numComputedTokens(id);
      growth += ceilDiv(c + w.numTokens, bs) - ceilDiv(c, bs);
      if (c % bs != 0) ++writers[blocks_.blockTable(id).back()];
    }
    for (const auto& [b, count] : writers) growth += refs[b] > count ? count : count - 1;
    if (!blocks_.canSwapIn(owners) || blocks_.numAvailableBlocks() < static_cast<int64_t>(refs.size()) + growth) break;
    auto copies = blocks_.swapIn(owners);
    if (!copies) break;
    plan.swapIn.insert(plan.swapIn.end(), copies->begin(), copies->end());
    GroupPtr owned = std::move(swapped_.front());
    swapped_.pop_front();
    owned->status = RequestStatus::Running;
    // Should the append still fail, the group waits on the device for the next step.
    if (emit(*owned, work, plan))
      for (const Work& w : work) budget -= w.numTokens;
    insertByArrival(running_, std::move(owned));
  }
}

void Scheduler::scheduleWaiting(StepPlan& plan, int64_t& budget) {
  // Static batching: a new batch forms only when the previous one has left entirely.
  if (config_.kvPolicy == KvPolicy::Static && (!running_.empty() || !swapped_.empty())) return;
  while (!waiting_.empty()) {
    SequenceGroup& g = *waiting_.front();
    // A recomputed group's sequences grew by their outputs, so it is checked again.
    if (auto msg = neverFits(g)) {
      GroupPtr owned = std::move(waiting_.front());
      waiting_.pop_front();
      reject(std::move(owned), *msg, &plan);
      continue;
    }
    if (numRunningSeqs() + g.maxRunningSeqs() > config_.maxNumSeqs || budget <= 0) break;
    // Prompt logprobs need a logits row for every prompt token, so no prefix is taken from the cache;
    // the baselines have no prefix cache.
    const bool useCache = !g.promptLogprobsPending && !reservation_;
    Sequence* single = nullptr;
    if (g.numLive() == 1)
      for (Sequence& s : g.seqs)
        if (!s.finished()) single = &s;
    auto tokens = single ? g.allTokens(*single) : g.prompt;
    // FCFS: the head waits for room rather than letting later, smaller requests pass it.
    if (reservation_ && !reserve(g)) {
      admissionBlockedByMemory_ = true;
      break;
    }
    if (!blocks_.canAddSequence(tokens, useCache)) {
      releaseReservation(g);
      admissionBlockedByMemory_ = true;
      break;
    }
    if (single) {
      single->numComputed = blocks_.addSequence(single->id, tokens, useCache);
    } else {
      g.root = nextSeq_++;
      g.rootComputed = blocks_.addSequence(*g.root, tokens, useCache);
    }
    auto work = planGroup(g, budget);
    if (work.empty() || !emit(g, work, plan)) {
      if (!work.empty()) admissionBlockedByMemory_ = true;
      freeBlocks(g);
      releaseReservation(g);
      break;
    }
    for (const Work& w : work) budget -= w.numTokens;
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
  awaiting_.clear();
  admissionBlockedByMemory_ = false;
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

std::optional<FinishReason> Scheduler::finishReason(const SequenceGroup& g, const Sequence& s, TokenId last) const {
  auto generated = static_cast<int64_t>(s.output.size());
  // vLLM's order: EOS and stop tokens (only once min_tokens are generated; the sampler masks them
  // before), then the length limits.
  if (generated > g.params.minTokens) {
    if (!g.params.ignoreEos && std::ranges::find(g.params.eosTokenIds, last) != g.params.eosTokenIds.end())
      return FinishReason::Stop;
    if (std::ranges::find(g.params.stopTokenIds, last) != g.params.stopTokenIds.end()) return FinishReason::Stop;
  }
  if (g.params.maxTokens && generated >= *g.params.maxTokens) return FinishReason::Length;
  if (config_.maxModelLen > 0 && g.numTokens(s) >= config_.maxModelLen) return FinishReason::Length;
  return std::nullopt;
}

void Scheduler::removeRunning(const SequenceGroup& g) {
  auto it = std::ranges::find_if(running_, [&](const GroupPtr& p) { return p.get() == &g; });
  if (it != running_.end()) running_.erase(it);
}

void Scheduler::applyTokens(SequenceGroup& g, const std::vector<const SequenceToken*>& tokens, StepResult& result) {
  for (const SequenceToken* t : tokens) {
    Sequence& s = *g.find(t->seq);
    s.output.push_back(t->token);
    s.cumulativeLogprob += t->logprob;
    TokenId token[] = {t->token};
    blocks_.appendTokens(s.id, token);
    std::optional<FinishReason> reason = t->stop ? std::optional(FinishReason::Stop) : finishReason(g, s, t->token);
    if (!reason) continue;
    blocks_.freeSequence(s.id);
    s.finishReason = *reason;
    result.finishedSequences.push_back({g.requestId, s.id, s.sampleIndex, *reason});
  }
  if (g.numLive() > 0) return;
  g.status = RequestStatus::Finished;
  releaseReservation(g);
  result.finished.push_back(makeFinished(g, std::nullopt, {}));
  known_.erase(g.requestId);
  removeRunning(g);
}

void Scheduler::applyBeams(SequenceGroup& g, const std::vector<const BeamCandidates*>& beams, StepResult& result) {
  std::vector<BeamState> states;
  for (const Sequence& s : g.seqs) {
    auto it = std::ranges::find_if(beams, [&](const BeamCandidates* b) { return b->seq == s.id; });
    states.push_back({s.output, s.cumulativeLogprob, (*it)->top});
  }
  std::vector<BeamContinuation> next = g.beam->step(states);
  if (g.beam->done()) {
    for (const Sequence& s : g.seqs) blocks_.freeSequence(s.id);
    g.status = RequestStatus::Finished;
    releaseReservation(g);
    result.finished.push_back(makeFinished(g, std::nullopt, {}));
    known_.erase(g.requestId);
    removeRunning(g);
    return;
  }
  // A parent's first continuation keeps its sequence; each further one forks it (sharing every
  // block, copy-on-write) before the parent's token is appended; parents without one are freed.
  std::vector<Sequence> nextSeqs;
  std::vector<bool> kept(g.seqs.size(), false);
  for (const BeamContinuation& c : next) {
    const Sequence& parent = g.seqs[static_cast<size_t>(c.parent)];
    Sequence s = parent;
    if (kept[static_cast<size_t>(c.parent)]) {
      s.id = nextSeq_++;
      blocks_.fork(parent.id, s.id);
    }
    kept[static_cast<size_t>(c.parent)] = true;
    s.sampleIndex = static_cast<int64_t>(nextSeqs.size());
    s.output.push_back(c.token);
    s.cumulativeLogprob = c.cumLogprob;
    nextSeqs.push_back(std::move(s));
  }
  for (size_t i = 0; i < g.seqs.size(); ++i)
    if (!kept[i]) blocks_.freeSequence(g.seqs[i].id);
  for (const Sequence& s : nextSeqs) {
    TokenId token[] = {s.output.back()};
    blocks_.appendTokens(s.id, token);
  }
  g.seqs = std::move(nextSeqs);
}

StepResult Scheduler::onStepDone(std::span<const SequenceToken> tokens) {
  StepSamples samples;
  samples.tokens.assign(tokens.begin(), tokens.end());
  return onStepDone(samples);
}

StepResult Scheduler::onStepDone(const StepSamples& samples) {
  if (!stepInFlight_ && (!samples.tokens.empty() || !samples.beams.empty()))
    fail("scheduler: onStepDone() without a scheduled step");
  stepInFlight_ = false;
  // Check everything before changing anything: each entry answers an awaited sequence of a
  // request still running (a request aborted since the plan is skipped).
  std::vector<SequenceGroup*> order;
  std::unordered_map<SequenceGroup*, std::vector<const SequenceToken*>> tokensOf;
  std::unordered_map<SequenceGroup*, std::vector<const BeamCandidates*>> beamsOf;
  auto claim = [&](SeqId seq, bool beam) -> SequenceGroup* {
    auto it = awaiting_.find(seq);
    if (it == awaiting_.end())
      fail("scheduler: onStepDone: sequence ", seq, " was not scheduled with logits in the last step (or was answered twice)");
    auto g = known_.find(it->second);
    awaiting_.erase(it);
    if (g == known_.end() || !g->second->find(seq)) return nullptr;
    SequenceGroup* group = g->second;
    if (group->beam.has_value() != beam)
      fail("scheduler: onStepDone: sequence ", seq, " of request ", group->requestId,
           beam ? " samples tokens: report a SequenceToken, not beam candidates"
                : " runs beam search: report BeamCandidates, not a token");
    if (!tokensOf.count(group) && !beamsOf.count(group)) order.push_back(group);
    return group;
  };
  for (const SequenceToken& t : samples.tokens)
    if (SequenceGroup* g = claim(t.seq, false)) tokensOf[g].push_back(&t);
  for (const BeamCandidates& b : samples.beams)
    if (SequenceGroup* g = claim(b.seq, true)) beamsOf[g].push_back(&b);
  for (const auto& [seq, request] : awaiting_) {
    auto g = known_.find(request);
    if (g != known_.end() && g->second->find(seq))
      fail("scheduler: onStepDone: no sampled token or beam candidates for sequence ", seq, " of request ", request);
  }
  awaiting_.clear();
  for (SequenceGroup* g : order)
    if (g->beam && static_cast<int64_t>(beamsOf[g].size()) != static_cast<int64_t>(g->seqs.size()))
      fail("scheduler: onStepDone: request ", g->requestId, " has ", g->seqs.size(), " beams but candidates for ",
           beamsOf[g].size());

  StepResult result;
  for (SequenceGroup* g : order) {
    if (g->beam)
      applyBeams(*g, beamsOf[g], result);
    else
      applyTokens(*g, tokensOf[g], result);
  }
  return result;
}

bool Scheduler::abort(const RequestId& id) {
  for (auto* queue : {&waiting_, &running_, &swapped_}) {
    auto it = std::ranges::find_if(*queue, [&](const GroupPtr& g) { return g->requestId == id; });
    if (it == queue->end()) continue;
    SequenceGroup& g = **it;
    freeBlocks(g);
    releaseReservation(g);
    g.status = RequestStatus::Finished;
    dropped_.push_back(makeFinished(g, FinishReason::Aborted, "aborted"));
    known_.erase(g.requestId);
    queue->erase(it);
    return true;
  }
  return false;
}

KvUsage Scheduler::kvUsage() const {
  KvUsage u;
  u.admissionBlockedByMemory = admissionBlockedByMemory_;
  if (!reservation_) {
    const BlockStats stats = blocks_.stats();
    u.capacitySlots = stats.totalBlocks * stats.blockSize;
    u.tokenSlots = stats.usedSlots;
    u.internalFragmentation = stats.allocatedSlots - stats.usedSlots;
    u.freeSlots = u.capacitySlots - stats.allocatedSlots;
    return u;
  }
  u.capacitySlots = reservation_->capacity();
  for (const auto* queue : {&running_, &swapped_}) {
    for (const GroupPtr& g : *queue) {
      auto it = reserved_.find(g->requestId);
      if (it == reserved_.end()) continue;
      const int64_t perSeq = reservationPerSeq(*g);
      const int64_t maxTokens = g->params.maxTokens ? *g->params.maxTokens : config_.maxModelLen - g->promptLen();
      // The slots each sequence will have used when it ends by length.
      const int64_t eventual = std::min(perSeq, g->promptLen() + maxTokens);
      int64_t ranges = static_cast<int64_t>(it->second.size());
      // Each of the group's ranges belongs to one sequence. A live sequence holds its computed
      // tokens and will still fill its range up to its eventual length. While the prompt is
      // computed once for several samples (the root), each sample's range is to get its own copy
      // (the baselines cannot share), so each counts the root's progress. Beams not yet forked
      // will fill their ranges later; a finished sample's range never holds a token again.
      auto account = [&](int64_t computed) {
        computed = std::min(computed, eventual);
        u.tokenSlots += computed;
        u.reservedSlots += eventual - computed;
        u.internalFragmentation += perSeq - eventual;
        --ranges;
      };
      for (const Sequence& s : g->seqs)
        if (!s.finished() && ranges > 0) account(g->root ? g->rootComputed : s.numComputed);
      if (g->beam)
        while (ranges > 0) account(0);
      u.internalFragmentation += ranges * perSeq;
    }
  }
  const int64_t free = u.capacitySlots - u.tokenSlots - u.reservedSlots - u.internalFragmentation;
  if (admissionBlockedByMemory_) u.externalFragmentation = free;
  else u.freeSlots = free;
  return u;
}

std::vector<FinishedRequest> Scheduler::takeDropped() { return std::exchange(dropped_, {}); }

}  // namespace pagedc
