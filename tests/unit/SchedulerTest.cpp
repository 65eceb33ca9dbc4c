// Tests of the iteration-level scheduler, driven by a fake model that samples deterministic tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "ir/Error.h"
#include "SchedulerTestSupport.h"
#include "runtime/Scheduler.h"

namespace pagedc {
namespace {

using testing::maxTokens;
using testing::promptOf;

// Runs steps, checking the plan's invariants, and collects every finished request.
struct Driver {
  Driver(BlockManager& b, Scheduler& s) : blocks(b), sched(s) {}
  BlockManager& blocks;
  Scheduler& sched;
  std::map<RequestId, FinishedRequest> done;
  std::vector<StepPlan> plans;
  int64_t maxRunningSeqs = 0;

  // The fake model: the token depends only on the sequence and its length, so recompute replays it.
  static TokenId fakeToken(SeqId seq, int64_t contextLen) { return 1000 + (seq * 7 + contextLen) % 50; }

  void collect(std::vector<FinishedRequest> finished) {
    for (auto& f : finished) {
      EXPECT_FALSE(done.count(f.requestId)) << f.requestId;
      done[f.requestId] = std::move(f);
    }
  }

  StepPlan step() {
    StepPlan plan = sched.schedule();
    EXPECT_LE(plan.numTokens(), sched.config().maxNumBatchedTokens);
    EXPECT_LE(sched.numRunning(), sched.config().maxNumSeqs);
    maxRunningSeqs = std::max(maxRunningSeqs, sched.numRunning());
    std::vector<SequenceToken> sampled;
    std::set<int64_t> slotsThisStep;
    for (const auto& s : plan.seqs) {
      for (int64_t slot : s.slots) EXPECT_TRUE(slotsThisStep.insert(slot).second) << "slot " << slot << " written twice";
      for (size_t i = 1; i < s.positions.size(); ++i) EXPECT_EQ(s.positions[i], s.positions[i - 1] + 1);
      EXPECT_EQ(s.tokens.size(), s.positions.size());
      EXPECT_EQ(s.tokens.size(), s.slots.size());
      EXPECT_EQ(s.positions.back() + 1, s.contextLen);
      EXPECT_EQ(s.needsLogits, !s.sampleSeqs.empty());
      for (SeqId q : s.sampleSeqs) sampled.push_back({q, fakeToken(q, s.contextLen)});
    }
    collect(sched.onStepDone(sampled).finished);
    collect(sched.takeDropped());
    blocks.checkInvariants();
    plans.push_back(plan);
    return plan;
  }

