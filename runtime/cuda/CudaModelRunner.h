// The CUDA backend: a ModelRunner that owns the paged KV pools in device memory (a host pool in
// pinned memory for swapping), executes each StepPlan on one stream (swaps, copy-on-write copies,
// then the model through the CudaExecutor) and returns the logits rows in pinned host memory.
//
// Step inputs go through one pinned staging buffer and one async copy into a device buffer whose
// regions (one per graph input, sized at the bounds) never move, so the executor's pointers are the
// same every step. Pure decode steps are padded to a batch-size bucket and run as CUDA graphs,
// captured once per (batch bucket, context bucket) and replayed; everything else runs as plain
// launches. See docs/KERNELS.md, "CUDA backend".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "runtime/Artifact.h"
#include "runtime/ModelRunner.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaExecutor.h"
#include "runtime/cuda/CudaKernelCache.h"
#include "runtime/cuda/GemmLibrary.h"
#include "runtime/cuda/KernelProvider.h"

namespace pagedc::cuda {

using GemmLibraryFactory = std::function<std::unique_ptr<GemmLibrary>(std::shared_ptr<const CudaDriver>)>;

struct CudaRunnerConfig {
  int device = 0;
  // KV blocks in device memory; 0: as many as fit in kvMemoryFraction of the device memory still
  // free after the weights, the arena and the staging buffers, at most maxAutoBlocks (when > 0).
  int64_t numDeviceBlocks = 0;
  double kvMemoryFraction = 0.9;
  int64_t maxAutoBlocks = 0;
  int64_t numHostBlocks = 0;  // swap space, pinned
  int64_t maxNumBatchedTokens = 2048;
  int64_t maxNumSeqs = 256;
  int64_t maxModelLen = 4096;
  bool cudaGraphs = true;
  // Batch-size buckets decode steps are padded to (sorted); empty: 1, 2, 4, 8, then multiples of 8
  // up to min(maxNumSeqs, 256).
  std::vector<int64_t> graphBatchSizes;
  std::optional<CudaKernelChoices> kernelChoices;  // default: CudaKernelChoices::forModel
};

struct CudaRunnerStats {
  int64_t steps = 0;
  int64_t graphReplays = 0;   // decode steps run by replaying a captured graph
  int64_t graphCaptures = 0;  // graphs captured
  int64_t plainSteps = 0;     // steps run with plain launches
  int64_t captureFailures = 0;
};

class CudaModelRunner final : public ModelRunner {
public:
  // The graph (and its weights) must outlive the runner. `gemm` makes the GEMM library once the
  // device's context is current (default: cuBLASLt).
  CudaModelRunner(const Graph& graph, const ModelFacts& facts, const CudaRunnerConfig& config, std::shared_ptr<const CudaDriver> driver,
                  std::shared_ptr<KernelProvider> kernels, GemmLibraryFactory gemm = loadCublasLt);
  CudaModelRunner(const Artifact& artifact, const CudaRunnerConfig& config, std::shared_ptr<const CudaDriver> driver,
                  std::shared_ptr<KernelProvider> kernels, GemmLibraryFactory gemm = loadCublasLt)
      : CudaModelRunner(*artifact.graph, artifact.facts(), config, std::move(driver), std::move(kernels), std::move(gemm)) {}
  ~CudaModelRunner() override;

  const ModelFacts& facts() const override { return facts_; }
  int64_t numDeviceBlocks() const override { return numDeviceBlocks_; }
  int64_t numHostBlocks() const override { return config_.numHostBlocks; }
  StepLogits execute(const StepPlan& plan) override;

  const CudaDevice& device() const { return *device_; }
  const CudaExecutorSummary& planSummary() const { return executor_->summary(); }
  const CudaRunnerStats& stats() const { return stats_; }
  std::string gemmLibraryName() const { return gemm_->name(); }
  // Bytes of one layer's key (or value) pool on the device.
  int64_t cacheBytesPerLayer() const { return blockBytes_ * numDeviceBlocks_; }

private:
  // Where each step input lives in the staging buffers (same offset in the pinned and the device
  // buffer), sized at its bound.
  struct Region {
    size_t offset = 0, capacity = 0;
  };
  struct GraphKey {
    int64_t batch, context;
    auto operator<=>(const GraphKey&) const = default;
  };

  void validate(const StepPlan& plan) const;
  void runBlockOperations(const StepPlan& plan);
  void swap(std::span<const BlockCopy> pairs, bool out);
  // Fills the staging buffer for `plan` padded to `padSeqs` single-token sequences (graph steps)
  // and a block table width of `tableWidth`; returns the step's attention facts.
  StepAttention stage(const StepPlan& plan, int64_t padSeqs, int64_t tableWidth);
  void uploadStaging(size_t bytes);
  std::optional<GraphKey> graphKeyFor(const StepPlan& plan) const;
  void runModel(const StepAttention& attention, std::optional<GraphKey> key);
  StepLogits downloadLogits();

  ModelFacts facts_;
  CudaRunnerConfig config_;
  std::unique_ptr<CudaDevice> device_;
  std::unique_ptr<CudaKernelCache> kernels_;
  std::unique_ptr<GemmLibrary> gemm_;
  std::unique_ptr<CudaStream> stream_;
  std::unique_ptr<CudaExecutor> executor_;
  int64_t numDeviceBlocks_ = 0;
  int64_t maxBlocksPerSeq_ = 0;
  int64_t blockBytes_ = 0;  // one block of one layer's keys
  std::vector<DeviceBuffer> deviceKeys_, deviceValues_;
  std::vector<PinnedBuffer> hostKeys_, hostValues_;
  DeviceBuffer keyCachePointers_, valueCachePointers_;  // [layers] device pointers, for copy_blocks
  CUfunction copyBlocks_ = nullptr, swapBlocks_ = nullptr;
  unsigned copyBlocksThreads_ = 0, swapBlocksThreads_ = 0;

  // Staging.
  PinnedBuffer stagingHost_;
  DeviceBuffer stagingDevice_;
  Region inputIds_, positions_, slotMapping_, contextLens_, queryStartLoc_, logitsIndices_, blockTables_, blockPairs_;
  size_t inputIdsIndex_ = 0, positionsIndex_ = 0, slotMappingIndex_ = 0, blockTablesIndex_ = 0, contextLensIndex_ = 0, queryStartIndex_ = 0;
  std::optional<size_t> logitsIndicesIndex_;
  size_t logitsOutput_ = 0;

  // This step's logits rows: which rows of the logits output to return.
  std::vector<int64_t> logitsRows_;
  int64_t numTokens_ = 0;
  PinnedBuffer logitsHost_;

  // CUDA graphs.
  std::vector<int64_t> graphBatchSizes_;
  std::map<GraphKey, std::unique_ptr<CudaGraph>> graphs_;
  std::set<GraphKey> warmedUp_, notCapturable_;
  CudaRunnerStats stats_;
};

}  // namespace pagedc::cuda
