// fold-shape-arith: replaces integer values whose contents type inference knows exactly by Constants.
#include "passes/ShapeArithmeticFolding.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "ir/OpDef.h"
#include "passes/Cleanup.h"

namespace pagedc {

namespace {

// The element count of a 0-D or 1-D value of constant shape, or nullopt.
std::optional<int64_t> smallVectorLength(const TensorType& type) {
  if (!type.hasRank() || type.rank() > 1) return std::nullopt;
  if (type.rank() == 0) return 1;
  return type.dim(0).constant();
}

std::vector<int64_t> tensorShapeOf(const TensorType& type) {
  std::vector<int64_t> shape;
  for (const Dim& d : *type.shape) shape.push_back(*d.constant());
  return shape;
}

// An integer value whose contents are all known constants, as a tensor of its declared dtype.
std::optional<Tensor> knownIntegerContents(const Value& value) {
  if (!isInteger(value.type.dtype) || !value.knownInts) return std::nullopt;
  auto length = smallVectorLength(value.type);
  if (!length || *length != static_cast<int64_t>(value.knownInts->size())) return std::nullopt;
  std::vector<int64_t> contents;
  for (const Dim& d : *value.knownInts) {
    auto c = d.constant();
    if (!c) return std::nullopt;
    contents.push_back(*c);
  }
  // Shape rules already wrapped the contents to the declared width; the conversion only narrows storage.
  return Tensor::fromValues(DType::I64, tensorShapeOf(value.type), contents).convertTo(value.type.dtype);
}

// The sign of a - b when it is the same whatever the (non-negative) symbols are.
struct Sign {
  bool positive = false, negative = false, zero = false, nonNegative = false, nonPositive = false;
};

Sign signOfDifference(const Dim& a, const Dim& b) {
  Dim diff = a - b;
  Sign sign;
  if (auto c = diff.constant()) {
    sign.positive = *c > 0;
    sign.negative = *c < 0;
    sign.zero = *c == 0;
  } else {
    // diff >= 1 when diff - 1 has no negative coefficient; likewise for -diff.
    sign.positive = (diff - Dim(1)).isKnownNonNegative();
    sign.negative = (-diff - Dim(1)).isKnownNonNegative();
    sign.nonNegative = diff.isKnownNonNegative();
    sign.nonPositive = (-diff).isKnownNonNegative();
  }
  sign.nonNegative = sign.nonNegative || sign.positive || sign.zero;
  sign.nonPositive = sign.nonPositive || sign.negative || sign.zero;
  return sign;
}

std::optional<bool> decideComparison(const std::string& opName, const Dim& a, const Dim& b) {
  Sign s = signOfDifference(a, b);
  auto decided = [](bool isTrue, bool isFalse) -> std::optional<bool> {
    if (isTrue) return true;
    if (isFalse) return false;
    return std::nullopt;
  };
  if (opName == "Equal") return decided(s.zero, s.positive || s.negative);
  if (opName == "Less") return decided(s.negative, s.nonNegative);
  if (opName == "LessOrEqual") return decided(s.nonPositive, s.positive);
  if (opName == "Greater") return decided(s.positive, s.nonPositive);
  if (opName == "GreaterOrEqual") return decided(s.nonNegative, s.negative);
  return std::nullopt;
}

// A comparison of two small integer vectors with known contents, decided element by element
// (exporters compare shape entries with -1 or 0 before Expand/Reshape: `batch == -1` is false).
std::optional<Tensor> decidedComparison(Graph& graph, const Op& op) {
  const std::string& name = op.opName();
  if (name != "Equal" && name != "Less" && name != "LessOrEqual" && name != "Greater" && name != "GreaterOrEqual") return std::nullopt;
  const Value& result = *op.result(0);
  if (result.type.dtype != DType::Bool || op.operands.size() != 2 || !op.operand(0) || !op.operand(1)) return std::nullopt;
  if (!isInteger(op.operand(0)->type.dtype) || !isInteger(op.operand(1)->type.dtype)) return std::nullopt;
  auto length = smallVectorLength(result.type);
  if (!length) return std::nullopt;
  InferContext ctx(op, graph);
  auto a = ctx.operandInts(0);
  auto b = ctx.operandInts(1);
  if (!a || !b || a->empty() || b->empty()) return std::nullopt;
  size_t n = std::max(a->size(), b->size());
  if ((a->size() != n && a->size() != 1) || (b->size() != n && b->size() != 1) || static_cast<int64_t>(n) != *length) return std::nullopt;
  std::vector<uint8_t> values;
  for (size_t i = 0; i < n; ++i) {
    auto decided = decideComparison(name, (*a)[a->size() == 1 ? 0 : i], (*b)[b->size() == 1 ? 0 : i]);
    if (!decided) return std::nullopt;
    values.push_back(*decided ? 1 : 0);
  }
  return Tensor::fromValues(DType::Bool, tensorShapeOf(result.type), values);
}

}  // namespace

size_t foldShapeArithmetic(Graph& graph) {
  size_t replaced = 0;
  // Uses only move from values already replaced (never revisited) to fresh constants.
  auto used = usedValues(graph);
  for (size_t index = 0; index < graph.ops().size(); ++index) {
    Op* op = graph.ops()[index].get();
    if (op->opName() == "Constant" || op->opName() == "weight" || hasSideEffects(*op)) continue;
    for (size_t r = 0; r < op->results.size(); ++r) {
      Value* result = op->results[r];
      std::optional<Tensor> contents = knownIntegerContents(*result);
      if (!contents && r == 0) contents = decidedComparison(graph, *op);
      if (!contents) continue;
      // Dead values are left to DCE rather than given a Constant nobody reads.
      if (!used.count(result)) continue;
      Value* constant = insertConstant(graph, index, std::move(*contents), result->name);
      ++index;  // `op` moved one place down
      replaceKeepingOutputNames(graph, result, constant);  // a fresh Constant can always take an output's name
      ++replaced;
    }
  }
  return replaced;
}

}  // namespace pagedc