  void runToEnd(int maxSteps = 100000) {
    for (int i = 0; i < maxSteps && sched.hasUnfinished(); ++i) step();
    ASSERT_FALSE(sched.hasUnfinished()) << "did not finish in " << maxSteps << " steps";
    collect(sched.takeDropped());
  }
};

BlockManager makeBlocks(int64_t numBlocks, int64_t blockSize = 4, int64_t hostBlocks = 0, bool prefix = true) {
  BlockManagerConfig c;
  c.blockSize = blockSize;
  c.numDeviceBlocks = numBlocks;
  c.numHostBlocks = hostBlocks;
  c.enablePrefixCaching = prefix;
  return BlockManager(c);
}

TEST(SchedulerTest, SingleRequestRunsToMaxTokens) {
  auto blocks = makeBlocks(16);
  Scheduler sched({}, blocks);
  sched.addRequest("a", promptOf(6, 1), maxTokens(5));
  Driver d{blocks, sched};
  StepPlan first = d.step();
  ASSERT_EQ(first.seqs.size(), 1u);
  EXPECT_TRUE(first.seqs[0].isPrompt);
  EXPECT_TRUE(first.seqs[0].needsLogits);
  EXPECT_EQ(first.seqs[0].tokens, promptOf(6, 1));
  EXPECT_EQ(first.seqs[0].positions, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  StepPlan second = d.step();
  ASSERT_EQ(second.seqs.size(), 1u);
  EXPECT_FALSE(second.seqs[0].isPrompt);
  EXPECT_EQ(second.seqs[0].tokens.size(), 1u);
  EXPECT_EQ(second.seqs[0].positions[0], 6);
  d.runToEnd();
  ASSERT_EQ(d.done.count("a"), 1u);
  EXPECT_EQ(d.done["a"].reason, FinishReason::Length);
  EXPECT_EQ(d.done["a"].completions[0].output.size(), 5u);
  EXPECT_EQ(d.plans.size(), 5u);  // one prefill, four decodes
  EXPECT_EQ(blocks.stats().usedBlocks, 0);
}

TEST(SchedulerTest, EosStopsAfterMinTokens) {
  auto blocks = makeBlocks(16);
  Scheduler sched({}, blocks);
  SamplingParams p = maxTokens(10);
  p.eosTokenIds = {7};
  p.minTokens = 2;
  sched.addRequest("a", promptOf(3, 1), p);
  std::vector<FinishedRequest> out;
  for (int i = 0; i < 10 && out.empty(); ++i) {
    auto plan = sched.schedule();
    out = sched.onStepDone(std::vector<SequenceToken>{{plan.seqs[0].seq, 7}}).finished;
  }
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reason, FinishReason::Stop);
  EXPECT_EQ(out[0].completions[0].output.size(), 3u);  // the first two EOS are inside min_tokens
}

TEST(SchedulerTest, FcfsOrder) {
  auto blocks = makeBlocks(64);
  SchedulerConfig c;
  c.maxNumSeqs = 1;
  Scheduler sched(c, blocks);
  for (int i = 0; i < 4; ++i) sched.addRequest("r" + std::to_string(i), promptOf(5, 10 * i + 1), maxTokens(3));
  Driver d{blocks, sched};
  std::vector<RequestId> order;
  while (sched.hasUnfinished()) {
    auto plan = d.step();
    for (const auto& s : plan.seqs)
      if (order.empty() || order.back() != s.requestId) order.push_back(s.requestId);
  }
  EXPECT_EQ(order, (std::vector<RequestId>{"r0", "r1", "r2", "r3"}));
  EXPECT_EQ(d.maxRunningSeqs, 1);
}

TEST(SchedulerTest, TokenBudgetAndChunkedPrefill) {
  auto blocks = makeBlocks(64);
  SchedulerConfig c;
  c.maxNumBatchedTokens = 8;
  c.enableChunkedPrefill = true;
  Scheduler sched(c, blocks);
  sched.addRequest("short", promptOf(3, 1), maxTokens(6));
  sched.addRequest("long", promptOf(20, 100), maxTokens(2));
  Driver d{blocks, sched};
  d.runToEnd();
  // Step 1: short's 3 + long's first 5; then long advances by 7 beside short's decode.
  ASSERT_GE(d.plans.size(), 4u);
  ASSERT_EQ(d.plans[0].seqs.size(), 2u);
  EXPECT_EQ(d.plans[0].seqs[1].tokens.size(), 5u);
  EXPECT_FALSE(d.plans[0].seqs[1].needsLogits);
  EXPECT_EQ(d.plans[1].seqs[1].tokens.size(), 7u);
  EXPECT_EQ(d.plans[1].seqs[1].positions.front(), 5);
  EXPECT_EQ(d.plans[2].seqs[1].tokens.size(), 7u);
  EXPECT_EQ(d.plans[3].seqs[1].tokens.size(), 1u);  // the last prompt token
  EXPECT_TRUE(d.plans[3].seqs[1].needsLogits);
  for (const auto& p : d.plans) EXPECT_LE(p.numTokens(), 8);
  EXPECT_EQ(d.done["short"].completions[0].output.size(), 6u);
  EXPECT_EQ(d.done["long"].completions[0].output.size(), 2u);
}

TEST(SchedulerTest, WithoutChunkingTooLongPromptIsRejected) {
  auto blocks = makeBlocks(64);
  SchedulerConfig c;
  c.maxNumBatchedTokens = 8;
  Scheduler sched(c, blocks);
  sched.addRequest("long", promptOf(9, 1), maxTokens(2));
  sched.addRequest("ok", promptOf(8, 1), maxTokens(2));
  Driver d{blocks, sched};
  StepPlan plan = d.step();
  ASSERT_EQ(plan.aborted.size(), 1u);
  EXPECT_EQ(plan.aborted[0].requestId, "long");
  EXPECT_NE(plan.aborted[0].message.find("maxNumBatchedTokens"), std::string::npos);
  d.runToEnd();
  EXPECT_EQ(d.done["long"].reason, FinishReason::Rejected);
  EXPECT_EQ(d.done["ok"].completions[0].output.size(), 2u);
}

TEST(SchedulerTest, MaxNumSeqsRespected) {
  auto blocks = makeBlocks(256);
  SchedulerConfig c;
  c.maxNumSeqs = 3;
  Scheduler sched(c, blocks);
  for (int i = 0; i < 10; ++i) sched.addRequest(std::to_string(i), promptOf(4, 10 * i + 1), maxTokens(4));
  Driver d{blocks, sched};
  d.runToEnd();
  EXPECT_EQ(d.maxRunningSeqs, 3);
  for (const auto& p : d.plans) EXPECT_LE(p.seqs.size(), 3u);
  EXPECT_EQ(d.done.size(), 10u);
}

void runPreemption(PreemptionMode mode) {
  // 8 blocks of 4 tokens; three requests of 8 + 12 tokens need 5 blocks each at the end.
  auto blocks = makeBlocks(8, 4, mode == PreemptionMode::Swap ? 32 : 0);
  SchedulerConfig c;
  c.preemptionMode = mode;
  Scheduler sched(c, blocks);
  for (int i = 0; i < 3; ++i) sched.addRequest("r" + std::to_string(i), promptOf(8, 100 * i + 1), maxTokens(12));
  Driver d{blocks, sched};
  std::vector<RequestId> preempted;
  while (sched.hasUnfinished()) {
    auto plan = d.step();
    preempted.insert(preempted.end(), plan.preempted.begin(), plan.preempted.end());
    if (mode == PreemptionMode::Recompute) {
      EXPECT_TRUE(plan.swapOut.empty());
    } else if (!plan.preempted.empty()) {
      EXPECT_FALSE(plan.swapOut.empty());
    }
    ASSERT_LT(d.plans.size(), 1000u);
  }
  ASSERT_FALSE(preempted.empty());
  EXPECT_EQ(preempted.front(), "r2");  // the newest gives way first
  EXPECT_EQ(sched.numPreemptions(), static_cast<int64_t>(preempted.size()));
  for (int i = 0; i < 3; ++i) {
    auto& f = d.done["r" + std::to_string(i)];
    EXPECT_EQ(f.reason, FinishReason::Length);
    EXPECT_EQ(f.completions[0].output.size(), 12u);
  }
  EXPECT_EQ(blocks.stats().usedBlocks, 0);
  EXPECT_EQ(blocks.stats().hostUsedBlocks, 0);
  EXPECT_EQ(sched.numRunning() + sched.numWaiting() + sched.numSwapped(), 0);
}

TEST(SchedulerTest, PreemptionByRecompute) { runPreemption(PreemptionMode::Recompute); }
TEST(SchedulerTest, PreemptionBySwap) { runPreemption(PreemptionMode::Swap); }

TEST(SchedulerTest, RecomputeReplaysGeneratedTokensInOnePass) {
  // Prefix caching off: otherwise the victim's own cached blocks would shorten its re-prefill.
  auto blocks = makeBlocks(8, 4, 0, false);
  Scheduler sched({}, blocks);
  for (int i = 0; i < 3; ++i) sched.addRequest("r" + std::to_string(i), promptOf(8, 100 * i + 1), maxTokens(12));
  Driver d{blocks, sched};
  bool sawReprefill = false;
  while (sched.hasUnfinished()) {
    auto plan = d.step();
    for (const auto& s : plan.seqs)
      if (s.requestId == "r2" && s.isPrompt && s.tokens.size() > 8) {
        sawReprefill = true;
        EXPECT_EQ(s.positions.front(), 0);
        EXPECT_TRUE(s.needsLogits);
      }
  }
  EXPECT_TRUE(sawReprefill);
}

TEST(SchedulerTest, TooLongRequestRejectedOthersProceed) {
  auto blocks = makeBlocks(4, 4);
  Scheduler sched({}, blocks);
  sched.addRequest("a", promptOf(5, 1), maxTokens(3));
  sched.addRequest("huge", promptOf(17, 1), maxTokens(3));
  sched.addRequest("b", promptOf(5, 50), maxTokens(3));
  Driver d{blocks, sched};
  StepPlan plan = d.step();
  ASSERT_EQ(plan.aborted.size(), 1u);
  EXPECT_EQ(plan.aborted[0].requestId, "huge");
  EXPECT_NE(plan.aborted[0].message.find("KV cache blocks"), std::string::npos) << plan.aborted[0].message;
  d.runToEnd();
  EXPECT_EQ(d.done["a"].completions[0].output.size(), 3u);
  EXPECT_EQ(d.done["b"].completions[0].output.size(), 3u);
  EXPECT_EQ(d.done["huge"].reason, FinishReason::Rejected);
}

TEST(SchedulerTest, OutgrowingThePoolIsRejectedNotLooped) {
  auto blocks = makeBlocks(4, 4);
  Scheduler sched({}, blocks);
  sched.addRequest("grow", promptOf(8, 1), maxTokens(20));  // 28 tokens > 16 slots
  Driver d{blocks, sched};
  d.runToEnd(100);
  EXPECT_EQ(d.done["grow"].reason, FinishReason::Rejected);
  EXPECT_NE(d.done["grow"].message.find("outgrew"), std::string::npos);
  EXPECT_EQ(blocks.stats().usedBlocks, 0);
}

TEST(SchedulerTest, AbortFreesBlocks) {
  auto blocks = makeBlocks(32, 4, 32);
  Scheduler sched({}, blocks);
  sched.addRequest("a", promptOf(10, 1), maxTokens(50));
  sched.addRequest("b", promptOf(10, 40), maxTokens(50));
  Driver d{blocks, sched};
  d.step();
  d.step();
  sched.addRequest("c", promptOf(4, 90), maxTokens(50));
  EXPECT_GT(blocks.stats().usedBlocks, 0);
  EXPECT_TRUE(sched.abort("a"));
  EXPECT_TRUE(sched.abort("c"));  // still waiting
  EXPECT_FALSE(sched.abort("nope"));
  d.step();
  EXPECT_TRUE(sched.abort("b"));
  EXPECT_FALSE(sched.hasUnfinished());
  EXPECT_EQ(blocks.stats().usedBlocks, 0);
  EXPECT_EQ(blocks.stats().numSequences, 0);
  // The driver's step collected a and c; b was aborted after it.
  EXPECT_EQ(d.done["a"].reason, FinishReason::Aborted);
  EXPECT_EQ(d.done["c"].reason, FinishReason::Aborted);
  auto dropped = sched.takeDropped();
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].requestId, "b");
  EXPECT_THROW(sched.addRequest("x", {}, maxTokens(1)), Error);
}

