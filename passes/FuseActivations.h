// Fuses GELU (erf and tanh forms), SiLU and the gated MLP products act(gate) * up into gelu / silu / gated_act.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "ir/Graph.h"

namespace pagedc {

// Finds elementwise chains y = f(x) around an Erf, Tanh or Sigmoid and identifies f numerically:
// the chain (elementwise ops with one-element constants only) is evaluated with the reference
// kernels on probe points and compared with gelu (erf), gelu (tanh) and silu, so every algebraic
// spelling and constant rounding of the exports matches and nothing else does. ONNX Gelu and
// com.microsoft.FastGelu without bias map too. Then gelu/silu(gate) * up becomes gated_act.
// Leaves the replaced chains dead (run DCE) and the ops in topological order. Returns counts by
// kind: "gelu", "gelu_tanh", "silu", "gated_act(silu)", ...
std::map<std::string, int64_t> fuseActivations(Graph& graph);

}  // namespace pagedc
