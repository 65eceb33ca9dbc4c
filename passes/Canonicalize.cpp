// canonicalize: local simplifications (no-op ops removed, inverse or composable pairs merged).
#include "passes/Canonicalize.h"

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include "ir/OpDef.h"
#include "passes/Cleanup.h"

namespace pagedc {

namespace {

// Constant operands inspected here are small (scalars, axes, shapes); a weight larger than this
// is never a neutral element worth scanning.
constexpr int64_t kMaxInspectedElements = 4096;

bool sameType(const Value* a, const Value* b) { return a && b && a->type.hasRank() && a->type == b->type; }

// True when a tensor of shape `small` broadcast against `big` yields exactly `big`'s shape: no
// more dims, and each of its dims is 1 or the same as big's. Type equality of the result alone is
// not enough: broadcasting two different symbols is typed as the first one.
bool broadcastsInto(const std::optional<Shape>& small, const std::optional<Shape>& big) {
  if (!small || !big || small->size() > big->size()) return false;
  size_t offset = big->size() - small->size();
  for (size_t i = 0; i < small->size(); ++i)
    if ((*small)[i] != Dim(1) && (*small)[i] != (*big)[i + offset]) return false;
  return true;
}

std::optional<Shape> shapeOfTensor(const Tensor& tensor) {
  Shape shape;
  for (int64_t d : tensor.shape()) shape.emplace_back(d);
  return shape;
}

std::optional<std::vector<int64_t>> constInts(Graph& graph, const Op& op, size_t i) {
  if (!op.hasOperand(i)) return std::nullopt;
  InferContext ctx(op, graph);
  return ctx.operandConstInts(i);
}

// Axes normalised against `rank` and sorted, or nullopt when one is out of range or repeated.
std::optional<std::vector<int64_t>> normalizedAxes(std::vector<int64_t> axes, int64_t rank) {
  std::set<int64_t> unique;
  for (int64_t& axis : axes) {
    if (axis < -rank || axis >= rank) return std::nullopt;
    if (axis < 0) axis += rank;
    if (!unique.insert(axis).second) return std::nullopt;
  }
  return std::vector<int64_t>(unique.begin(), unique.end());
}

// Every element of a constant operand equals `value` (compared as doubles: exact for the small
// integers and the 0.0/1.0 looked for here).
bool allElementsEqual(const Graph& graph, const Value* value, double expected) {
  const Tensor* data = constantData(graph, value, kMaxInspectedElements);
  if (!data || data->numElements() == 0) return false;
  for (int64_t i = 0; i < data->numElements(); ++i)
    if (data->elementAsDouble(i) != expected) return false;
  return true;
}

std::vector<int64_t> permOf(const Op& transpose) {
  std::vector<int64_t> perm = transpose.intsAttr("perm");
  const Value* input = transpose.operand(0);
  if (perm.empty() && input && input->type.hasRank())
    for (int64_t i = static_cast<int64_t>(input->type.rank()) - 1; i >= 0; --i) perm.push_back(i);
  return perm;
}

bool isIdentityPerm(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return true;
}

// Every value of `from` is exactly representable in `to` (so from -> to -> anything is from -> anything).
bool isLosslessConversion(DType from, DType to) {
  if (from == to || from == DType::Bool) return true;
  auto integerBits = [](DType t) -> std::optional<std::pair<int, bool>> {  // width, signed
    switch (t) {
      case DType::I8: return std::pair{8, true};
      case DType::I16: return std::pair{16, true};
      case DType::I32: return std::pair{32, true};
      case DType::I64: return std::pair{64, true};
      case DType::U8: return std::pair{8, false};
      case DType::U16: return std::pair{16, false};
      case DType::U32: return std::pair{32, false};
      case DType::U64: return std::pair{64, false};
      default: return std::nullopt;
    }
  };
  auto mantissaBits = [](DType t) -> int {  // significand precision, 0 for non-floats
    switch (t) {
      case DType::F16: return 11;
      case DType::BF16: return 8;
      case DType::F32: return 24;
      case DType::F64: return 53;
      default: return 0;
    }
  };
  auto fromInt = integerBits(from), toInt = integerBits(to);
  if (fromInt && toInt) {
    auto [fromWidth, fromSigned] = *fromInt;
    auto [toWidth, toSigned] = *toInt;
    if (fromSigned && !toSigned) return false;
    return toWidth > fromWidth || (toWidth == fromWidth && fromSigned == toSigned);
  }
  if (fromInt && mantissaBits(to)) return fromInt->first - (fromInt->second ? 1 : 0) <= mantissaBits(to);
  if (mantissaBits(from) && mantissaBits(to)) {
    // f16 -> f32/f64, bf16 -> f32/f64, f32 -> f64: precision and range both grow.
    if (from == DType::F16 || from == DType::BF16) return to == DType::F32 || to == DType::F64;
    return from == DType::F32 && to == DType::F64;
  }
  return false;
}

class Canonicalizer {
public:
  explicit Canonicalizer(Graph& graph) : graph_(graph) {}