TEST(SchedulerTest, AbortWhileStepInFlight) {
  auto blocks = makeBlocks(32);
  Scheduler sched({}, blocks);
  sched.addRequest("a", promptOf(4, 1), maxTokens(5));
  auto plan = sched.schedule();
  EXPECT_THROW(sched.schedule(), Error);
  EXPECT_TRUE(sched.abort("a"));
  EXPECT_TRUE(sched.onStepDone(std::vector<SequenceToken>{{plan.seqs[0].seq, 3}}).finished.empty());
  EXPECT_EQ(blocks.stats().usedBlocks, 0);
}

TEST(SchedulerTest, PrefixCachedTokensAreSkipped) {
  auto blocks = makeBlocks(32, 4);
  Scheduler sched({}, blocks);
  sched.addRequest("first", promptOf(10, 1), maxTokens(1));
  Driver d{blocks, sched};
  d.runToEnd();
  sched.addRequest("second", promptOf(10, 1), maxTokens(1));
  StepPlan plan = d.step();
  ASSERT_EQ(plan.seqs.size(), 1u);
  // Two full blocks (8 tokens) are cached; the last two prompt tokens are computed.
  EXPECT_EQ(plan.seqs[0].tokens.size(), 2u);
  EXPECT_EQ(plan.seqs[0].positions.front(), 8);
  EXPECT_TRUE(plan.seqs[0].needsLogits);
  EXPECT_EQ(blocks.stats().prefixHitTokens, 8);
}

