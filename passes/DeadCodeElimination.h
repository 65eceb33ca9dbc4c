// Dead-code elimination: drops ops none of whose results reach a graph output.
#pragma once

#include "ir/Graph.h"

namespace pagedc {

// Returns the number of ops removed.
size_t eliminateDeadCode(Graph& graph);

}  // namespace pagedc
