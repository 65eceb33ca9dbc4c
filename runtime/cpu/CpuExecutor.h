// Executes a compiled graph on the CPU, fast: a plan made once at load (a kernel per op, weights
// packed for oneDNN, every intermediate given a place in one arena by liveness), then each step
// only binds the inputs' shapes, evaluates the planned shapes and runs the kernels. No allocation
// happens per step unless the graph holds an op without a CPU kernel (then the reference
// implementation runs for it; planSummary() lists such ops).
//
// Storage follows the interpreter's canonical convention (f32, i64, bool) except for the paged
// KV caches, which stay in the artifact's KV dtype and are written in place by kv_cache_write.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ir/Graph.h"

namespace pagedc::cpu {

struct ExecutorPlanSummary {
  int64_t numKernels = 0;          // ops run by CPU kernels each step
  int64_t numViews = 0;            // reshapes and the like: no work
  int64_t numStatic = 0;           // computed once at load (constants, weights, shape arithmetic on them)
  std::vector<std::string> fallbackOps;  // op names run by the reference implementation
  int64_t arenaBytes = 0;          // activations at the symbol bounds
  int64_t packedWeightBytes = 0;   // GEMM weights in oneDNN's layout
};

class CpuExecutor {
public:
  // symbolBounds: the largest value each input symbol takes (num_tokens, num_seqs, ...); the arena
  // is sized for them. A step that exceeds a bound throws naming it. Throws Error at load when an
  // intermediate's shape depends on something the inputs do not determine.
  CpuExecutor(const Graph& graph, const std::map<std::string, int64_t>& symbolBounds);
  ~CpuExecutor();
  CpuExecutor(const CpuExecutor&) = delete;
  CpuExecutor& operator=(const CpuExecutor&) = delete;

  // Index of a graph input / output by name; throws naming the name when there is none.
  size_t inputIndex(std::string_view name) const;
  size_t outputIndex(std::string_view name) const;
  bool hasInput(std::string_view name) const;

  // Points input `index` at caller memory in the graph's storage type (i64 for integers, f32 for
  // floats, the declared type for KV caches); it must stay valid while run() uses it. Inputs keep
  // their binding across steps, so the caches are bound once.
  void bindInput(size_t index, void* data, std::span<const int64_t> shape);
  void run();

  // An output of the last run: data (in storage type) and shape; valid until the next run().
  const void* outputData(size_t index) const;
  std::span<const int64_t> outputShape(size_t index) const;

  const ExecutorPlanSummary& planSummary() const;

  // Per-op-name wall time of run() calls while on (for benchmarks; off by default, as reading the
  // clock around every op costs a little).
  void setProfiling(bool on);
  std::map<std::string, double> profileSeconds() const;

private:
  struct Plan;
  std::unique_ptr<Plan> plan_;
};

}  // namespace pagedc::cpu
