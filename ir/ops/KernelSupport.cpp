// Shape-rule checks and index helpers shared by the normalization, attention and quantization ops.
#include "ir/ops/KernelSupport.h"

#include <algorithm>

namespace pagedc::kernels {

std::optional<DType> dtypeFromOnnxCode(int64_t code) {
  switch (code) {
    case 1: return DType::F32;
    case 10: return DType::F16;
    case 11: return DType::F64;
    case 16: return DType::BF16;
    default: return std::nullopt;
  }
}

size_t requireRank(const InferContext& ctx, size_t operand, std::string_view name, std::initializer_list<size_t> ranks) {
  size_t rank = ctx.operandRank(operand);
  if (std::find(ranks.begin(), ranks.end(), rank) != ranks.end()) return rank;
  std::string allowed;
  for (size_t r : ranks) allowed += (allowed.empty() ? "" : " or ") + std::to_string(r);
  ctx.error(name, " must have rank ", allowed, ", got ", ctx.operandType(operand).str());
}

void requireFloat(const InferContext& ctx, size_t operand, std::string_view name) {
  const TensorType& type = ctx.operandType(operand);
  if (!isFloatingPoint(type.dtype)) ctx.error(name, " must be a floating-point tensor, got ", type.str());
}

void requireInteger(const InferContext& ctx, size_t operand, std::string_view name) {
  const TensorType& type = ctx.operandType(operand);
  if (!isInteger(type.dtype)) ctx.error(name, " must be an integer tensor, got ", type.str());
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

void requireUnidirectionalBroadcast(const InferContext& ctx, size_t operand, std::string_view name, const Shape& target) {
  const TensorType& type = ctx.operandType(operand);
  if (!type.hasRank()) return;
  if (type.rank() > target.size())
    ctx.error(name, " ", type.str(), " has higher rank than the tensor it applies to ", shapeStr(target));
  size_t offset = target.size() - type.rank();
  for (size_t i = 0; i < type.rank(); ++i) {
    const Dim& d = type.dim(i);
    const Dim& t = target[offset + i];
    if (d.constant() == 1 || d == t) continue;
    if (d.isConstant() && t.isConstant())
      ctx.error(name, " ", type.str(), " does not broadcast to ", shapeStr(target), " (dimension ", i, ")");
  }
}

int64_t positiveIntAttr(const InferContext& ctx, std::string_view name, int64_t fallback) {
  int64_t value = ctx.op().intAttr(name, fallback);
  if (value <= 0) ctx.error("attribute '", name, "' must be positive, got ", value);
  return value;
}

std::vector<int64_t> rowMajorStrides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

BroadcastIndexer::BroadcastIndexer(const std::vector<int64_t>& from, const std::vector<int64_t>& to) : toShape_(to) {
  if (from.size() > to.size()) fail("cannot broadcast rank ", from.size(), " to rank ", to.size());
  std::vector<int64_t> strides = rowMajorStrides(from);
  fromStrides_.assign(to.size(), 0);
  size_t offset = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i) {
    if (from[i] == to[offset + i]) fromStrides_[offset + i] = strides[i];
    else if (from[i] != 1) fail("cannot broadcast dimension ", from[i], " to ", to[offset + i]);
  }
}

int64_t BroadcastIndexer::operator()(int64_t flatIndex) const {
  int64_t result = 0;
  for (size_t i = toShape_.size(); i-- > 0;) {
    int64_t coordinate = flatIndex % toShape_[i];
    flatIndex /= toShape_[i];
    result += coordinate * fromStrides_[i];
  }
  return result;
}

void rotateHead(float* head, const float* cos, const float* sin, int64_t rotaryDim, bool interleaved) {
  int64_t half = rotaryDim / 2;
  for (int64_t i = 0; i < half; ++i) {
    int64_t first = interleaved ? 2 * i : i;
    int64_t second = interleaved ? 2 * i + 1 : i + half;
    float x1 = head[first];
    float x2 = head[second];
    head[first] = cos[i] * x1 - sin[i] * x2;
    head[second] = sin[i] * x1 + cos[i] * x2;
  }
}

}  // namespace pagedc::kernels
