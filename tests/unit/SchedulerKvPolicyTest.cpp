// Tests of the scheduler's reservation policies (the PagedAttention paper's baselines) and of its
// KV budget breakdown (kvUsage).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>

#include "ir/Error.h"
#include "SchedulerTestSupport.h"
#include "runtime/Scheduler.h"

namespace pagedc {
namespace {

using testing::maxTokens;
using testing::promptOf;

// Blocks enough that the reservation, never the pages, limits admission.
struct Fixture {
  explicit Fixture(KvPolicy policy, int64_t capacity, int64_t maxModelLen = 20,
                   const std::function<void(SchedulerConfig&)>& tweak = {})
      : blocks(blockConfig()) {
    SchedulerConfig c;
    c.kvPolicy = policy;
    c.reservationCapacity = capacity;
    c.maxModelLen = maxModelLen;
    if (tweak) tweak(c);
    sched.emplace(c, blocks);
  }
  static BlockManagerConfig blockConfig() {
    BlockManagerConfig c;
    c.blockSize = 4;
    c.numDeviceBlocks = 256;
    return c;
  }
  // One step: every sequence that asks gets token 9, ending it where stop says so. Returns the
  // requests in the plan.
  std::vector<RequestId> step(const std::function<bool(SeqId)>& stop = {}) {
    StepPlan plan = sched->schedule();
    std::vector<SequenceToken> tokens;
    std::vector<RequestId> ids;
    for (const auto& s : plan.seqs) {
      ids.push_back(s.requestId);
      for (SeqId q : s.sampleSeqs) tokens.push_back({.seq = q, .token = 9, .stop = stop && stop(q)});
    }
    for (auto& f : sched->onStepDone(tokens).finished) finished[f.requestId] = f;
    for (auto& f : sched->takeDropped()) finished[f.requestId] = f;
    blocks.checkInvariants();
    return ids;
  }
  static void expectSums(const KvUsage& u) {
    EXPECT_EQ(u.tokenSlots + u.reservedSlots + u.internalFragmentation + u.externalFragmentation + u.freeSlots, u.capacitySlots);
  }
  BlockManager blocks;
  std::optional<Scheduler> sched;
  std::map<RequestId, FinishedRequest> finished;
};

TEST(SchedulerKvPolicyTest, OrcaMaxAdmitsWhatMaxLengthReservationsAllow) {
  Fixture f(KvPolicy::OrcaMax, 80);  // 4 sequences of max_model_len 20
  for (int i = 0; i < 6; ++i) f.sched->addRequest("r" + std::to_string(i), promptOf(4, 1), maxTokens(3));
  EXPECT_EQ(f.step().size(), 4u);
  EXPECT_EQ(f.sched->numWaiting(), 2);
  KvUsage u = f.sched->kvUsage();
  Fixture::expectSums(u);
  EXPECT_EQ(u.tokenSlots, 16);              // four prompts computed
  EXPECT_EQ(u.reservedSlots, 4 * 3);        // each will still compute 3 tokens
  EXPECT_EQ(u.internalFragmentation, 4 * 13);  // 20 reserved, 7 ever used
  EXPECT_TRUE(u.admissionBlockedByMemory);
  while (f.sched->hasUnfinished()) f.step();
  EXPECT_EQ(f.finished.size(), 6u);
  for (const auto& [id, r] : f.finished) EXPECT_EQ(r.completions[0].output.size(), 3u) << id;
}

TEST(SchedulerKvPolicyTest, OracleAdmitsMoreThanMaxInTheSameBudget) {
  Fixture oracle(KvPolicy::OrcaOracle, 80), pow2(KvPolicy::OrcaPow2, 80);
  for (int i = 0; i < 12; ++i) {
    oracle.sched->addRequest("r" + std::to_string(i), promptOf(4, 1), maxTokens(3));  // 7 slots
    pow2.sched->addRequest("r" + std::to_string(i), promptOf(4, 1), maxTokens(3));    // 8 slots
  }
  EXPECT_EQ(oracle.step().size(), 11u);  // 80 / 7
  EXPECT_EQ(pow2.step().size(), 10u);    // 80 / 8
  KvUsage u = pow2.sched->kvUsage();
  EXPECT_EQ(u.internalFragmentation, 10 * 1);
  Fixture::expectSums(u);
}

TEST(SchedulerKvPolicyTest, ExternalFragmentationWhenNoRangeIsLongEnough) {
  Fixture f(KvPolicy::OrcaOracle, 25);
  f.sched->addRequest("a", promptOf(4, 1), maxTokens(6));   // [0, 10)
  f.sched->addRequest("b", promptOf(4, 1), maxTokens(1));   // [10, 15)
  f.sched->addRequest("c", promptOf(4, 1), maxTokens(6));   // [15, 25)
  f.sched->addRequest("d", promptOf(4, 1), maxTokens(4));   // needs 8
  EXPECT_EQ(f.step().size(), 3u);  // b finishes after its one token
  ASSERT_TRUE(f.finished.count("b"));
  std::vector<RequestId> second = f.step();
  EXPECT_EQ(std::count(second.begin(), second.end(), "d"), 0) << "5 free slots cannot hold 8";
  KvUsage u = f.sched->kvUsage();
  EXPECT_TRUE(u.admissionBlockedByMemory);
  EXPECT_EQ(u.externalFragmentation, 5);
  EXPECT_EQ(u.freeSlots, 0);
  Fixture::expectSums(u);
  while (f.sched->hasUnfinished()) f.step();
  EXPECT_EQ(f.finished.size(), 4u);
}

TEST(SchedulerKvPolicyTest, StaticWaitsForTheWholeBatch) {
  Fixture f(KvPolicy::Static, 40);  // two sequences of 20
  f.sched->addRequest("a", promptOf(4, 1), maxTokens(1));
  f.sched->addRequest("b", promptOf(4, 1), maxTokens(5));
  f.sched->addRequest("c", promptOf(4, 1), maxTokens(1));
  EXPECT_EQ(f.step().size(), 2u);
  ASSERT_TRUE(f.finished.count("a"));
  // a's range is free, but c waits for b: no iteration-level scheduling.
  for (int i = 0; i < 4; ++i) {
    std::vector<RequestId> ids = f.step();
    EXPECT_EQ(std::count(ids.begin(), ids.end(), "c"), 0) << "step " << i;
    // c waits for the batch, not for memory.
    EXPECT_FALSE(f.sched->kvUsage().admissionBlockedByMemory) << "step " << i;
    EXPECT_EQ(f.sched->kvUsage().externalFragmentation, 0) << "step " << i;
  }
  ASSERT_TRUE(f.finished.count("b"));
  std::vector<RequestId> ids = f.step();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "c"), 1);
}

