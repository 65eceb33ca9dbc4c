// The CPU backend's data-movement and elementwise kernels: permutations, gathers, concatenation and
// splitting along an axis, and broadcasting binary arithmetic. Shapes arrive as spans (no
// allocation per call); every element is computed on its own, so results are batch invariant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "ir/DType.h"

namespace pagedc::cpu {

inline constexpr size_t kMaxRank = 8;

// dst = transpose(src, perm): dst's axis i is src's axis perm[i]. elementSize bytes per element.
void permute(const std::byte* src, std::byte* dst, size_t elementSize, std::span<const int64_t> srcShape, std::span<const int64_t> perm);

// Gather along an axis: data viewed as [outer, axisSize, inner], out as [outer, numIndices, inner].
// Indices may be negative (counted from the end); one outside [-axisSize, axisSize) throws, naming
// its position and value (`what` says what is gathered, e.g. "token id"). Data elements convert from
// dataType to outType (f32, bf16, f16 -> f32, or identical types).
struct GatherArgs {
  const std::byte* data = nullptr;
  DType dataType = DType::F32;
  const int64_t* indices = nullptr;
  int64_t numIndices = 0;
  std::byte* out = nullptr;
  DType outType = DType::F32;
  int64_t outer = 1, axisSize = 0, inner = 1;
  const char* what = "index";
};
void gather(const GatherArgs& args);

// Copies src [outer, srcAxis, inner] into dst [outer, dstAxis, inner] at axis offset dstOffset
// (concatenation), or, with the roles swapped by the caller, a slice out of src (split).
void copyAxisBlock(const std::byte* src, int64_t srcAxis, int64_t srcOffset, std::byte* dst, int64_t dstAxis, int64_t dstOffset,
                   int64_t count, int64_t outer, int64_t inner, size_t elementSize);

// dst[i0, i1, ...] = src[starts[0] + i0 * steps[0], ...]: a strided window of src (ONNX Slice with
// normalised starts); dstShape gives the window's extent on each axis.
void sliceCopy(const std::byte* src, std::span<const int64_t> srcShape, std::byte* dst, std::span<const int64_t> dstShape,
               std::span<const int64_t> starts, std::span<const int64_t> steps, size_t elementSize);

enum class BinaryOp { Add, Sub, Mul, Div };

// out = a op b with numpy broadcasting to outShape (a and b shapes right-aligned); f32 or i64
// (integer division truncates toward zero, as ONNX's Div on integers; division by zero throws).
void binary(BinaryOp op, DType type, const void* a, std::span<const int64_t> aShape, const void* b, std::span<const int64_t> bShape, void* out,
            std::span<const int64_t> outShape);

}  // namespace pagedc::cpu