void runRandom(PreemptionMode mode, bool chunked, uint32_t seed) {
  auto blocks = makeBlocks(48, 4, mode == PreemptionMode::Swap ? 24 : 0);
  SchedulerConfig c;
  c.preemptionMode = mode;
  c.enableChunkedPrefill = chunked;
  c.maxNumBatchedTokens = chunked ? 32 : 256;
  c.maxNumSeqs = 12;
  Scheduler sched(c, blocks);
  Driver d{blocks, sched};
  std::mt19937 rng(seed);
  std::map<RequestId, int64_t> want;
  int next = 0;
  int64_t steps = 0;
  int64_t swapOuts = 0;
  while (next < 200 || sched.hasUnfinished()) {
    for (int k = std::uniform_int_distribution<int>(0, 3)(rng); k > 0 && next < 200; --k, ++next) {
      // Shared prefixes (few distinct bases) exercise prefix caching; a few prompts are too long.
      int64_t len = std::uniform_int_distribution<int64_t>(1, 60)(rng);
      if (next % 37 == 5) len = 48 * 4 + 1;
      int64_t maxTok = std::uniform_int_distribution<int64_t>(1, 40)(rng);
      TokenId base = std::uniform_int_distribution<TokenId>(0, 3)(rng) * 100;
      RequestId id = "q" + std::to_string(next);
      want[id] = maxTok;
      SamplingParams p = maxTokens(maxTok);
      p.eosTokenIds = {999999};
      sched.addRequest(id, promptOf(len, base), p);
    }
    if (next % 50 == 17 && sched.hasUnfinished()) sched.abort("q" + std::to_string(next - 3));
    if (!d.step().swapOut.empty()) ++swapOuts;
    ASSERT_LT(++steps, 20000) << "no progress";
  }
  int64_t completed = 0;
  for (const auto& [id, maxTok] : want) {
    ASSERT_EQ(d.done.count(id), 1u) << id;
    const auto& f = d.done[id];
    if (f.reason == FinishReason::Length) {
      EXPECT_EQ(static_cast<int64_t>(f.completions[0].output.size()), maxTok) << id;
      ++completed;
    } else {
      EXPECT_TRUE(f.reason == FinishReason::Rejected || f.reason == FinishReason::Aborted) << id;
    }
  }
  EXPECT_GT(completed, 150);
  EXPECT_GT(sched.numPreemptions(), 0);
  if (mode == PreemptionMode::Swap) {
    EXPECT_GT(swapOuts, 0);
  }
  EXPECT_EQ(blocks.stats().usedBlocks, 0);
  EXPECT_EQ(blocks.stats().hostUsedBlocks, 0);
  blocks.checkInvariants();
}

// --- Groups of several sequences: parallel sampling, best_of, beam search ---