  size_t run() {
    size_t rewrites = 0;
    // Dead ops are DCE's: rewriting them would count as progress forever. Rewrites only take uses
    // away from ops already visited, so the set stays right for the ops still to come.
    auto used = usedValues(graph_);
    for (size_t index = 0; index < graph_.ops().size(); ++index) {
      Op& op = *graph_.ops()[index];
      if (op.results.empty() || hasSideEffects(op) || !used.count(op.result(0))) continue;
      rewrites += rewrite(op) ? 1 : 0;
    }
    return rewrites;
  }

private:
  // Makes `op`'s result 0 be `value` everywhere (the op is left for DCE).
  bool forward(Op& op, Value* value) { return value && replaceKeepingOutputNames(graph_, op.result(0), value); }

  const Op* producerOf(const Value* value, const char* opName) const {
    return value && value->producer && value->producer->opName() == opName ? value->producer : nullptr;
  }

  bool rewrite(Op& op) {
    const std::string& name = op.opName();
    Value* x = op.operand(0);
    Value* result = op.result(0);
    if (name == "Identity") return forward(op, x);
    if (name == "Dropout") return dropout(op);
    if (name == "Cast" || name == "CastLike") return cast(op);
    if (name == "Reshape") return reshape(op);
    if (name == "Expand") {
      InferContext ctx(op, graph_);
      auto target = ctx.operandInts(1);
      return sameType(x, result) && target && broadcastsInto(*target, x->type.shape) && forward(op, x);
    }
    if (name == "Transpose") return transpose(op);
    if (name == "Squeeze" || name == "Unsqueeze") return squeezeUnsqueeze(op);
    if (name == "Concat") return op.operands.size() == 1 && sameType(x, result) && forward(op, x);
    if (name == "Slice") return slice(op);
    if (name == "Mul" || name == "Add") return neutralBinary(op, name == "Mul" ? 1.0 : 0.0, /*commutative=*/true);
    if (name == "Div" || name == "Sub") return neutralBinary(op, name == "Div" ? 1.0 : 0.0, /*commutative=*/false);
    if (name == "And" || name == "Or") return neutralBinary(op, name == "And" ? 1.0 : 0.0, /*commutative=*/true);
    if (name == "Where") return where(op);
    return false;
  }

  // Inference Dropout passes its data through; its mask (all true) must be unused.
  bool dropout(Op& op) {
    if (op.results.size() > 1 && usedOrOutput(op.results[1])) return false;
    if (op.hasOperand(2) && !allElementsEqual(graph_, op.operand(2), 0.0)) return false;
    return forward(op, op.operand(0));
  }

  bool cast(Op& op) {
    Value* x = op.operand(0);
    Value* result = op.result(0);
    if (sameType(x, result)) return forward(op, x);
    // Cast(Cast(y, mid), to) = Cast(y, to) when mid holds every value of y exactly.
    const Op* inner = producerOf(x, "Cast");
    if (op.opName() != "Cast" || !inner || !inner->operand(0)) return false;
    Value* y = inner->operand(0);
    if (!isLosslessConversion(y->type.dtype, x->type.dtype)) return false;
    if (sameType(y, result)) return forward(op, y);
    op.operands[0] = y;
    return true;
  }

  bool reshape(Op& op) {
    Value* x = op.operand(0);
    // Reshape never reorders elements: to the operand's own shape it is the operand.
    if (sameType(x, op.result(0))) return forward(op, x);
    // Reshape(Reshape(y, s1), s2) = Reshape(y, s2) when s2 does not copy dims (0) of the middle.
    const Op* inner = producerOf(x, "Reshape");
    if (!inner || !inner->operand(0)) return false;
    InferContext ctx(op, graph_);
    auto target = ctx.operandInts(1);
    if (!target) return false;
    bool copiesDims = op.intAttr("allowzero", 0) == 0 && std::any_of(target->begin(), target->end(), [](const Dim& d) { return d == Dim(0); });
    if (copiesDims) return false;
    op.operands[0] = inner->operand(0);
    return true;
  }