TEST(SchedulerKvPolicyTest, ParallelSamplesReserveEachAndReleaseOnFinishAndAbort) {
  Fixture f(KvPolicy::OrcaOracle, 30);
  SamplingParams p = maxTokens(6);
  p.n = 3;
  p.temperature = 1.0;
  f.sched->addRequest("group", promptOf(4, 1), p);   // 3 x 10 slots: the whole budget
  f.sched->addRequest("next", promptOf(4, 1), maxTokens(6));
  EXPECT_EQ(f.step(), std::vector<RequestId>{"group"});
  EXPECT_EQ(f.sched->numWaiting(), 1);
  KvUsage u = f.sched->kvUsage();
  EXPECT_EQ(u.tokenSlots, 3 * 4);  // each sample's range holds its own copy of the prompt
  EXPECT_EQ(u.reservedSlots, 3 * 6);
  EXPECT_TRUE(u.admissionBlockedByMemory);
  Fixture::expectSums(u);
  EXPECT_TRUE(f.sched->abort("group"));
  std::vector<RequestId> ids = f.step();
  EXPECT_EQ(ids, std::vector<RequestId>{"next"});
}

TEST(SchedulerKvPolicyTest, RejectsAReservationLargerThanTheBudget) {
  Fixture f(KvPolicy::OrcaMax, 15);  // max_model_len 20 never fits
  f.sched->addRequest("big", promptOf(4, 1), maxTokens(2));
  f.step();
  ASSERT_TRUE(f.finished.count("big"));
  EXPECT_EQ(f.finished["big"].reason, FinishReason::Rejected);
  EXPECT_NE(f.finished["big"].message.find("orca-max"), std::string::npos) << f.finished["big"].message;
  EXPECT_FALSE(f.sched->hasUnfinished());
  SchedulerConfig noLength;
  noLength.kvPolicy = KvPolicy::OrcaOracle;
  EXPECT_THROW(Scheduler(noLength, f.blocks), Error);
}

