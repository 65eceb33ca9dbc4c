// Stores floating-point weights in the compile dtype (bf16, f16) and casts them back where they
// are used, so the artifact holds the narrow copy and backends can fuse the cast into their GEMMs.
#pragma once

#include "ir/Graph.h"

namespace pagedc {

// Returns the number of weights converted. f32 leaves the graph unchanged.
size_t convertWeightDType(Graph& graph, DType target);

}  // namespace pagedc