  bool transpose(Op& op) {
    Value* x = op.operand(0);
    std::vector<int64_t> perm = permOf(op);
    if (!x || !x->type.hasRank() || perm.size() != x->type.rank()) return false;
    if (isIdentityPerm(perm)) return forward(op, x);
    // Transpose(Transpose(y, p1), p2) = Transpose(y, q) with q[i] = p1[p2[i]].
    const Op* inner = producerOf(x, "Transpose");
    if (!inner || !inner->operand(0)) return false;
    std::vector<int64_t> innerPerm = permOf(*inner);
    if (innerPerm.size() != perm.size()) return false;
    std::vector<int64_t> composed;
    for (int64_t p : perm) {
      if (p < 0 || p >= static_cast<int64_t>(innerPerm.size())) return false;
      composed.push_back(innerPerm[static_cast<size_t>(p)]);
    }
    Value* y = inner->operand(0);
    if (isIdentityPerm(composed) && sameType(y, op.result(0))) return forward(op, y);
    op.operands[0] = y;
    op.attrs["perm"] = Attribute(composed);
    return true;
  }

  // Squeeze(Unsqueeze(y, a), a) = y and Unsqueeze(Squeeze(y, a), a) = y, the axes compared after
  // normalising each against the rank it refers to (the larger rank of the pair).
  bool squeezeUnsqueeze(Op& op) {
    bool isSqueeze = op.opName() == "Squeeze";
    const Op* inner = producerOf(op.operand(0), isSqueeze ? "Unsqueeze" : "Squeeze");
    if (!inner || !inner->operand(0) || !op.hasOperand(1) || !inner->hasOperand(1)) return false;
    Value* y = inner->operand(0);
    // The larger rank: Unsqueeze's result for Squeeze(Unsqueeze), Squeeze's input for the other.
    const Value* wide = isSqueeze ? op.operand(0) : y;
    if (!wide->type.hasRank()) return false;
    auto outer = constInts(graph_, op, 1);
    auto innerAxes = constInts(graph_, *inner, 1);
    if (!outer || !innerAxes) return false;
    int64_t rank = static_cast<int64_t>(wide->type.rank());
    auto a = normalizedAxes(*outer, rank), b = normalizedAxes(*innerAxes, rank);
    if (!a || !b || *a != *b || !sameType(y, op.result(0))) return false;
    return forward(op, y);
  }

  bool slice(Op& op) {
    Value* x = op.operand(0);
    if (!sameType(x, op.result(0))) return false;
    if (op.hasOperand(4)) {
      auto steps = constInts(graph_, op, 4);
      if (!steps || std::any_of(steps->begin(), steps->end(), [](int64_t s) { return s != 1; })) return false;
    }
    // Step 1 and an unchanged (symbolic) shape: every sliced dim kept all its elements.
    return forward(op, x);
  }

  // x * 1, 1 * x, x / 1, x + 0, 0 + x, x - 0, x and true, x or false -> x, when the constant's
  // broadcast adds nothing.
  // For floats, x + 0.0 turns -0.0 into +0.0: dropping it keeps the sign of a zero, a difference
  // no comparison or arithmetic result depends on.
  bool neutralBinary(Op& op, double neutral, bool commutative) {
    for (size_t constantSide : {size_t{1}, size_t{0}}) {
      if (constantSide == 0 && !commutative) break;
      Value* other = op.operand(1 - constantSide);
      const Value* constant = op.operand(constantSide);
      if (!other || !constant || !sameType(other, op.result(0)) || constant->type.dtype != other->type.dtype) continue;
      if (!allElementsEqual(graph_, constant, neutral)) continue;
      const Tensor* data = constantData(graph_, constant, kMaxInspectedElements);
      if (!broadcastsInto(shapeOfTensor(*data), other->type.shape)) continue;
      return forward(op, other);
    }
    return false;
  }

  bool where(Op& op) {
    const Value* condition = op.operand(0);
    bool allTrue = allElementsEqual(graph_, condition, 1.0);
    bool allFalse = allElementsEqual(graph_, condition, 0.0);
    if (!allTrue && !allFalse) return false;
    Value* chosen = op.operand(allTrue ? 1 : 2);
    const Value* other = op.operand(allTrue ? 2 : 1);
    if (!sameType(chosen, op.result(0)) || !other || !broadcastsInto(other->type.shape, chosen->type.shape)) return false;
    if (!broadcastsInto(shapeOfTensor(*constantData(graph_, condition, kMaxInspectedElements)), chosen->type.shape)) return false;
    return forward(op, chosen);
  }

  bool usedOrOutput(const Value* value) const {
    return std::find(graph_.outputs.begin(), graph_.outputs.end(), value) != graph_.outputs.end() || !graph_.users(value).empty();
  }

  Graph& graph_;
};

}  // namespace

size_t canonicalize(Graph& graph) { return Canonicalizer(graph).run(); }

}  // namespace pagedc
