// cse: merges ops that compute the same thing (same op, operands, attributes) into the first one.
#pragma once

#include <cstddef>

#include "ir/Graph.h"

namespace pagedc {

// An op with the same op name, the same operands (the same values), equal attributes and the same
// number of results as an earlier op is replaced by it; equal Constants (same dtype, shape and
// bytes) merge too, and so do small integer values whose symbolic contents (knownInts) are equal,
// whatever computes them. Later ops are left for DCE. Returns the number of ops and values merged.
size_t eliminateCommonSubexpressions(Graph& graph);

}  // namespace pagedc
