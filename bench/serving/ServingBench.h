// The in-process serving benchmark: replays a workload's arrivals into the real Engine (scheduler,
// block manager, sampler) under one KV policy and memory budget, on the real CPU backend (wall
// clock) or on a SimulatedModelRunner (a virtual clock advanced by the calibrated step cost), and
// records every request and step. docs/BENCHMARKS.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/serving/BenchMetrics.h"
#include "bench/serving/StepCostModel.h"
#include "bench/serving/Workload.h"
#include "runtime/Artifact.h"
#include "runtime/Engine.h"
#include "runtime/KvPolicy.h"

namespace pagedc::bench {

// One engine configuration of a comparison: everything but the policy is normally held fixed.
struct EngineSetup {
  KvPolicy policy = KvPolicy::Paged;
  // The KV budget in token slots, the same for every policy: paged gets budget / blockSize blocks,
  // the reservation policies reserve from budget slots.
  int64_t kvBudgetTokens = 0;
  int64_t blockSize = 16;  // paged; real execution needs the artifact's
  PreemptionMode preemption = PreemptionMode::Recompute;
  bool prefixCaching = true;    // paged only (the baselines have none)
  int64_t swapSpaceTokens = 0;  // host pool for swapping; 0: as large as the budget
  int64_t maxNumSeqs = 256;
  int64_t maxNumBatchedTokens = 2048;
  int64_t maxModelLen = 2048;
  bool chunkedPrefill = false;  // off, as in the paper's systems: a prompt is computed in one step
  double watermark = 0.01;      // vLLM's: paged admission keeps 1% of the blocks free

  // "paged(16)", "orca-max", ... with "+swap" / "-prefix-cache" when those differ from the defaults.
  std::string label() const;
};

// Where the model runs: builds a runner for a setup and says how long its last step took.
class BenchBackend {
public:
  virtual ~BenchBackend() = default;
  virtual const ModelFacts& facts() const = 0;
  virtual bool simulated() const = 0;
  virtual std::unique_ptr<ModelRunner> makeRunner(const EngineSetup& setup, int64_t deviceBlocks, int64_t hostBlocks) = 0;
  // Real: 0 (the driver times steps by the wall clock). Simulated: the modelled seconds.
  virtual double lastStepSeconds(const ModelRunner& runner) const = 0;
  virtual std::string describe() const = 0;
  // A cost model to predict each step with, for comparison (real execution only); may be null.
  virtual const StepCostModel* predictor() const { return nullptr; }
};

// The CPU backend on an artifact; steps timed by the wall clock. The artifact must outlive it.
class RealCpuBackend final : public BenchBackend {
public:
  // predictor: when given, every step's modelled cost is recorded next to its measured time.
  RealCpuBackend(const Artifact& artifact, int threads, const StepCostModel* predictor = nullptr);
  const StepCostModel* predictor() const { return predictor_; }
  const ModelFacts& facts() const override { return artifact_.facts(); }
  bool simulated() const override { return false; }
  std::unique_ptr<ModelRunner> makeRunner(const EngineSetup& setup, int64_t deviceBlocks, int64_t hostBlocks) override;
  double lastStepSeconds(const ModelRunner&) const override { return 0.0; }
  std::string describe() const override;

private:
  const Artifact& artifact_;
  int threads_ = 0;
  const StepCostModel* predictor_ = nullptr;
};

// The modelled model's facts with a synthetic vocabulary, and the calibrated step cost.
class SimulatedBackend final : public BenchBackend {
public:
  SimulatedBackend(const ModelFacts& modelled, StepCostModel cost, int64_t vocabSize = 256);
  const ModelFacts& facts() const override { return facts_; }
  bool simulated() const override { return true; }
  std::unique_ptr<ModelRunner> makeRunner(const EngineSetup& setup, int64_t deviceBlocks, int64_t hostBlocks) override;
  double lastStepSeconds(const ModelRunner& runner) const override;
  std::string describe() const override;
  const StepCostModel& cost() const { return cost_; }

private:
  ModelFacts facts_;
  StepCostModel cost_;
};

struct RunResult {
  EngineSetup setup;
  double rate = 0.0;
  std::vector<RequestRecord> requests;  // workload order
  std::vector<StepRecord> steps;
  double seconds = 0.0;  // first arrival ... last finish
  EngineStats engine;    // at the end
  int64_t swapSpaceBlocks = 0;
};

// Runs the workload to completion. Throws Error when the setup cannot run (a budget smaller than one
// block, real execution at a block size other than the artifact's) or the engine stalls.
RunResult runInProcess(const Workload& workload, const EngineSetup& setup, BenchBackend& backend);

// A run reduced to the figures of the paper's evaluation.
struct RunSummary {
  std::string label;
  double rate = 0.0;
  int64_t numRequests = 0, completed = 0, failed = 0;
  double seconds = 0.0;
  double requestsPerSecond = 0.0;
  double outputTokensPerSecond = 0.0;  // generated tokens, every completion
  double totalTokensPerSecond = 0.0;   // prompt + generated
  double normalizedLatency = 0.0;      // mean over requests of end-to-end latency / output length (s/token)
  double meanLatency = 0.0;
  Percentiles ttft, tpot, itl;
  double meanBatchSeqs = 0.0;  // sequences per step, weighted by step time
  int64_t maxBatchSeqs = 0;
  // The KV budget, time-weighted over steps, as fractions of the budget not free (Figure 2's bars):
  // token states, reservation, internal and external fragmentation; they sum to 1.
  double kvTokenStates = 0.0, kvReservation = 0.0, kvInternal = 0.0, kvExternal = 0.0;
  double kvUsedFraction = 0.0;  // of the whole budget, time-weighted
  // Blocks saved by sharing, time-weighted: 1 - used blocks / block-table entries (paged only).
  double sharingSaved = 0.0;
  double prefixHitRate = 0.0;  // prompt tokens found in the prefix cache / prompt tokens looked up
  int64_t preemptions = 0;
  int64_t swappedBlocks = 0;  // out and in
  int64_t promptTokensComputed = 0;
  // Real runs with a predictor: the median over steps of measured / predicted step time, for steps
  // with prompt tokens and for decode-only steps (NaN without).
  double stepRatioPrompt = kNotSeen, stepRatioDecode = kNotSeen;
};

RunSummary summarize(const RunResult& run);

}  // namespace pagedc::bench
