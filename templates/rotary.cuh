// Rotary position embeddings. Semantics: RopeParams in kernel_params.h; the reference ops are rope
// (ir/ops/FusedOps.cpp: x [batch, heads, seq, head_dim]) and ONNX / com.microsoft RotaryEmbedding
// (ir/ops/RotaryEmbeddingOps.cpp: also the token-major [batch, seq, heads * head_dim]); the strides
// in RopeParams express every one of these layouts.
//
// One CTA per token (grid: batch * seq, token b * seq + s). Each head has rotary_dim / 2 pairs to
// rotate and head_dim - rotary_dim elements to copy; the CTA's threads stride over these
// heads * (head_dim - rotary_dim / 2) work items. A pair is read and written by the same thread,
// so out may alias x.
#pragma once

#include "pagedc_cuda.cuh"

namespace pagedc {

template <typename T, bool INTERLEAVED, int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) rope(RopeParams p) {
  const i64 token = blockIdx.x;
  if (token >= p.batch * p.seq) return;
  const i64 b = token / p.seq, s = token - b * p.seq;
  const i64 position = p.positions[b * p.positions_batch_stride + s];
  const bool rotate = position >= 0 && position < p.max_positions;
  const T* x = static_cast<const T*>(p.x) + b * p.batch_stride + s * p.seq_stride;
  T* out = static_cast<T*>(p.out) + b * p.batch_stride + s * p.seq_stride;
  // Per-token sizes are small: 32-bit index math within the token.
  const int half = static_cast<int>(p.rotary_dim / 2);
  const int rotary_dim = 2 * half;
  const int items_per_head = static_cast<int>(p.head_dim) - half;
  const int items = static_cast<int>(p.heads) * items_per_head;
  const float* cos_row = p.cos_table + (rotate ? position : 0) * half;
  const float* sin_row = p.sin_table + (rotate ? position : 0) * half;
  // Not unrolled: at 1024 threads (64 registers) the unrolled loop spills on sm_90.
#if PAGEDC_GPU
#pragma unroll 1
#endif
  for (int item = threadIdx.x; item < items; item += NUM_THREADS) {
    const int head = item / items_per_head, j = item - head * items_per_head;
    const T* xh = x + head * p.head_stride;
    T* oh = out + head * p.head_stride;
    if (j < half) {
      const int first = INTERLEAVED ? 2 * j : j;
      const int second = INTERLEAVED ? 2 * j + 1 : j + half;
      const float x1 = to_float(xh[first]), x2 = to_float(xh[second]);
      if (rotate) {
        const float c = cos_row[j], sn = sin_row[j];
        oh[first] = from_float<T>(c * x1 - sn * x2);
        oh[second] = from_float<T>(sn * x1 + c * x2);
      } else {
        oh[first] = xh[first];
        oh[second] = xh[second];
      }
    } else {
      const int d = rotary_dim + (j - half);
      oh[d] = xh[d];
    }
  }
}

}  // namespace pagedc
