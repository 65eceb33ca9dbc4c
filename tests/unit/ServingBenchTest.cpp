// Tests of the serving benchmark's core: the step-cost model fit, the simulated runner, the
// in-process driver under each KV policy, summaries and the sustained-rate reading of a sweep.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "bench/serving/RateSweep.h"
#include "bench/serving/ServingBench.h"
#include "bench/serving/SimulatedModelRunner.h"
#include "bench/serving/StepCostModel.h"
#include "ir/Error.h"

namespace pagedc::bench {
namespace {

// A known cost function of the model's form: the fit must recover it from samples of it.
double trueCost(const StepShape& s) {
  auto g = [](double n) { return 0.010 + 0.00002 * n + (n < 64 ? 0.0001 * (64 - n) : 0.0); };
  double t = g(static_cast<double>(s.numTokens));
  if (s.numLogits > 1) t += 0.00003 * static_cast<double>(s.numLogits - 1);
  return t + 2e-8 * static_cast<double>(s.decodeContext) + 5e-10 * static_cast<double>(s.prefillAttention) +
         1e-5 * static_cast<double>(s.copiedBlocks);
}

std::vector<StepCostModel::Sample> syntheticSamples() {
  std::vector<StepCostModel::Sample> samples;
  for (int64_t b = 1; b <= 256; b *= 2)
    for (int64_t ctx : {16, 512}) {
      StepShape s{b, b, b * ctx, 0, 0};
      samples.push_back({s, trueCost(s)});
    }
  for (int64_t p = 2; p <= 2048; p *= 2) {
    StepShape s{p, 1, 0, p * (p + 1) / 2, 0};
    samples.push_back({s, trueCost(s)});
  }
  for (int64_t prior : {512, 1024, 1536}) {
    StepShape s{256, 1, 0, 256 * prior + 256 * 257 / 2, 0};
    samples.push_back({s, trueCost(s)});
  }
  StepShape multi{2048, 8, 0, 8 * (256 * 257 / 2), 0};
  samples.push_back({multi, trueCost(multi)});
  StepShape swap{1, 1, 16, 0, 128};
  samples.push_back({swap, trueCost(swap)});
  return samples;
}

TEST(StepCostModelTest, FitRecoversAKnownCostFunction) {
  StepCostModel m = StepCostModel::fit(syntheticSamples(), 2048);
  EXPECT_LT(m.maxRelativeError(), 0.02);
  EXPECT_NEAR(m.secondsPerDecodeKey(), 2e-8, 2e-9);
  EXPECT_NEAR(m.secondsPerPrefillPair(), 5e-10, 5e-11);
  EXPECT_NEAR(m.secondsPerCopiedBlock(), 1e-5, 1e-6);
  // A shape between the samples: a mixed step of 100 prompt tokens and 20 decodes.
  StepShape mixed{120, 21, 20 * 300, 100 * 101 / 2, 0};
  EXPECT_NEAR(m.seconds(mixed), trueCost(mixed), 0.05 * trueCost(mixed));
}

TEST(StepCostModelTest, JsonRoundTripAndBadInput) {
  StepCostModel m = StepCostModel::fit(syntheticSamples(), 2048);
  m.description = "synthetic";
  StepCostModel back = StepCostModel::fromJson(m.toJson());
  StepShape s{300, 40, 40 * 700, 0, 3};
  EXPECT_DOUBLE_EQ(back.seconds(s), m.seconds(s));
  EXPECT_EQ(back.description, "synthetic");
  nlohmann::json broken = m.toJson();
  broken.erase("g");
  try {
    StepCostModel::fromJson(broken);
    FAIL() << "accepted a cost model without 'g'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'g'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(StepCostModel::fit({{StepShape{1, 1, 0, 0, 0}, 0.01}}, 2048), Error);
}

StepCostModel flatCost() {
  StepCostModel m = StepCostModel::fit(syntheticSamples(), 2048);
  return m;
}

ModelFacts smallFacts() {
  ModelFacts f;
  f.numLayers = 2;
  f.numHeads = 2;
  f.numKvHeads = 2;
  f.headDim = 8;
  f.hiddenSize = 16;
  f.vocabSize = 512;
  f.maxPositions = 256;
  f.blockSize = 16;
  return f;
}

TEST(SimulatedModelRunnerTest, ChecksPlansAndReturnsPeakedLogits) {
  StepCostModel cost = flatCost();
  SimulatedModelRunner runner(smallFacts(), 4, 0, cost);
  StepPlan plan;
  ScheduledSequence s;
  s.requestId = "r";
  s.tokens = {5, 6};
  s.positions = {0, 1};
  s.slots = {0, 1};
  s.contextLen = 2;
  s.blockTable = {0};
  s.needsLogits = true;
  s.sampleSeqs = {0};
  plan.seqs.push_back(s);
  StepLogits logits = runner.execute(plan);
  ASSERT_EQ(logits.numRows, 1);
  int peaked = 0;
  for (float v : logits.row(0)) peaked += v > -5.0f;
  EXPECT_GE(peaked, 8);
  EXPECT_LE(peaked, 16);
  EXPECT_GT(runner.lastStepSeconds(), 0.0);
  plan.seqs[0].slots[1] = 64;  // outside the 4-block pool
  try {
    runner.execute(plan);
    FAIL() << "a slot outside the pool was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("request r"), std::string::npos) << e.what();
  }
}

// n requests of the given lengths, all at time 0 unless spaced.
Workload fixedWorkload(int64_t n, int64_t promptLen, int64_t outputLen, double spacing = 0.0) {
  Workload w;
  for (int64_t i = 0; i < n; ++i) {
    BenchRequest r;
    r.id = "req-" + std::to_string(i);
    r.arrival = spacing * static_cast<double>(i);
    for (int64_t t = 0; t < promptLen; ++t) r.prompt.push_back(static_cast<TokenId>((i * 131 + t * 7) % 500));
    r.outputLen = outputLen;
    r.params.maxTokens = outputLen;
    r.params.ignoreEos = true;
    r.params.temperature = 0.0;
    w.requests.push_back(r);
  }
  return w;
}

EngineSetup setupFor(KvPolicy policy, int64_t budget) {
  EngineSetup s;
  s.policy = policy;
  s.kvBudgetTokens = budget;
  s.maxModelLen = 256;
  s.maxNumBatchedTokens = 512;
  return s;
}

TEST(ServingBenchTest, EveryPolicyCompletesEveryRequestWithItsLength) {
  SimulatedBackend backend(smallFacts(), flatCost(), 512);
  Workload w = fixedWorkload(24, 40, 30, 0.01);
  for (KvPolicy p : allKvPolicies()) {
    RunResult run = runInProcess(w, setupFor(p, 1024), backend);
    RunSummary s = summarize(run);
    EXPECT_EQ(s.completed, 24) << kvPolicyName(p);
    for (const RequestRecord& r : run.requests) {
      EXPECT_TRUE(r.ok) << r.id << ": " << r.error;
      EXPECT_EQ(r.outputTokens, 30) << r.id;
      EXPECT_LE(r.arrival, r.firstToken);
      EXPECT_LE(r.firstToken, r.finish);
      EXPECT_EQ(r.interTokenGaps.size(), 29u);
    }
    EXPECT_NEAR(s.kvTokenStates + s.kvReservation + s.kvInternal + s.kvExternal, 1.0, 1e-9) << kvPolicyName(p);
  }
}

TEST(ServingBenchTest, PagingBatchesMoreThanMaxReservationInTheSameBudget) {
  SimulatedBackend backend(smallFacts(), flatCost(), 512);
  Workload w = fixedWorkload(40, 30, 40);
  RunSummary paged = summarize(runInProcess(w, setupFor(KvPolicy::Paged, 1024), backend));
  RunSummary oracle = summarize(runInProcess(w, setupFor(KvPolicy::OrcaOracle, 1024), backend));
  RunSummary max = summarize(runInProcess(w, setupFor(KvPolicy::OrcaMax, 1024), backend));
  RunSummary fixedBatch = summarize(runInProcess(w, setupFor(KvPolicy::Static, 1024), backend));
  // orca-max fits 1024 / 256 = 4 sequences at a time; oracle 1024 / 70 = 14; paged more (blocks on demand).
  EXPECT_LE(max.maxBatchSeqs, 4);
  EXPECT_LE(oracle.maxBatchSeqs, 14);
  EXPECT_GT(paged.meanBatchSeqs, oracle.meanBatchSeqs);
  EXPECT_GT(oracle.meanBatchSeqs, max.meanBatchSeqs);
  EXPECT_GT(paged.requestsPerSecond, max.requestsPerSecond);
  EXPECT_LE(fixedBatch.requestsPerSecond, max.requestsPerSecond * 1.0001);
  // Paged wastes at most the unfilled part of each sequence's last block; orca-max mostly reserves.
  EXPECT_GT(paged.kvTokenStates, 0.8);
  EXPECT_LT(max.kvTokenStates, 0.4);
  EXPECT_GT(max.kvInternal, 0.3);
}

TEST(ServingBenchTest, SharingIsCountedForParallelSamples) {
  SimulatedBackend backend(smallFacts(), flatCost(), 512);
  Workload w = fixedWorkload(6, 64, 8);
  for (BenchRequest& r : w.requests) {
    r.params.n = 4;
    r.params.temperature = 1.0;
    r.params.seed = 7;
  }
  RunResult run = runInProcess(w, setupFor(KvPolicy::Paged, 2048), backend);
  RunSummary s = summarize(run);
  EXPECT_EQ(s.completed, 6);
  for (const RequestRecord& r : run.requests) EXPECT_EQ(r.outputTokens, 32) << r.id;
  // Four samples share a 64-token prompt (4 blocks) and own 1 block each: about 12 of 20 saved.
  EXPECT_GT(s.sharingSaved, 0.4);
}

TEST(ServingBenchTest, RejectsWhatCannotRun) {
  SimulatedBackend backend(smallFacts(), flatCost(), 512);
  Workload w = fixedWorkload(2, 10, 5);
  EXPECT_THROW(runInProcess(w, setupFor(KvPolicy::Paged, 8), backend), Error);  // budget below a block
  // orca-max reserves max_model_len (256) per sequence: a 200-token budget can never admit one, and
  // the request is reported rejected rather than waited on forever.
  RunResult run = runInProcess(w, setupFor(KvPolicy::OrcaMax, 200), backend);
  for (const RequestRecord& r : run.requests) {
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.error.empty());
  }
}

TEST(RateSweepTest, SustainedRateInterpolatesTheCrossing) {
  auto point = [](double rate, double latency) {
    SweepPoint p;
    p.rate = rate;
    p.summary.normalizedLatency = latency;
    p.summary.completed = 1;
    return p;
  };
  std::vector<SweepPoint> points = {point(1, 0.1), point(2, 0.12), point(3, 0.5), point(4, 5.0)};
  EXPECT_NEAR(sustainedRate(points, 0.2), 2.0 + (0.2 - 0.12) / (0.5 - 0.12), 1e-12);
  EXPECT_FALSE(sustainedRateIsLowerBound(points, 0.2));
  EXPECT_EQ(sustainedRate(points, 0.05), 0.0);
  EXPECT_EQ(sustainedRate(points, 10.0), 4.0);
  EXPECT_TRUE(sustainedRateIsLowerBound(points, 10.0));
  int calls = 0;
  auto swept = sweepRates({4, 1, 3, 2, 5, 6}, [&](double r) {
    ++calls;
    RunSummary s;
    s.completed = 1;
    s.normalizedLatency = r < 3 ? 0.1 : 10.0;
    return s;
  }, 0.2);
  EXPECT_EQ(calls, 4);  // 1, 2, then 3 and 4 over 4x the SLO: stop
  EXPECT_EQ(swept.front().rate, 1.0);
}

}  // namespace
}  // namespace pagedc::bench
