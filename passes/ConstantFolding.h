// fold-constants: evaluates ops whose operands are all constants and stores the results as constants.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ir/Graph.h"

namespace pagedc {

// Weights are operands of a fold only up to this many elements: folding must never copy (or
// re-materialise) the model's large tensors.
inline constexpr int64_t kMaxFoldedWeightElements = 4096;
// Results up to this many elements are held inline in a Constant op; larger ones become a new
// weight in the graph's WeightStore (so the IR text stays readable).
inline constexpr int64_t kMaxInlineConstantElements = 64;
// Results larger than this are not folded: materialising them would cost more memory than the
// op costs to run.
inline constexpr int64_t kMaxFoldedResultElements = int64_t{1} << 16;

// Evaluates (with OpDef::evaluate) every op whose operands are all Constant ops or small weights
// and whose results have constant shapes, replacing its results by Constant or `weight` ops of the
// results' declared dtypes. A result the declared dtype cannot hold exactly (an f16 result the
// reference computes in f32) is not folded, so folding never changes what the graph computes.
// Expects inferred types. Returns the number of ops folded.
size_t foldConstants(Graph& graph);

}  // namespace pagedc
