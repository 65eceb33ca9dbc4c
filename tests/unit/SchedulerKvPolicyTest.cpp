// Tests of the scheduler's reservation policies (the PagedAttention paper's baselines) and of its
// KV budget breakdown (kvUsage).
#include <gtest/gtest.h>

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
  explicit Fixture(KvPolicy policy, int64_t capacity, int64_t maxModelLen = 20) : blocks(blockConfig()) {
    SchedulerConfig c;
    c.kvPolicy = policy;
    c.reservationCapacity = capacity;
    c.maxModelLen = maxModelLen;
    sched.emplace(c, blocks);
  }
  static BlockManagerConfig blockConfig() {
    BlockManagerConfig c;
    c.blockSize = 4;
    c.numDeviceBlocks = 256;
    return c;
  }
  // One step: every sequence that asks gets token 9. Returns the requests in the plan.
  std::vector<RequestId> step() {
    StepPlan plan = sched->schedule();
    std::vector<SequenceToken> tokens;
    std::vector<RequestId> ids;
    for (const auto& s : plan.seqs) {
      ids.push_back(s.requestId);
      for (SeqId q : s.sampleSeqs) tokens.push_back({q, 9});
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

}  // namespace
}  // namespace pagedc
