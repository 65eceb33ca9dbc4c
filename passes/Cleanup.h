// The cleanup pipeline (folding, canonicalisation, CSE, DCE to a fixed point) and the rewrite helpers its passes share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_set>

#include "ir/Graph.h"

namespace pagedc {

struct CleanupResult {
  size_t rounds = 0;   // rounds run (the last one changed nothing unless the bound was hit)
  size_t rewrites = 0; // rewrites of all passes together, ops removed by DCE included
};

// Runs fold-shape-arith, fold-constants, canonicalize, cse and dce, re-inferring types before
// each, until a round changes nothing (at most `maxRounds` rounds). Leaves types inferred.
CleanupResult runCleanup(Graph& graph, size_t maxRounds = 16);

// --- Helpers shared by the cleanup passes. -----------------------------------------------------
//
// Graph outputs are the model's interface, so their names must survive every rewrite. When a
// rewrite replaces a value that is a graph output, the replacement takes over the output's name
// (the two values swap names, so names stay unique). That is impossible when the replacement is
// itself a graph input or another output (its name is interface too): such rewrites are skipped.

// Whether replaceKeepingOutputNames(graph, from, to) can keep the graph's interface names.
bool canReplaceKeepingOutputNames(const Graph& graph, const Value* from, const Value* to);
// Replaces every use of `from` (operands and graph outputs) by `to`, moving an output name to
// `to` as described above. Returns false, changing nothing, when canReplaceKeepingOutputNames is false.
bool replaceKeepingOutputNames(Graph& graph, Value* from, Value* to);

// Ops the cleanup passes must neither fold, merge nor drop for being redundant (they stand for
// in-place updates of run-time state).
bool hasSideEffects(const Op& op);

// The data of `value` when it is produced by a Constant op, or by a `weight` op whose data is
// loaded and has at most `maxWeightElements` elements; otherwise null.
const Tensor* constantData(const Graph& graph, const Value* value, int64_t maxWeightElements);

// Every value some op reads or the graph returns.
std::unordered_set<const Value*> usedValues(const Graph& graph);

// Inserts a Constant holding `tensor` before ops()[index], typed, and returns its result.
Value* insertConstant(Graph& graph, size_t index, Tensor tensor, const std::string& nameHint);

}  // namespace pagedc
