// canonicalize: local simplifications (no-op ops removed, inverse or composable pairs merged).
#pragma once

#include <cstddef>

#include "ir/Graph.h"

namespace pagedc {

// Removes Identity, inference Dropout, Cast/CastLike to the same dtype, Reshape/Expand to the
// operand's own shape, identity Transposes, single-operand Concat, Slices covering every dim,
// Mul/Div by 1, Add/Sub of 0, And with true and Or with false that broadcast to nothing new, Where with a constant all-true or
// all-false condition, Squeeze(Unsqueeze(x, a), a) and Unsqueeze(Squeeze(x, a), a); composes
// Transpose(Transpose), Reshape(Reshape) and Cast(Cast) through a lossless middle type. Graph
// outputs keep their names (see passes/Cleanup.h). Expects inferred types. Returns the number of
// rewrites.
size_t canonicalize(Graph& graph);

}  // namespace pagedc