// A fake model whose next token (or beam candidates) depends only on the sequence's tokens, so a
// sequence's future is the same whatever its id, batch, preemption or swap.
uint64_t contentHash(const SequenceGroup& g, const Sequence& s) {
  uint64_t h = 1469598103934665603ull;
  for (int64_t i = 0; i < g.numTokens(s); ++i) h = (h ^ static_cast<uint64_t>(g.tokenAt(s, i))) * 1099511628211ull;
  return h;
}

std::vector<TokenLogprob> fakeCandidates(uint64_t h, int64_t k) {
  std::vector<TokenLogprob> top;
  for (int64_t i = 0; i < k; ++i)
    top.push_back({static_cast<TokenId>(1000 + (h + 7 * static_cast<uint64_t>(i)) % 50),
                   -0.3 * static_cast<double>(i + 1) - 0.01 * static_cast<double>((h >> 8) % 37)});
  return top;
}

struct ContentDriver {
  ContentDriver(BlockManager& b, Scheduler& s) : blocks(b), sched(s) {}
  BlockManager& blocks;
  Scheduler& sched;
  std::map<RequestId, FinishedRequest> done;
  std::map<RequestId, std::vector<FinishedSequence>> seqDone;
  std::vector<StepPlan> plans;
  int64_t peakUsed = 0, peakUnshared = 0, maxRunningSeqs = 0;
  int64_t outputReprefills = 0;  // a forked sequence recomputing its own output after recompute

  StepPlan step() {
    StepPlan plan = sched.schedule();
    EXPECT_LE(plan.numTokens(), sched.config().maxNumBatchedTokens);
    EXPECT_LE(sched.numRunningSeqs(), sched.config().maxNumSeqs);
    maxRunningSeqs = std::max(maxRunningSeqs, sched.numRunningSeqs());
    auto st = blocks.stats();
    peakUsed = std::max(peakUsed, st.usedBlocks);
    peakUnshared = std::max(peakUnshared, st.unsharedBlocks);
    StepSamples samples;
    std::set<int64_t> slotsThisStep;
    for (const auto& s : plan.seqs) {
      for (int64_t slot : s.slots) EXPECT_TRUE(slotsThisStep.insert(slot).second) << "slot " << slot << " written twice";
      EXPECT_EQ(s.needsLogits, !s.sampleSeqs.empty());
      const SequenceGroup* g = sched.find(s.requestId);
      EXPECT_NE(g, nullptr);
      if (!g) continue;
      if (g->seqs.size() > 1 && s.isPrompt && s.positions.front() == g->promptLen()) ++outputReprefills;
      for (SeqId q : s.sampleSeqs) {
        const Sequence* seq = g->find(q);
        EXPECT_NE(seq, nullptr);
        if (!seq) continue;
        // Every sequence sampled this step has all its tokens computed.
        EXPECT_EQ(seq->numComputed, g->numTokens(*seq));
        uint64_t h = contentHash(*g, *seq);
        if (g->beam) {
          samples.beams.push_back({q, fakeCandidates(h, g->beam->candidatesPerBeam())});
        } else {
          h = (h ^ static_cast<uint64_t>(seq->sampleIndex + 1)) * 1099511628211ull;  // samples differ
          samples.tokens.push_back({q, static_cast<TokenId>(1000 + h % 50), -0.01 * static_cast<double>(h % 97)});
        }
      }
    }
    StepResult result = sched.onStepDone(samples);
    for (auto& f : result.finishedSequences) seqDone[f.requestId].push_back(f);
    for (auto& f : result.finished) done[f.requestId] = f;
    for (auto& f : sched.takeDropped()) done[f.requestId] = f;
    blocks.checkInvariants();
    plans.push_back(plan);
    return plan;
  }

  void runToEnd(int maxSteps = 100000) {
    for (int i = 0; i < maxSteps && sched.hasUnfinished(); ++i) step();
    ASSERT_FALSE(sched.hasUnfinished()) << "did not finish in " << maxSteps << " steps";
  }
};

SamplingParams sampling(int64_t n, int64_t bestOf, int64_t maxTok) {
  SamplingParams p = maxTokens(maxTok);
  p.n = n;
  p.bestOf = bestOf;
  return p;
}

SamplingParams beamParams(int64_t width, int64_t n, int64_t maxTok, EarlyStopping es = EarlyStopping::Heuristic) {
  SamplingParams p = maxTokens(maxTok);
  p.n = n;
  p.bestOf = width;
  p.useBeamSearch = true;
  p.temperature = 0.0;
  p.earlyStopping = es;
  return p;
}

