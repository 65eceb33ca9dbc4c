// Fuses RMSNorm and LayerNorm, in any exported spelling, into rms_norm / layer_norm (with the residual add).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "ir/Graph.h"

namespace pagedc {

// Rewrites every normalisation over the last axis into rms_norm(x, weight[, residual]) or
// layer_norm(x, weight, bias?[, residual]): the decomposed chains (square, ReduceMean, + eps,
// Sqrt, Div or Reciprocal, casts, weight and bias), ONNX LayerNormalization / RMSNormalization
// and onnxruntime's (Skip)(Simplified)LayerNormalization. A residual Add feeding a norm whose sum
// is also read elsewhere (the pre-norm residual stream) moves into the norm, which then returns
// (normed, sum). Leaves the replaced chains dead (run DCE) and the ops in topological order.
// Returns how many of each fused form were created: "rms_norm", "rms_norm+residual", ...
std::map<std::string, int64_t> fuseNormalization(Graph& graph);

}  // namespace pagedc
