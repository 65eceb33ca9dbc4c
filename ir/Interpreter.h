// The reference executor: runs any graph on the CPU, op by op, in f32 (16-bit floats upcast).
// Simple and obviously correct; it is the oracle that backends and passes are compared with.
#pragma once

#include <map>
#include <string>

#include "ir/Graph.h"

namespace pagedc {

class Interpreter {
public:
  // Binds the graph's weights once, converted to the canonical storage of EvalContext.
  explicit Interpreter(const Graph& graph);

  // Runs the graph. Inputs are matched by graph input name; their shapes bind the graph's
  // symbols, and any contradiction (a dim that must equal another, a missing input) is an error
  // naming the input. Outputs come back by graph output name: floating-point outputs as f32,
  // integers as i64, bool as bool.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs) const;

  // Checks every op's result against its declared type at run time (rank, constant dims).
  bool checkResultTypes = true;

private:
  const Graph& graph_;
  std::map<const Value*, Tensor> weights_;
};

// The canonical storage the interpreter computes in: f32, i64 or bool.
DType canonicalDType(DType type);
Tensor toCanonical(const Tensor& tensor);

}  // namespace pagedc