TEST(SchedulerTest, ParallelSamplesShareThePromptAndCopyOnlyTheLastBlock) {
  auto blocks = makeBlocks(32, 4, 0, false);
  Scheduler sched({}, blocks);
  sched.addRequest("a", promptOf(6, 1), sampling(3, 3, 5));
  ContentDriver d{blocks, sched};
  StepPlan first = d.step();
  // The prompt is computed once, by a temporary sequence forked into the three samples.
  ASSERT_EQ(first.seqs.size(), 1u);
  EXPECT_EQ(first.seqs[0].tokens, promptOf(6, 1));
  EXPECT_EQ(first.seqs[0].sampleSeqs.size(), 3u);
  EXPECT_EQ(std::ranges::count(first.seqs[0].sampleSeqs, first.seqs[0].seq), 0);
  EXPECT_EQ(blocks.stats().usedBlocks, 2);
  EXPECT_EQ(blocks.stats().numSequences, 3);
  StepPlan second = d.step();
  ASSERT_EQ(second.seqs.size(), 3u);
  // All three write into the shared half-full second block: two copy it, the last writes in place.
  EXPECT_EQ(second.copies.size(), 2u);
  EXPECT_EQ(blocks.stats().usedBlocks, 4);
  EXPECT_EQ(blocks.stats().unsharedBlocks, 6);
  d.runToEnd();
  const auto& f = d.done.at("a");
  EXPECT_EQ(f.reason, FinishReason::Length);
  ASSERT_EQ(f.completions.size(), 3u);
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(f.completions[static_cast<size_t>(i)].index, i);
    EXPECT_EQ(f.completions[static_cast<size_t>(i)].output.size(), 5u);
  }
  EXPECT_EQ(d.seqDone["a"].size(), 3u);
  EXPECT_EQ(blocks.stats().usedBlocks, 0);
  EXPECT_EQ(blocks.stats().numSequences, 0);
}

TEST(SchedulerTest, BestOfReturnsTheNHighestCumulativeLogprobs) {
  auto run = [](int64_t n) {
    auto blocks = makeBlocks(64, 4);
    Scheduler sched({}, blocks);
    sched.addRequest("a", promptOf(5, 1), sampling(n, 4, 6));
    ContentDriver d{blocks, sched};
    d.runToEnd();
    EXPECT_EQ(d.seqDone["a"].size(), 4u);
    return d.done.at("a");
  };
  FinishedRequest all = run(4), best = run(2);
  ASSERT_EQ(all.completions.size(), 4u);
  ASSERT_EQ(best.completions.size(), 2u);
  auto ranked = all.completions;
  std::ranges::stable_sort(ranked, std::greater<>{}, &Completion::cumulativeLogprob);
  EXPECT_GT(ranked[0].cumulativeLogprob, ranked[3].cumulativeLogprob);  // the samples differ
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(best.completions[k].index, static_cast<int64_t>(k));
    EXPECT_EQ(best.completions[k].output, ranked[k].output);
    EXPECT_DOUBLE_EQ(best.completions[k].cumulativeLogprob, ranked[k].cumulativeLogprob);
  }
}

TEST(SchedulerTest, ASampleEndsAloneAndTheGroupWhenAllHave) {
  auto blocks = makeBlocks(64, 4);
  Scheduler sched({}, blocks);
  SamplingParams p = sampling(2, 2, 8);
  p.eosTokenIds = {77};
  sched.addRequest("a", promptOf(3, 1), p);
  std::vector<SeqId> ids;
  StepPlan plan = sched.schedule();
  ids = plan.seqs[0].sampleSeqs;
  ASSERT_EQ(ids.size(), 2u);
  // Sample 1 draws EOS at once; sample 0 goes on.
  StepResult r = sched.onStepDone(std::vector<SequenceToken>{{ids[0], 5}, {ids[1], 77}});
  ASSERT_EQ(r.finishedSequences.size(), 1u);
  EXPECT_EQ(r.finishedSequences[0].sampleIndex, 1);
  EXPECT_EQ(r.finishedSequences[0].reason, FinishReason::Stop);
  EXPECT_TRUE(r.finished.empty());
  EXPECT_EQ(sched.numRunningSeqs(), 1);
  for (int i = 0; i < 7 && r.finished.empty(); ++i) {
    plan = sched.schedule();
    ASSERT_EQ(plan.seqs.size(), 1u);
    EXPECT_EQ(plan.seqs[0].seq, ids[0]);
    r = sched.onStepDone(std::vector<SequenceToken>{{ids[0], 6}});
    blocks.checkInvariants();
  }
  ASSERT_EQ(r.finished.size(), 1u);
  const auto& f = r.finished[0];
  ASSERT_EQ(f.completions.size(), 2u);
  EXPECT_EQ(f.completions[0].output.size(), 8u);
  EXPECT_EQ(f.completions[0].reason, FinishReason::Length);
  EXPECT_EQ(f.completions[1].output, (std::vector<TokenId>{77}));
  EXPECT_EQ(f.completions[1].reason, FinishReason::Stop);
  EXPECT_EQ(blocks.stats().usedBlocks, 0);
}

