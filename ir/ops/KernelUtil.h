// Concrete-shape helpers for the ops' reference implementations: strides, broadcasting, index loops, axes, scalars.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "ir/OpDef.h"

namespace pagedc {

// Row-major strides of a contiguous tensor, in elements.
std::vector<int64_t> contiguousStrides(const std::vector<int64_t>& shape);
int64_t shapeProduct(const std::vector<int64_t>& shape, size_t begin = 0, size_t end = SIZE_MAX);

// Concrete shape -> (constant) symbolic shape.
Shape toShape(const std::vector<int64_t>& dims);

// Concrete numpy broadcasting of run-time shapes; errors name the op through `ctx`.
std::vector<int64_t> broadcastConcrete(const std::vector<std::vector<int64_t>>& shapes, const EvalContext& ctx);
// Strides with which an operand of `inputShape` is read while iterating over `outputShape`:
// right-aligned, 0 on broadcast (size-1 or missing) dimensions.
std::vector<int64_t> broadcastStrides(const std::vector<int64_t>& inputShape, const std::vector<int64_t>& outputShape);

// Maps a flat index of `to` onto the element of a tensor of shape `from` that numpy broadcasting
// reads there (`from` must broadcast to `to`), for random access where forEachIndex does not fit.
class BroadcastIndexer {
public:
  BroadcastIndexer(const std::vector<int64_t>& from, const std::vector<int64_t>& to);
  int64_t operator()(int64_t flatIndex) const;

private:
  std::vector<int64_t> toShape_;
  std::vector<int64_t> fromStrides_;  // broadcastStrides(from, to)
};

namespace detail {
// Row-major walk over `shape`: fn(linear, counter, offsets), where counter is the multi-index and
// offsets[k] the element offset of operand k under strides[k], both updated incrementally.
template <class Fn>
void walkIndices(const std::vector<int64_t>& shape, const std::vector<std::vector<int64_t>>& strides, Fn&& fn) {
  int64_t total = shapeProduct(shape);
  if (total == 0) return;
  size_t rank = shape.size();
  size_t numOperands = strides.size();
  std::vector<int64_t> counter(rank, 0);
  std::vector<int64_t> offsets(numOperands, 0);
  for (int64_t linear = 0; linear < total; ++linear) {
    fn(linear, static_cast<const std::vector<int64_t>&>(counter), offsets.data());
    for (size_t d = rank; d-- > 0;) {
      if (++counter[d] < shape[d]) {
        for (size_t k = 0; k < numOperands; ++k) offsets[k] += strides[k][d];
        break;
      }
      for (size_t k = 0; k < numOperands; ++k) offsets[k] -= strides[k][d] * (shape[d] - 1);
      counter[d] = 0;
    }
  }
}
}  // namespace detail

// Visits every index of `shape` in row-major order, calling fn(linearIndex, offsets) where
// offsets[k] is the element offset of operand k under strides[k]. Offsets are updated
// incrementally, so broadcasting costs no division per element.
template <class Fn>
void forEachIndex(const std::vector<int64_t>& shape, const std::vector<std::vector<int64_t>>& strides, Fn&& fn) {
  detail::walkIndices(shape, strides, [&](int64_t linear, const std::vector<int64_t>&, const int64_t* offsets) { fn(linear, offsets); });
}

// Visits every index of `shape` in row-major order, calling fn(index, linearIndex) with the multi-index.
template <class Fn>
void forEachIndex(const std::vector<int64_t>& shape, Fn&& fn) {
  detail::walkIndices(shape, {}, [&](int64_t linear, const std::vector<int64_t>& index, const int64_t*) { fn(index, linear); });
}

// A tensor split around one axis: outer * axis * inner elements, the axis stride being `inner`.
struct AxisSplit {
  int64_t outer = 1;
  int64_t axis = 1;
  int64_t inner = 1;
};
AxisSplit splitAtAxis(const std::vector<int64_t>& shape, size_t axis);

// Normalises axes against a rank, rejecting duplicates; the result is sorted.
std::vector<int64_t> normalizeAxes(const std::vector<int64_t>& axes, int64_t rank, const Op& op, std::string_view what = "axes");

// Wraps an integer into the range of an integer dtype (two's complement), as a narrowing cast does.
int64_t wrapToDType(int64_t value, DType type);

// The single value of a 0-D or one-element tensor (a scalar operand such as Clip's min).
double scalarAsDouble(const Tensor& tensor, const EvalContext& ctx, std::string_view what);
int64_t scalarAsInt(const Tensor& tensor, const EvalContext& ctx, std::string_view what);

// An owning tensor in canonical storage: f32 (floating), i64 (integer) or bool for `declared`.
Tensor canonicalZeros(DType declared, const std::vector<int64_t>& shape);

// Rotates the first rotaryDim elements of one head vector in place (RoPE): pairs are (i, i + rot/2)
// or, interleaved, (2i, 2i + 1); cos and sin hold rot/2 values.
void rotateHead(float* head, const float* cos, const float* sin, int64_t rotaryDim, bool interleaved);

}  // namespace pagedc
