// Helpers shared by reference implementations and shape rules: strides, broadcasting, axes, dtype checks.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "ir/OpDef.h"

namespace pagedc {

// Row-major strides of a contiguous tensor, in elements.
std::vector<int64_t> contiguousStrides(const std::vector<int64_t>& shape);
int64_t shapeProduct(const std::vector<int64_t>& shape, size_t begin = 0, size_t end = SIZE_MAX);

// Concrete numpy broadcasting of run-time shapes; errors name the op through `ctx`.
std::vector<int64_t> broadcastConcrete(const std::vector<std::vector<int64_t>>& shapes, const EvalContext& ctx);
// Strides with which an operand of `inputShape` is read while iterating over `outputShape`:
// right-aligned, 0 on broadcast (size-1 or missing) dimensions.
std::vector<int64_t> broadcastStrides(const std::vector<int64_t>& inputShape, const std::vector<int64_t>& outputShape);

// Visits every index of `shape` in row-major order, calling fn(linearIndex, offsets) where
// offsets[k] is the element offset of operand k under strides[k]. Offsets are updated
// incrementally, so broadcasting costs no division per element.
template <class Fn>
void forEachIndex(const std::vector<int64_t>& shape, const std::vector<std::vector<int64_t>>& strides, Fn&& fn) {
  int64_t total = shapeProduct(shape);
  if (total == 0) return;
  size_t rank = shape.size();
  size_t numOperands = strides.size();
  std::vector<int64_t> counter(rank, 0);
  std::vector<int64_t> offsets(numOperands, 0);
  for (int64_t linear = 0; linear < total; ++linear) {
    fn(linear, offsets.data());
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

// A tensor split around one axis: outer * axis * inner elements, the axis stride being `inner`.
struct AxisSplit {
  int64_t outer = 1;
  int64_t axis = 1;
  int64_t inner = 1;
};
AxisSplit splitAtAxis(const std::vector<int64_t>& shape, size_t axis);

// Normalises axes against a rank, rejecting duplicates; the result is sorted.
std::vector<int64_t> normalizeAxes(const std::vector<int64_t>& axes, int64_t rank, const Op& op, std::string_view what = "axes");

// Symbolic shape <-> concrete shape.
Shape toShape(const std::vector<int64_t>& dims);

// Operand dtype checks with diagnostics naming the op and the operand.
void requireFloat(const InferContext& ctx, size_t operand);
void requireNumeric(const InferContext& ctx, size_t operand);  // integer or floating, not bool
void requireBool(const InferContext& ctx, size_t operand);
void requireInteger(const InferContext& ctx, size_t operand);
// All present operands in [first, last) share operand `first`'s dtype.
void requireSameDType(const InferContext& ctx, size_t first, size_t last);

// Wraps an integer into the range of an integer dtype (two's complement), as a narrowing cast does.
int64_t wrapToDType(int64_t value, DType type);

// The single value of a 0-D or one-element tensor (a scalar operand such as Clip's min).
double scalarAsDouble(const Tensor& tensor, const EvalContext& ctx, std::string_view what);
int64_t scalarAsInt(const Tensor& tensor, const EvalContext& ctx, std::string_view what);

// An owning tensor in canonical storage: f32 (floating), i64 (integer) or bool for `declared`.
Tensor canonicalZeros(DType declared, const std::vector<int64_t>& shape);

}  // namespace pagedc