TEST(SchedulerTest, MaxNumSeqsCountsEverySequenceOfAGroup) {
  auto blocks = makeBlocks(256, 4);
  SchedulerConfig c;
  c.maxNumSeqs = 5;
  Scheduler sched(c, blocks);
  sched.addRequest("a", promptOf(4, 1), sampling(3, 3, 4));
  sched.addRequest("b", promptOf(4, 50), beamParams(3, 1, 4));
  sched.addRequest("c", promptOf(4, 90), maxTokens(4));
  sched.addRequest("wide", promptOf(4, 10), sampling(6, 6, 4));  // can never run
  ContentDriver d{blocks, sched};
  d.runToEnd();
  EXPECT_LE(d.maxRunningSeqs, 5);
  EXPECT_EQ(d.done.at("wide").reason, FinishReason::Rejected);
  EXPECT_NE(d.done.at("wide").completions.size(), 0u);
  EXPECT_NE(d.done.at("wide").message.find("maxNumSeqs"), std::string::npos);
  // a (3) runs first; b (3) waits for it (3 + 3 > 5) and c, behind b, waits too (strict FCFS).
  std::set<RequestId> firstStep;
  for (const auto& s : d.plans[0].seqs) firstStep.insert(s.requestId);
  EXPECT_EQ(firstStep, (std::set<RequestId>{"a"}));
  for (const char* id : {"a", "b", "c"}) EXPECT_EQ(d.done.at(id).reason, FinishReason::Length) << id;
}

TEST(SchedulerTest, BeamSearchForksAndFreesSequencesSharingBlocks) {
  auto blocks = makeBlocks(64, 4, 0, false);
  Scheduler sched({}, blocks);
  sched.addRequest("beam", promptOf(9, 1), beamParams(4, 2, 7, EarlyStopping::Never));
  ContentDriver d{blocks, sched};
  StepPlan first = d.step();
  ASSERT_EQ(first.seqs.size(), 1u);  // one beam computes the prompt
  EXPECT_EQ(sched.find("beam")->seqs.size(), 4u);
  d.runToEnd();
  const auto& f = d.done.at("beam");
  ASSERT_EQ(f.completions.size(), 2u);
  for (const auto& c : f.completions) {
    EXPECT_EQ(c.output.size(), 7u);
    ASSERT_TRUE(c.beamScore.has_value());
    EXPECT_NEAR(*c.beamScore, c.cumulativeLogprob / 7.0, 1e-12);
  }
  EXPECT_GE(*f.completions[0].beamScore, *f.completions[1].beamScore);
  for (const auto& p : d.plans) {
    size_t decoding = 0;
    for (const auto& s : p.seqs) decoding += s.isPrompt ? 0 : 1;
    EXPECT_LE(p.copies.size(), decoding);  // at most the one partly filled block per beam
  }
  // Four beams of 9 + 7 tokens would hold 16 blocks alone; they share the prompt's.
  EXPECT_LT(d.peakUsed, d.peakUnshared);
  EXPECT_EQ(blocks.stats().usedBlocks, 0);
  EXPECT_EQ(blocks.stats().numSequences, 0);
}

// Groups of several sequences preempted by recompute or swap produce what they produce unpreempted.
void runGroupPreemption(PreemptionMode mode, bool chunked) {
  auto run = [&](int64_t numBlocks, int64_t* preemptions) {
    auto blocks = makeBlocks(numBlocks, 4, mode == PreemptionMode::Swap ? 12 : 0, false);
    SchedulerConfig c;
    c.preemptionMode = mode;
    c.enableChunkedPrefill = chunked;
    c.maxNumBatchedTokens = chunked ? 16 : 64;
    Scheduler sched(c, blocks);
    ContentDriver d{blocks, sched};
    for (int i = 0; i < 6; ++i) {
      RequestId id = "r" + std::to_string(i);
      auto prompt = promptOf(5 + 3 * i, 100 * i + 1);
      if (i % 3 == 0) sched.addRequest(id, prompt, sampling(2, 3, 9));
      else if (i % 3 == 1) sched.addRequest(id, prompt, beamParams(3, 2, 8, EarlyStopping::Never));
      else sched.addRequest(id, prompt, maxTokens(10));
    }
    d.runToEnd();
    if (preemptions) {
      *preemptions = sched.numPreemptions();
      // Recompute re-prefills the prompt once, then each forked sequence its own output.
      if (mode == PreemptionMode::Recompute) {
        EXPECT_GT(d.outputReprefills, 0);
      }
    }
    EXPECT_EQ(blocks.stats().usedBlocks, 0);
    EXPECT_EQ(blocks.stats().hostUsedBlocks, 0);
    return d.done;
  };
  int64_t preemptions = 0;
  auto roomy = run(256, nullptr);
  auto tight = run(14, &preemptions);
  EXPECT_GT(preemptions, 0);
  ASSERT_EQ(roomy.size(), 6u);
  for (const auto& [id, f] : roomy) {
    ASSERT_EQ(tight.count(id), 1u) << id;
    const auto& g = tight.at(id);
    EXPECT_EQ(g.reason, FinishReason::Length) << id << ": " << g.message;
    ASSERT_EQ(g.completions.size(), f.completions.size()) << id;
    for (size_t k = 0; k < f.completions.size(); ++k) {
      EXPECT_EQ(g.completions[k].output, f.completions[k].output) << id << " completion " << k;
      EXPECT_DOUBLE_EQ(g.completions[k].cumulativeLogprob, f.completions[k].cumulativeLogprob) << id;
    }
  }
}

