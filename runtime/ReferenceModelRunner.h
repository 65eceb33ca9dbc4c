// A ModelRunner over the reference interpreter (ir/Interpreter): slow and simple, the oracle the
// fast backends are compared with, and the runner the engine's tests use on the tiny fixtures.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "ir/Interpreter.h"
#include "runtime/Artifact.h"
#include "runtime/ModelRunner.h"

namespace pagedc {

// The KV caches are tensors [num_blocks, kv_heads, block_size, head_dim] in the model's kv dtype,
// one key and one value tensor per layer, for the device pool and for the host (swap) pool. Each
// step builds the ragged inputs of ir/RaggedInterface.h from the plan, runs the whole graph and
// takes the returned caches back (converted to the kv dtype).
class ReferenceModelRunner : public ModelRunner {
public:
  // Runs a loaded artifact's graph; the runner keeps the artifact.
  ReferenceModelRunner(Artifact artifact, int64_t numDeviceBlocks, int64_t numHostBlocks);
  // Runs a compiled graph the caller keeps alive, with its facts.
  ReferenceModelRunner(const Graph& graph, const ModelFacts& facts, int64_t numDeviceBlocks, int64_t numHostBlocks);

  const ModelFacts& facts() const override { return facts_; }
  int64_t numDeviceBlocks() const override { return numDeviceBlocks_; }
  int64_t numHostBlocks() const override { return numHostBlocks_; }
  StepLogits execute(const StepPlan& plan) override;

  // The caches, for tests: device (host = false) or host pool, layer's key or value tensor.
  const Tensor& cache(bool host, int layer, bool value) const;

private:
  void init();
  // Copies block src of one pool into block dst of another (or the same) on every layer's caches.
  void copyBlocks(const std::vector<BlockCopy>& copies, bool fromHost, bool toHost, const char* what);

  std::optional<Artifact> artifact_;
  const Graph& graph_;
  ModelFacts facts_;
  int64_t numDeviceBlocks_;
  int64_t numHostBlocks_;
  std::unique_ptr<Interpreter> interpreter_;
  // Index [layer * 2 + (value ? 1 : 0)].
  std::vector<Tensor> device_;
  std::vector<Tensor> host_;
  Tensor logits_;
};

}  // namespace pagedc
