// The CPU backend: a ModelRunner that owns the paged KV pools (device and host) in memory and runs
// each scheduled step through the CpuExecutor. The step's ragged inputs are built in buffers
// reserved at construction, so a warm step allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/Artifact.h"
#include "runtime/ModelRunner.h"
#include "runtime/cpu/CpuExecutor.h"

namespace pagedc::cpu {

struct CpuRunnerConfig {
  int64_t numDeviceBlocks = 0;
  int64_t numHostBlocks = 0;        // swap space
  int64_t maxNumBatchedTokens = 2048;
  int64_t maxNumSeqs = 256;
  int64_t maxModelLen = 4096;       // bounds a block table's length
  int threads = 0;                  // 0: OpenMP's default (the core count)
};

class CpuModelRunner final : public ModelRunner {
public:
  // The graph (and its weights) must outlive the runner: weights are read in place or packed once.
  CpuModelRunner(const Graph& graph, const ModelFacts& facts, const CpuRunnerConfig& config);
  CpuModelRunner(const Artifact& artifact, const CpuRunnerConfig& config) : CpuModelRunner(*artifact.graph, artifact.facts(), config) {}
  ~CpuModelRunner() override;

  const ModelFacts& facts() const override { return facts_; }
  int64_t numDeviceBlocks() const override { return config_.numDeviceBlocks; }
  int64_t numHostBlocks() const override { return config_.numHostBlocks; }
  StepLogits execute(const StepPlan& plan) override;

  const ExecutorPlanSummary& planSummary() const { return executor_->planSummary(); }
  CpuExecutor& executor() { return *executor_; }
  const CpuRunnerConfig& config() const { return config_; }
  // Bytes of one layer's key (or value) pool, device and host.
  int64_t cacheBytesPerLayer() const;

private:
  // One pool: per layer, keys and values [blocks, kvHeads, blockSize, headDim] of the KV dtype.
  struct Pool {
    std::vector<std::unique_ptr<std::byte[]>> keys, values;
  };
  Pool makePool(int64_t blocks) const;
  void copyBlocks(const Pool& from, Pool& to, std::span<const BlockCopy> copies) const;

  ModelFacts facts_;
  CpuRunnerConfig config_;
  std::unique_ptr<CpuExecutor> executor_;
  int64_t blockBytes_ = 0;  // one block of one layer's keys
  Pool device_, host_;
  // Step inputs, reserved at their bounds.
  std::vector<int64_t> inputIds_, positions_, slotMapping_, blockTables_, contextLens_, queryStartLoc_, logitsIndices_;
  std::vector<float> logitRows_;  // only when the graph has no logits_indices input
  size_t inputIdsIndex_, positionsIndex_, slotMappingIndex_, blockTablesIndex_, contextLensIndex_, queryStartIndex_;
  std::optional<size_t> logitsIndicesIndex_;
  size_t logitsOutput_;
};

}  // namespace pagedc::cpu
