// Runs every op's shape rule in order, giving each result its type (and known integer contents).
#pragma once

#include "ir/Graph.h"

namespace pagedc {

// Throws an Error naming the first op whose operands are invalid.
void inferTypes(Graph& graph);
// Re-infers one op (passes call this after rewriting operands).
void inferOpTypes(Graph& graph, Op& op);

}  // namespace pagedc