TEST(SchedulerKvPolicyTest, PagedUsageCountsPartlyFilledBlocks) {
  BlockManagerConfig bc;
  bc.blockSize = 4;
  bc.numDeviceBlocks = 8;
  BlockManager blocks(bc);
  Scheduler sched({}, blocks);
  sched.addRequest("a", promptOf(5, 1), maxTokens(4));  // 5 tokens: 2 blocks, 3 slots unfilled
  StepPlan plan = sched.schedule();
  sched.onStepDone(std::vector<SequenceToken>{{plan.seqs[0].sampleSeqs[0], 9}});
  KvUsage u = sched.kvUsage();
  EXPECT_EQ(u.capacitySlots, 32);
  EXPECT_EQ(u.tokenSlots, 5);
  EXPECT_EQ(u.internalFragmentation, 3);
  EXPECT_EQ(u.reservedSlots, 0);
  EXPECT_EQ(u.externalFragmentation, 0);
  EXPECT_EQ(u.freeSlots, 24);
}

TEST(SchedulerKvPolicyTest, FinishedSampleKeepsItsRangeAsInternalFragmentation) {
  Fixture f(KvPolicy::OrcaOracle, 25);
  SamplingParams p = maxTokens(6);
  p.n = 2;
  p.temperature = 1.0;
  f.sched->addRequest("group", promptOf(4, 1), p);            // [0, 10) and [10, 20)
  f.sched->addRequest("next", promptOf(4, 100), maxTokens(4));  // 8 slots; [20, 25) is too short
  EXPECT_EQ(f.step(), std::vector<RequestId>{"group"});
  KvUsage u = f.sched->kvUsage();
  EXPECT_EQ(u.tokenSlots, 8);
  EXPECT_EQ(u.reservedSlots, 12);
  EXPECT_EQ(u.internalFragmentation, 0);
  EXPECT_EQ(u.externalFragmentation, 5);
  EXPECT_EQ(u.freeSlots, 0);
  EXPECT_TRUE(u.admissionBlockedByMemory);
  const SeqId first = f.sched->find("group")->seqs[0].id;
  f.step([&](SeqId q) { return q == first; });  // both decode one token; the first sample stops
  ASSERT_EQ(f.sched->find("group")->numLive(), 1);
  u = f.sched->kvUsage();
  EXPECT_EQ(u.tokenSlots, 5);               // the live sample: prompt + its first token
  EXPECT_EQ(u.reservedSlots, 5);            // up to prompt + max_tokens
  EXPECT_EQ(u.internalFragmentation, 10);   // the stopped sample's range, held until the request ends
  EXPECT_EQ(u.externalFragmentation, 5);
  EXPECT_EQ(u.freeSlots, 0);
  Fixture::expectSums(u);
  EXPECT_EQ(f.sched->numWaiting(), 1) << "the finished sample's range stays with its request";
  while (f.sched->hasUnfinished()) f.step();
  EXPECT_EQ(f.finished.size(), 2u);
  EXPECT_EQ(f.finished.at("next").completions[0].output.size(), 4u);
}

TEST(SchedulerKvPolicyTest, ChunkedPromptOfSamplesCountsInEachRange) {
  Fixture f(KvPolicy::OrcaOracle, 40, 20, [](SchedulerConfig& c) {
    c.enableChunkedPrefill = true;
    c.maxNumBatchedTokens = 2;
  });
  SamplingParams p = maxTokens(2);
  p.n = 2;
  p.temperature = 1.0;
  f.sched->addRequest("group", promptOf(4, 1), p);  // 2 ranges of 6
  f.step();                                         // half the prompt, computed once
  ASSERT_TRUE(f.sched->find("group")->root.has_value());
  KvUsage u = f.sched->kvUsage();
  EXPECT_EQ(u.tokenSlots, 2 * 2);
  EXPECT_EQ(u.reservedSlots, 2 * 4);
  EXPECT_EQ(u.internalFragmentation, 0);
  EXPECT_EQ(u.freeSlots, 40 - 12);
  Fixture::expectSums(u);
  f.step();  // the rest of the prompt: forked into both samples
  ASSERT_FALSE(f.sched->find("group")->root.has_value());
  u = f.sched->kvUsage();
  EXPECT_EQ(u.tokenSlots, 2 * 4);
  EXPECT_EQ(u.reservedSlots, 2 * 2);
  Fixture::expectSums(u);
}

