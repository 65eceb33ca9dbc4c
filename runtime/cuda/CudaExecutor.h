// Executes a compiled graph on a CUDA device: a plan made once at load (CudaKernelPlan's kernel per
// op; static values computed on the host and uploaded once, weights in the activation dtype T;
// every intermediate given a place in one device arena by liveness; views free), then each step
// binds the inputs' shapes (the runner has put their data at fixed device addresses), evaluates the
// planned shapes and enqueues the kernels on a stream. Nothing is allocated or synchronised per
// step, and every pointer a step uses is the same from step to step, so a step can be captured in
// a CUDA graph and replayed while the shapes stay the same.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ir/Graph.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaKernelCache.h"
#include "runtime/cuda/CudaKernelPlan.h"
#include "runtime/cuda/GemmLibrary.h"

namespace pagedc::cuda {

struct CudaExecutorSummary {
  int64_t numKernelSteps = 0;  // ops launching kernels (or GEMMs) each step
  int64_t numGemms = 0;
  int64_t numViews = 0;
  int64_t numStatic = 0;       // static values uploaded at load
  int64_t arenaBytes = 0;      // intermediates at the symbol bounds
  int64_t staticBytes = 0;     // weights and other static values on the device
  int64_t scratchBytes = 0;    // split-K attention scratch
};

// What the attention launches need to know about a step; the runner computes it on the host from
// the step's sequences (the kernels read the per-sequence values from device memory).
struct StepAttention {
  bool anyDecode = true;       // some sequence has query_len == 1 (decode kernel)
  bool anyPrefill = true;      // some sequence has query_len > 1 (prefill kernel)
  int64_t maxQueryLen = 1;     // prefill grid: ceil(maxQueryLen / QUERY_TILE) tiles
  int64_t maxContextLen = 1;   // decode: split-K when above the partition size; sizes the partitions
};

class CudaExecutor {
public:
  // symbolBounds: the largest value of each input symbol (num_tokens, num_seqs, max_blocks, ...);
  // the arena and the attention scratch are sized for them. Loads every kernel the plan needs.
  // Throws Error naming the op when the backend cannot run the graph.
  CudaExecutor(const Graph& graph, const CudaDevice& device, CudaKernelCache& kernels, GemmLibrary& gemm,
               const CudaKernelChoices& choices, const std::map<std::string, int64_t>& symbolBounds);
  ~CudaExecutor();
  CudaExecutor(const CudaExecutor&) = delete;
  CudaExecutor& operator=(const CudaExecutor&) = delete;

  size_t inputIndex(std::string_view name) const;
  size_t outputIndex(std::string_view name) const;
  bool hasInput(std::string_view name) const;
  // Bytes input `index` takes at the symbol bounds, in its device storage (i64 for integers).
  size_t inputCapacityBytes(size_t index) const;

  // Points input `index` at device memory holding data of the given shape, and at the same data
  // on the host when the step has it there (integer inputs: the host computes integer arithmetic
  // on them, HostCompute). Inputs keep their binding, so the caches are bound once and the step
  // inputs keep their staging addresses.
  void bindInput(size_t index, CUdeviceptr data, std::span<const int64_t> shape, const void* host = nullptr);
  // Computes this step's host values (integer arithmetic on the inputs) and enqueues their upload
  // to their fixed device addresses. Call after binding the inputs and before run() or before
  // replaying a graph captured from run(): a graph holds only run()'s kernels.
  void prepareHostValues(CUstream stream);
  bool hasHostValues() const;
  // Enqueues one run of the graph's kernels on `stream`.
  void run(CUstream stream, const StepAttention& attention);

  // An output of the last run (floating-point outputs as f32): device pointer and shape.
  CUdeviceptr outputData(size_t index) const;
  std::span<const int64_t> outputShape(size_t index) const;

  const CudaExecutorSummary& summary() const;
  DType activationDType() const;
  // The kernels the runner launches around the graph (copy_blocks, swap_blocks), already loaded.
  const std::vector<KernelKey>& runnerKernels() const;

private:
  struct Plan;
  std::unique_ptr<Plan> plan_;
};

}  // namespace pagedc::cuda
