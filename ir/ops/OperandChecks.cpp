// Shape-rule checks on an op's operands and attributes (see OperandChecks.h).
#include "ir/ops/OperandChecks.h"

#include <algorithm>

namespace pagedc {

std::string operandLabel(const InferContext& ctx, size_t operand, std::string_view name) {
  if (!name.empty()) return std::string(name);
  return "operand " + std::to_string(operand) + " (%" + ctx.op().operands[operand]->name + ")";
}

void requireFloat(const InferContext& ctx, size_t operand, std::string_view name) {
  const TensorType& type = ctx.operandType(operand);
  if (!isFloatingPoint(type.dtype)) ctx.error(operandLabel(ctx, operand, name), " must be floating-point, got ", type.str());
}

void requireNumeric(const InferContext& ctx, size_t operand, std::string_view name) {
  const TensorType& type = ctx.operandType(operand);
  if (type.dtype == DType::Bool) ctx.error(operandLabel(ctx, operand, name), " must be numeric, got ", type.str());
}

void requireBool(const InferContext& ctx, size_t operand, std::string_view name) {
  const TensorType& type = ctx.operandType(operand);
  if (type.dtype != DType::Bool) ctx.error(operandLabel(ctx, operand, name), " must be bool, got ", type.str());
}

void requireInteger(const InferContext& ctx, size_t operand, std::string_view name) {
  const TensorType& type = ctx.operandType(operand);
  if (!isInteger(type.dtype)) ctx.error(operandLabel(ctx, operand, name), " must be an integer, got ", type.str());
}

void requireIndexInteger(const InferContext& ctx, size_t operand, std::string_view name) {
  const TensorType& type = ctx.operandType(operand);
  if (type.dtype != DType::I64 && type.dtype != DType::I32)
    ctx.error(operandLabel(ctx, operand, name), " must be i64 or i32, got ", type.str());
}

void requireSameDType(const InferContext& ctx, size_t first, size_t last) {
  DType type = ctx.operandType(first).dtype;
  for (size_t i = first + 1; i < last; ++i) {
    if (!ctx.hasOperand(i)) continue;
    DType other = ctx.operandType(i).dtype;
    if (other != type)
      ctx.error(operandLabel(ctx, i), " must have the element type of operand ", first, " (", dtypeName(type), "), got ", dtypeName(other));
  }
}

size_t requireRank(const InferContext& ctx, size_t operand, std::initializer_list<size_t> ranks, std::string_view name) {
  size_t rank = ctx.operandRank(operand);
  if (std::find(ranks.begin(), ranks.end(), rank) != ranks.end()) return rank;
  std::string allowed;
  for (size_t r : ranks) allowed += (allowed.empty() ? "" : " or ") + std::to_string(r);
  ctx.error(operandLabel(ctx, operand, name), " must have rank ", allowed, ", got ", ctx.operandType(operand).str());
}

void requireUnidirectionalBroadcast(const InferContext& ctx, size_t operand, const Shape& target, std::string_view name) {
  const TensorType& type = ctx.operandType(operand);
  if (!type.hasRank()) return;
  if (type.rank() > target.size())
    ctx.error(operandLabel(ctx, operand, name), " ", type.str(), " has higher rank than the tensor it applies to ", shapeStr(target));
  size_t offset = target.size() - type.rank();
  for (size_t i = 0; i < type.rank(); ++i) {
    const Dim& d = type.dim(i);
    const Dim& t = target[offset + i];
    if (d.constant() == 1 || d == t) continue;
    if (d.isConstant() && t.isConstant())
      ctx.error(operandLabel(ctx, operand, name), " ", type.str(), " does not broadcast to ", shapeStr(target), " (dimension ", i, ")");
  }
}

std::optional<size_t> rankOf(const InferContext& ctx, size_t operand) {
  const TensorType& type = ctx.operandType(operand);
  if (!type.hasRank()) return std::nullopt;
  return type.rank();
}

std::optional<int64_t> vectorLength(const InferContext& ctx, size_t operand, std::string_view name) {
  const TensorType& type = ctx.operandType(operand);
  if (!type.hasRank()) return std::nullopt;
  if (type.rank() != 1) ctx.error(operandLabel(ctx, operand, name), " must be 1-D, got ", type.str());
  return type.dim(0).constant();
}

void requireSameDim(const InferContext& ctx, const Dim& a, const Dim& b, std::string_view what) {
  if (a.isConstant() && b.isConstant() && a != b) ctx.error(what, ": ", a.str(), " vs ", b.str());
}

Dim divideDim(InferContext& ctx, const Dim& a, const Dim& b, std::string_view what) {
  if (b.constant() == 0) ctx.error(what, ": division by zero");
  if (auto q = a.divideExactly(b)) return *q;
  if (a.isConstant() && b.isConstant()) ctx.error(what, ": ", a.str(), " is not divisible by ", b.str());
  return ctx.unknownDim();
}

int64_t positiveIntAttr(const InferContext& ctx, std::string_view name, int64_t fallback) {
  int64_t value = ctx.op().intAttr(name, fallback);
  if (value <= 0) ctx.error("attribute '", name, "' must be positive, got ", value);
  return value;
}

}  // namespace pagedc