TEST(SchedulerTest, GroupPreemptionByRecompute) { runGroupPreemption(PreemptionMode::Recompute, false); }
TEST(SchedulerTest, GroupPreemptionBySwap) { runGroupPreemption(PreemptionMode::Swap, false); }
TEST(SchedulerTest, GroupPreemptionByRecomputeChunked) { runGroupPreemption(PreemptionMode::Recompute, true); }
TEST(SchedulerTest, GroupPreemptionBySwapChunked) { runGroupPreemption(PreemptionMode::Swap, true); }

TEST(SchedulerTest, PromptLogprobsAskForEveryPromptRowAndSkipThePrefixCache) {
  auto blocks = makeBlocks(64, 4);
  SchedulerConfig c;
  c.enableChunkedPrefill = true;
  c.maxNumBatchedTokens = 6;
  Scheduler sched(c, blocks);
  sched.addRequest("warm", promptOf(10, 1), maxTokens(1));
  ContentDriver d{blocks, sched};
  d.runToEnd();
  const int64_t hits = blocks.stats().prefixHitTokens;
  SamplingParams p = maxTokens(2);
  p.promptLogprobs = 0;
  sched.addRequest("plp", promptOf(10, 1), p);
  std::vector<StepPlan> plans;
  while (sched.hasUnfinished()) plans.push_back(d.step());
  EXPECT_EQ(blocks.stats().prefixHitTokens, hits);  // no cached prefix taken
  ASSERT_EQ(plans.size(), 3u);                      // chunks of 6 and 4, then one decode
  EXPECT_TRUE(plans[0].seqs[0].allLogits);
  EXPECT_EQ(plans[0].numLogits(), 6);
  EXPECT_TRUE(plans[1].seqs[0].allLogits);
  EXPECT_EQ(plans[1].numLogits(), 4);
  EXPECT_TRUE(plans[1].seqs[0].needsLogits);
  EXPECT_FALSE(plans[2].seqs[0].allLogits);
  EXPECT_EQ(plans[2].numLogits(), 1);
}

TEST(SchedulerTest, AbortOfAGroupFreesEverySequence) {
  auto blocks = makeBlocks(64, 4, 32);
  Scheduler sched({}, blocks);
  sched.addRequest("s", promptOf(7, 1), sampling(3, 3, 20));
  sched.addRequest("b", promptOf(7, 40), beamParams(3, 1, 20, EarlyStopping::Never));
  ContentDriver d{blocks, sched};
  for (int i = 0; i < 4; ++i) d.step();
  EXPECT_GT(blocks.stats().numSequences, 4);
  EXPECT_TRUE(sched.abort("s"));
  EXPECT_TRUE(sched.abort("b"));
  EXPECT_EQ(blocks.stats().usedBlocks, 0);
  EXPECT_EQ(blocks.stats().numSequences, 0);
  blocks.checkInvariants();
  auto dropped = sched.takeDropped();
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_EQ(dropped[0].reason, FinishReason::Aborted);
  EXPECT_EQ(dropped[0].completions.size(), 3u);
  EXPECT_EQ(dropped[0].completions[0].output.size(), 4u);
  EXPECT_FALSE(sched.hasUnfinished());
}

TEST(SchedulerTest, WrongKindOfSampleIsAnError) {
  auto blocks = makeBlocks(64, 4);
  Scheduler sched({}, blocks);
  sched.addRequest("b", promptOf(4, 1), beamParams(2, 1, 4));
  StepPlan plan = sched.schedule();
  EXPECT_THROW(sched.onStepDone(std::vector<SequenceToken>{{plan.seqs[0].seq, 3}}), Error);
  Scheduler other({}, blocks);
  EXPECT_THROW(other.addRequest("x", promptOf(4, 1), sampling(3, 2, 4)), Error);  // best_of < n
}

TEST(SchedulerTest, RandomizedRecompute) { runRandom(PreemptionMode::Recompute, false, 1234); }
TEST(SchedulerTest, RandomizedSwap) { runRandom(PreemptionMode::Swap, false, 1234); }
TEST(SchedulerTest, RandomizedRecomputeChunked) { runRandom(PreemptionMode::Recompute, true, 99); }
TEST(SchedulerTest, RandomizedSwapChunked) { runRandom(PreemptionMode::Swap, true, 99); }

}  // namespace
}  // namespace pagedc
