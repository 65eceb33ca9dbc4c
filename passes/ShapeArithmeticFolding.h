// fold-shape-arith: replaces integer values whose contents type inference knows exactly by Constants.
#pragma once

#include <cstddef>

#include "ir/Graph.h"

namespace pagedc {

// Every small integer value whose knownInts are all constants (and every comparison of known
// integers that is decided whatever the symbols' values) becomes a Constant op; the ops computing
// it are left for DCE. Values with a symbolic entry stay. Expects inferred types (inferTypes).
// Returns the number of values replaced.
size_t foldShapeArithmetic(Graph& graph);

}  // namespace pagedc
