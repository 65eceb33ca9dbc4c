// Generic tensor kernels for the graph ops around the fused ones: strided copies (Transpose, Slice,
// Expand, Concat inputs), broadcasting binary arithmetic (Add, Sub, Mul, Div) and dtype casts.
// Semantics: StridedCopyParams, BinaryParams and CastParams in kernel_params.h.
//
// Each is a grid-stride loop over the `count` output elements (grid: ceil(count / NUM_THREADS)
// covers each element once; a smaller grid also works). Strided kernels turn the linear output
// index into a multi-index over shape (last axis fastest) and dot it with each operand's strides.
#pragma once

#include "pagedc_cuda.cuh"

namespace pagedc {

namespace tensor_ops_detail {

constexpr int kAdd = 0;
constexpr int kSub = 1;
constexpr int kMul = 2;
constexpr int kDiv = 3;

template <int OP>
PAGEDC_DEVICE float apply(float a, float b) {
  static_assert(OP >= kAdd && OP <= kDiv, "OP: 0 add, 1 sub, 2 mul, 3 div");
  if (OP == kAdd) return a + b;
  if (OP == kSub) return a - b;
  if (OP == kMul) return a * b;
  return a / b;
}

template <int NUM_THREADS>
PAGEDC_DEVICE i64 grid_start() { return static_cast<i64>(blockIdx.x) * NUM_THREADS + threadIdx.x; }
template <int NUM_THREADS>
PAGEDC_DEVICE i64 grid_stride() { return static_cast<i64>(gridDim.x) * NUM_THREADS; }

}  // namespace tensor_ops_detail

template <typename T, int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) strided_copy(StridedCopyParams p) {
  const T* in = static_cast<const T*>(p.in);
  T* out = static_cast<T*>(p.out);
  for (i64 i = tensor_ops_detail::grid_start<NUM_THREADS>(); i < p.count; i += tensor_ops_detail::grid_stride<NUM_THREADS>()) {
    i64 rest = i, in_at = p.in_offset, out_at = p.out_offset;
    for (int axis = kMaxCopyRank - 1; axis >= 0; --axis) {
      if (axis >= p.rank) continue;
      const i64 index = rest % p.shape[axis];
      rest /= p.shape[axis];
      in_at += index * p.in_strides[axis];
      out_at += index * p.out_strides[axis];
    }
    out[out_at] = in[in_at];
  }
}

template <typename T, int OP, int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) elementwise_binary(BinaryParams p) {
  const T* a = static_cast<const T*>(p.a);
  const T* b = static_cast<const T*>(p.b);
  T* out = static_cast<T*>(p.out);
  for (i64 i = tensor_ops_detail::grid_start<NUM_THREADS>(); i < p.count; i += tensor_ops_detail::grid_stride<NUM_THREADS>()) {
    i64 rest = i, a_at = 0, b_at = 0;
    for (int axis = kMaxCopyRank - 1; axis >= 0; --axis) {
      if (axis >= p.rank) continue;
      const i64 index = rest % p.shape[axis];
      rest /= p.shape[axis];
      a_at += index * p.a_strides[axis];
      b_at += index * p.b_strides[axis];
    }
    out[i] = from_float<T>(tensor_ops_detail::apply<OP>(to_float(a[a_at]), to_float(b[b_at])));
  }
}

template <typename TI, typename TO, int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) cast(CastParams p) {
  const TI* in = static_cast<const TI*>(p.in);
  TO* out = static_cast<TO*>(p.out);
  for (i64 i = tensor_ops_detail::grid_start<NUM_THREADS>(); i < p.count; i += tensor_ops_detail::grid_stride<NUM_THREADS>())
    out[i] = from_float<TO>(to_float(in[i]));
}

}  // namespace pagedc
