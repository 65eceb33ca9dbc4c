// Concrete-shape helpers for the ops' reference implementations (see KernelUtil.h).
#include "ir/ops/KernelUtil.h"

#include <algorithm>

#include "ir/Error.h"
#include "ir/Interpreter.h"

namespace pagedc {

std::vector<int64_t> contiguousStrides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * shape[d];
  return strides;
}

int64_t shapeProduct(const std::vector<int64_t>& shape, size_t begin, size_t end) {
  int64_t product = 1;
  for (size_t d = begin; d < std::min(end, shape.size()); ++d) product *= shape[d];
  return product;
}

std::vector<int64_t> broadcastConcrete(const std::vector<std::vector<int64_t>>& shapes, const EvalContext& ctx) {
  size_t rank = 0;
  for (const auto& shape : shapes) rank = std::max(rank, shape.size());
  std::vector<int64_t> result(rank, 1);
  for (const auto& shape : shapes) {
    size_t offset = rank - shape.size();
    for (size_t d = 0; d < shape.size(); ++d) {
      int64_t& out = result[offset + d];
      if (shape[d] == out || shape[d] == 1) continue;
      // A size-0 dim broadcasts against 1 only, so `out == 1` is the only other valid case.
      if (out != 1) {
        std::string all;
        for (const auto& s : shapes) {
          all += all.empty() ? "[" : " with [";
          for (size_t i = 0; i < s.size(); ++i) all += (i ? ", " : "") + std::to_string(s[i]);
          all += "]";
        }
        ctx.error("cannot broadcast ", all);
      }
      out = shape[d];
    }
  }
  return result;
}

std::vector<int64_t> broadcastStrides(const std::vector<int64_t>& inputShape, const std::vector<int64_t>& outputShape) {
  std::vector<int64_t> contiguous = contiguousStrides(inputShape);
  std::vector<int64_t> strides(outputShape.size(), 0);
  size_t offset = outputShape.size() - inputShape.size();
  for (size_t d = 0; d < inputShape.size(); ++d)
    strides[offset + d] = inputShape[d] == 1 ? 0 : contiguous[d];
  return strides;
}

BroadcastIndexer::BroadcastIndexer(const std::vector<int64_t>& from, const std::vector<int64_t>& to) : toShape_(to) {
  if (from.size() > to.size()) fail("cannot broadcast rank ", from.size(), " to rank ", to.size());
  size_t offset = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != to[offset + i] && from[i] != 1) fail("cannot broadcast dimension ", from[i], " to ", to[offset + i]);
  fromStrides_ = broadcastStrides(from, to);
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

AxisSplit splitAtAxis(const std::vector<int64_t>& shape, size_t axis) {
  return {shapeProduct(shape, 0, axis), shape.at(axis), shapeProduct(shape, axis + 1)};
}

std::vector<int64_t> normalizeAxes(const std::vector<int64_t>& axes, int64_t rank, const Op& op, std::string_view what) {
  std::vector<int64_t> result;
  for (int64_t axis : axes) result.push_back(normalizeAxis(axis, rank, op, what));
  std::sort(result.begin(), result.end());
  if (std::adjacent_find(result.begin(), result.end()) != result.end())
    fail(op.describe(), ": ", what, " contains a repeated axis");
  return result;
}

Shape toShape(const std::vector<int64_t>& dims) { return Shape(dims.begin(), dims.end()); }

int64_t wrapToDType(int64_t value, DType type) {
  auto bits = static_cast<uint64_t>(value);
  switch (type) {
    case DType::I32: return static_cast<int32_t>(static_cast<uint32_t>(bits));
    case DType::I16: return static_cast<int16_t>(static_cast<uint16_t>(bits));
    case DType::I8: return static_cast<int8_t>(static_cast<uint8_t>(bits));
    case DType::U32: return static_cast<uint32_t>(bits);
    case DType::U16: return static_cast<uint16_t>(bits);
    case DType::U8: return static_cast<uint8_t>(bits);
    default: return value;  // 64-bit types keep their bits in i64 storage
  }
}

double scalarAsDouble(const Tensor& tensor, const EvalContext& ctx, std::string_view what) {
  if (tensor.numElements() != 1) ctx.error(what, " must have exactly one element, got shape ", tensor.shapeStr());
  return tensor.elementAsDouble(0);
}

int64_t scalarAsInt(const Tensor& tensor, const EvalContext& ctx, std::string_view what) {
  if (tensor.numElements() != 1) ctx.error(what, " must have exactly one element, got shape ", tensor.shapeStr());
  return tensor.elementAsInt(0);
}

Tensor canonicalZeros(DType declared, const std::vector<int64_t>& shape) { return Tensor::zeros(canonicalDType(declared), shape); }

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

}  // namespace pagedc
