// A ModelRunner that computes no model: it checks each step's plan against its pools as the CPU
// runner does, returns logits from a small synthetic language model, and reports what the step
// would have cost on the calibrated backend (StepCostModel). Simulated benchmark runs drive the real
// engine, scheduler and block manager with it, on a virtual clock.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/serving/StepCostModel.h"
#include "runtime/ModelRunner.h"

namespace pagedc::bench {

class SimulatedModelRunner final : public ModelRunner {
public:
  // facts: the modelled model's, with blockSize the paging block size and vocabSize the synthetic
  // vocabulary (small, so sampling costs the benchmark little; memory use does not depend on it).
  SimulatedModelRunner(const ModelFacts& facts, int64_t numDeviceBlocks, int64_t numHostBlocks, const StepCostModel& cost);

  const ModelFacts& facts() const override { return facts_; }
  int64_t numDeviceBlocks() const override { return numDeviceBlocks_; }
  int64_t numHostBlocks() const override { return numHostBlocks_; }
  // Throws Error, naming the request, on a token outside the vocabulary or a slot or block outside
  // the pools: the benchmark exercises the scheduler, so its plans are checked as the real runner's.
  StepLogits execute(const StepPlan& plan) override;

  // The modelled seconds of the last execute().
  double lastStepSeconds() const { return lastSeconds_; }

private:
  void fillRow(float* row, TokenId last, int64_t position) const;

  ModelFacts facts_;
  int64_t numDeviceBlocks_ = 0;
  int64_t numHostBlocks_ = 0;
  const StepCostModel& cost_;
  std::vector<float> logits_;
  double lastSeconds_ = 0.0;
};

}  // namespace pagedc::bench
