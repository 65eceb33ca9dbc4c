// What the engine needs from a backend: run one scheduled step of a compiled model over its paged
// KV cache and hand back the logits the sampler needs. The CPU backend (runtime/cpu/) and the
// reference runner (the interpreter, for tests) implement it; the CUDA backend will too.
#pragma once

#include <cstdint>
#include <span>

#include "ir/ModelFacts.h"
#include "runtime/Scheduler.h"

namespace pagedc {

// Logits rows of one step, [numRows, vocab] row-major, valid until the next execute().
struct StepLogits {
  const float* data = nullptr;
  int64_t numRows = 0;
  int64_t vocab = 0;
  std::span<const float> row(int64_t i) const { return {data + i * vocab, static_cast<size_t>(vocab)}; }
};

class ModelRunner {
public:
  virtual ~ModelRunner() = default;

  virtual const ModelFacts& facts() const = 0;
  // The KV pools the runner holds: device blocks, and host blocks swap copies go to.
  virtual int64_t numDeviceBlocks() const = 0;
  virtual int64_t numHostBlocks() const = 0;

  // Does the plan's block operations in order (swapOut: device -> host, swapIn: host -> device,
  // copies: device -> device), then runs the model on plan.seqs, in order. Rows come back per
  // sequence in plan order: one per token when the sequence asks for allLogits (prompt logprobs),
  // else one when needsLogits, else none (plan.numLogits() rows in all). Throws Error on inputs the model cannot take (a token
  // id outside the vocabulary, a slot outside the pool), naming the request.
  virtual StepLogits execute(const StepPlan& plan) = 0;
};

}  // namespace pagedc
