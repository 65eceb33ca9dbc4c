// Helpers shared by the shape, slicing and indexing op files: known-contents plumbing and index loops.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ir/OpDef.h"

namespace pagedc::shapeops {

// Known integer contents are kept only for small vectors, like Constant's: they exist for shape
// arithmetic, and larger tensors would make type inference slow without helping it.
inline constexpr size_t kMaxKnownInts = 64;

inline std::optional<std::vector<Dim>> smallKnownInts(std::vector<Dim> values) {
  if (values.size() > kMaxKnownInts) return std::nullopt;
  return values;
}

inline std::optional<std::vector<int64_t>> allConstant(const std::vector<Dim>& values) {
  std::vector<int64_t> result;
  for (const Dim& d : values) {
    auto c = d.constant();
    if (!c) return std::nullopt;
    result.push_back(*c);
  }
  return result;
}

inline Shape constantShape(const std::vector<int64_t>& dims) { return Shape(dims.begin(), dims.end()); }

// Row-major strides in elements.
inline std::vector<int64_t> stridesOf(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

// Calls fn(index, linear) for every element of `shape` in row-major order.
template <class Fn>
void forEachIndex(const std::vector<int64_t>& shape, Fn fn) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  std::vector<int64_t> index(shape.size(), 0);
  for (int64_t linear = 0; linear < count; ++linear) {
    fn(static_cast<const std::vector<int64_t>&>(index), linear);
    for (size_t i = shape.size(); i-- > 0;) {
      if (++index[i] < shape[i]) break;
      index[i] = 0;
    }
  }
}

// The rank of operand i, or nullopt when the type does not say (shape rules then give up
// precision rather than fail: the ONNX importer may hand over values of unknown rank).
inline std::optional<size_t> rankOf(const InferContext& ctx, size_t i) {
  const TensorType& type = ctx.operandType(i);
  if (!type.hasRank()) return std::nullopt;
  return type.rank();
}

// The constant length of a 1-D operand (a shape, axes, pads vector), when its type says it.
inline std::optional<int64_t> vectorLength(InferContext& ctx, size_t i, const char* what) {
  const TensorType& type = ctx.operandType(i);
  if (!type.hasRank()) return std::nullopt;
  if (type.rank() != 1) ctx.error(what, " must be 1-D, got ", type.str());
  return type.dim(0).constant();
}

inline void requireIntegerOperand(InferContext& ctx, size_t i, const char* what) {
  DType dtype = ctx.operandType(i).dtype;
  if (dtype != DType::I64 && dtype != DType::I32) ctx.error(what, " must be i64 or i32, got ", dtypeName(dtype));
}

}  // namespace pagedc::shapeops
