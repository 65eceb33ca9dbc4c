// Matching helpers shared by the fusion passes: constants, commutative operands, casts, cone evaluation, ordering.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "ir/Graph.h"

namespace pagedc {

// The producer of `value` when it is an op named `opName` (any op when opName is empty).
Op* producerOf(const Value* value, std::string_view opName = {});

// The data of a value produced by Constant or a loaded `weight`, looking through Identity (exports
// alias shared weights that way).
const Tensor* constantData(const Graph& graph, const Value* value);
// The single element of a one-element constant, as double.
std::optional<double> scalarConstant(const Graph& graph, const Value* value);
// True when `value` is a one-element constant within `relTol` of `expected` (exports round
// constants such as sqrt(2/pi) to f32, so exact comparison would miss them).
bool isScalarConstant(const Graph& graph, const Value* value, double expected, double relTol = 1e-5);
// The integer contents of a value when every element is known: constants or shape arithmetic.
std::optional<std::vector<int64_t>> constantInts(const Graph& graph, const Value* value);

// For a two-operand op one of whose operands is `known`, the other one (commutative matching).
Value* otherOperand(const Op& op, const Value* known);
// For a two-operand op, (the operand accepted by `pred`, the other one), trying both orders.
std::optional<std::pair<Value*, Value*>> matchEither(const Op& op, const std::function<bool(Value*)>& pred);

// Looks through Cast ops between floating-point types (the "upcast to f32 and back" of exports).
Value* skipFloatCasts(Value* value);
// Looks through Cast ops to the type the value already has (no-ops that exports leave behind).
Value* skipIdentityCasts(Value* value);

// The ops that read `value`, plus whether it is a graph output.
bool isGraphOutput(const Graph& graph, const Value* value);
// True when nothing but `allowed` reads `value` and it is no graph output.
bool onlyUsedBy(const Graph& graph, const Value* value, const std::vector<const Op*>& allowed);

// Evaluates `output` with the reference kernels: values in `bound` take the given tensors (canonical
// storage), constants and weights their data; every other op on the way must be accepted by
// `allowed` (when given). Nullopt when a leaf is unbound or an op refuses (its error is swallowed:
// the caller just does not fuse).
std::optional<Tensor> evaluateCone(const Graph& graph, const Value* output, const std::map<const Value*, Tensor>& bound,
                                   const std::function<bool(const Op&)>& allowed = {});
// The non-constant values the cone of `output` starts from when it is expanded through the ops
// `expand` accepts (each leaf once, in discovery order).
std::vector<Value*> coneLeaves(const Graph& graph, Value* output, const std::function<bool(const Op&)>& expand);

// Appends an op (its position is repaired by sortTopologically) and infers its result types; the
// results are named from `resultHints`, the node name is the anchor's, for diagnostics.
Op* addFusedOp(Graph& graph, std::string_view opName, std::vector<Value*> operands, AttrMap attrs,
               const std::vector<std::string>& resultHints, const Op& anchor);

// replaceAllUsesWith that keeps graph output names: when `from` is an output, `to` takes its name
// (the interface of the graph is by name) and `from` gets a fresh one.
void replaceValue(Graph& graph, Value* from, Value* to);

// Re-sorts the graph's ops topologically, keeping the existing order wherever it is valid, so that
// a pass may insert fused ops anywhere and repair the order once.
void sortTopologically(Graph& graph);

}  // namespace pagedc
