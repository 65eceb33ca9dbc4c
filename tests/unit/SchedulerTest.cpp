// Tests of the iteration-level scheduler, driven by a fake model that samples deterministic tokens.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "ir/Error.h"
#include "runtime/Scheduler.h"

namespace pagedc {
namespace {

SamplingParams maxTokens(int64_t n) {
  SamplingParams p;
  p.maxTokens = n;
  return p;
}

std::vector<TokenId> promptOf(int64_t len, TokenId base) {
  std::vector<TokenId> p;
  for (int64_t i = 0; i < len; ++i) p.push_back(base + i);
  return p;
}

// Runs steps, checking the plan's invariants, and collects every finished request.
struct Driver {
  Driver(BlockManager& b, Scheduler& s) : blocks(b), sched(s) {}
  BlockManager& blocks;
  Scheduler& sched;
  std::map<RequestId, FinishedRequest> done;
  std::vector<StepPlan> plans;
  int64_t maxRunningSeqs = 0;

  // The fake model: the token depends only on the sequence and its length, so recompute replays it.
  static TokenId fakeToken(const ScheduledSequence& s) { return 1000 + (s.seq * 7 + s.contextLen) % 50; }

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
    std::vector<SampledToken> sampled;
    std::set<int64_t> slotsThisStep;
    for (const auto& s : plan.seqs) {
      for (int64_t slot : s.slots) EXPECT_TRUE(slotsThisStep.insert(slot).second) << "slot " << slot << " written twice";
      for (size_t i = 1; i < s.positions.size(); ++i) EXPECT_EQ(s.positions[i], s.positions[i - 1] + 1);
      EXPECT_EQ(s.tokens.size(), s.positions.size());
      EXPECT_EQ(s.tokens.size(), s.slots.size());
      EXPECT_EQ(s.positions.back() + 1, s.contextLen);
      if (s.needsLogits) sampled.push_back({s.seq, fakeToken(s)});
    }
    collect(sched.onStepDone(sampled));
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
  EXPECT_EQ(d.done["a"].output.size(), 5u);
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
    out = sched.onStepDone(std::vector<SampledToken>{{plan.seqs[0].seq, 7}});
  }
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].reason, FinishReason::Stop);
  EXPECT_EQ(out[0].output.size(), 3u);  // the first two EOS are inside min_tokens
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
  EXPECT_EQ(d.done["short"].output.size(), 6u);
  EXPECT_EQ(d.done["long"].output.size(), 2u);
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
  EXPECT_EQ(d.done["ok"].output.size(), 2u);
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
    EXPECT_EQ(f.output.size(), 12u);
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
  EXPECT_EQ(d.done["a"].output.size(), 3u);
  EXPECT_EQ(d.done["b"].output.size(), 3u);
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
  EXPECT_TRUE(sched.onStepDone(std::vector<SampledToken>{{plan.seqs[0].seq, 3}}).empty());
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
      EXPECT_EQ(static_cast<int64_t>(f.output.size()), maxTok) << id;
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

TEST(SchedulerTest, RandomizedRecompute) { runRandom(PreemptionMode::Recompute, false, 1234); }
TEST(SchedulerTest, RandomizedSwap) { runRandom(PreemptionMode::Swap, false, 1234); }
TEST(SchedulerTest, RandomizedRecomputeChunked) { runRandom(PreemptionMode::Recompute, true, 99); }
TEST(SchedulerTest, RandomizedSwapChunked) { runRandom(PreemptionMode::Swap, true, 99); }

}  // namespace
}  // namespace pagedc