TEST(SchedulerKvPolicyTest, BeamSearchReservesEveryBeamFromTheStart) {
  Fixture f(KvPolicy::OrcaOracle, 20);
  SamplingParams p = maxTokens(6);
  p.n = 1;
  p.bestOf = 2;
  p.useBeamSearch = true;
  p.temperature = 0.0;
  f.sched->addRequest("beams", promptOf(4, 1), p);             // 2 beams of 10: the whole budget
  f.sched->addRequest("next", promptOf(4, 100), maxTokens(1));  // 5 slots
  StepPlan plan = f.sched->schedule();
  ASSERT_EQ(plan.seqs.size(), 1u);
  EXPECT_EQ(plan.seqs[0].requestId, "beams");
  ASSERT_EQ(f.sched->find("beams")->seqs.size(), 1u);  // one beam until the first beam step
  KvUsage u = f.sched->kvUsage();
  EXPECT_EQ(u.tokenSlots, 4);
  EXPECT_EQ(u.reservedSlots, 6 + 10);  // the second beam's range will fill once it forks
  EXPECT_EQ(u.internalFragmentation, 0);
  EXPECT_EQ(u.externalFragmentation, 0);  // blocked, but nothing is free
  EXPECT_TRUE(u.admissionBlockedByMemory);
  Fixture::expectSums(u);
}

TEST(SchedulerKvPolicyTest, UnsetMaxTokensReservesUpToMaxModelLen) {
  Fixture f(KvPolicy::OrcaOracle, 40);  // max_model_len 20
  SamplingParams unbounded;
  unbounded.maxTokens.reset();
  for (int i = 0; i < 3; ++i) f.sched->addRequest("r" + std::to_string(i), promptOf(4, 10 * i), unbounded);
  EXPECT_EQ(f.step().size(), 2u);  // 4 + 16 slots each
  KvUsage u = f.sched->kvUsage();
  EXPECT_EQ(u.tokenSlots, 8);
  EXPECT_EQ(u.reservedSlots, 32);
  EXPECT_EQ(u.internalFragmentation, 0);
  Fixture::expectSums(u);
}

TEST(SchedulerKvPolicyTest, SequenceLimitIsNotMemoryBlocking) {
  Fixture f(KvPolicy::OrcaOracle, 80, 20, [](SchedulerConfig& c) { c.maxNumSeqs = 2; });
  for (int i = 0; i < 3; ++i) f.sched->addRequest("r" + std::to_string(i), promptOf(4, 10 * i), maxTokens(3));
  EXPECT_EQ(f.step().size(), 2u);
  KvUsage u = f.sched->kvUsage();
  EXPECT_FALSE(u.admissionBlockedByMemory);
  EXPECT_EQ(u.externalFragmentation, 0);
  EXPECT_EQ(u.tokenSlots, 8);
  EXPECT_EQ(u.reservedSlots, 6);
  EXPECT_EQ(u.freeSlots, 80 - 14);
  Fixture::expectSums(u);
}

TEST(SchedulerKvPolicyTest, PagedAdmissionBlockedWhenBlocksRunShort) {
  BlockManagerConfig bc;
  bc.blockSize = 4;
  bc.numDeviceBlocks = 4;
  BlockManager blocks(bc);
  Scheduler sched({}, blocks);
  sched.addRequest("a", promptOf(10, 1), maxTokens(2));   // 3 blocks
  sched.addRequest("b", promptOf(8, 100), maxTokens(2));  // 2 blocks, 1 left
  StepPlan plan = sched.schedule();
  ASSERT_EQ(plan.seqs.size(), 1u);
  EXPECT_EQ(sched.numWaiting(), 1);
  KvUsage u = sched.kvUsage();
  EXPECT_TRUE(u.admissionBlockedByMemory);
  EXPECT_EQ(u.externalFragmentation, 0) << "paging has no external fragmentation";
  EXPECT_EQ(u.tokenSlots, 10);
  EXPECT_EQ(u.internalFragmentation, 2);
  EXPECT_EQ(u.freeSlots, 4);
  Fixture::expectSums(u);

  BlockManager roomy(Fixture::blockConfig());
  SchedulerConfig capped;
  capped.maxNumSeqs = 1;
  Scheduler one(capped, roomy);
  one.addRequest("a", promptOf(4, 1), maxTokens(2));
  one.addRequest("b", promptOf(4, 100), maxTokens(2));
  ASSERT_EQ(one.schedule().seqs.size(), 1u);
  EXPECT_FALSE(one.kvUsage().admissionBlockedByMemory) << "b waits for a sequence slot, not memory";
}

}  // namespace
}  // namespace pagedc
