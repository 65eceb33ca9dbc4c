// The fusion stage: normalisation, activation and rotary fusions, then dead-code elimination.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "ir/Graph.h"
#include "passes/FuseRotary.h"

namespace pagedc {

struct FusionOptions {
  FuseRotaryOptions rotary;
};

// Runs fuseNormalization, fuseActivations and fuseRotary, then DCE, so only the fused ops remain.
// Returns what fired, by kind ("rms_norm+residual", "gated_act(silu)", "rope", ...).
std::map<std::string, int64_t> runFusions(Graph& graph, const FusionOptions& options = {});

}  // namespace pagedc
