// Checks a graph's invariants and names the op and operand at fault.
#pragma once

#include <string>
#include <vector>

#include "ir/Graph.h"

namespace pagedc {

// Returns every problem found (empty when the graph is valid): SSA order, arity, attributes,
// operand types and declared result types against each op's shape rule.
std::vector<std::string> verifyGraph(Graph& graph);
// Throws an Error listing the problems, if any.
void verifyOrThrow(Graph& graph);

}  // namespace pagedc
