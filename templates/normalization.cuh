// RMS norm and layer norm over the last axis, with the optional fused residual add. Semantics:
// NormParams in kernel_params.h; the reference ops are rms_norm and layer_norm
// (ir/ops/FusedOps.cpp), which accumulate in double.
//
// One CTA per row (grid: rows); its threads stride over the row, so any hidden size works: 16 bytes
// per access when the pointers are 16-byte aligned and hidden is a multiple of 16 / sizeof(T),
// else one element per access (the row's result then differs in the last bits). The
// statistics are f32: each thread sums its elements in index order, then block_sum adds the
// per-thread sums in a fixed tree, so a row's result does not depend on the other rows or on the
// schedule. Layer norm takes the mean first and then the mean of squared deviations (two passes,
// no E[x^2] - E[x]^2 cancellation). The row is read again in each pass rather than kept in
// registers (it is L1/L2 resident at the sizes models use), and x + residual is recomputed in f32
// each time, so the normalised value is the unrounded sum, as in the reference; sum_out stores
// that sum rounded to T.
#pragma once

#include "pagedc_cuda.cuh"

// The chunk loops stay rolled on the GPU: unrolled, the 16-byte path needs more than the 64
// registers a 1024-thread CTA allows and spills on sm_80.
#if PAGEDC_GPU
#define PAGEDC_NORM_ROLLED_LOOP _Pragma("unroll 1")
#else
#define PAGEDC_NORM_ROLLED_LOOP
#endif

namespace pagedc {

namespace norm_detail {

// N consecutive elements of a row as one access: N == 1 element by element, or 16 bytes (one
// ld/st.v4) when every row pointer is 16-byte aligned and hidden is a multiple of 16 / sizeof(T).
template <typename T>
union alignas(16) Pack16 {
  u32 words[4];
  T values[16 / sizeof(T)];
};

template <typename T, int N>
PAGEDC_DEVICE void load(const T* row, i64 chunk, float (&out)[N]) {
  if constexpr (N == 1) {
    out[0] = to_float(row[chunk]);
  } else {
    const Pack16<T> pack = reinterpret_cast<const Pack16<T>*>(row)[chunk];
    for (int k = 0; k < N; ++k) out[k] = to_float(pack.values[k]);
  }
}

template <typename T, int N>
PAGEDC_DEVICE void store(T* row, i64 chunk, const float (&in)[N]) {
  if constexpr (N == 1) {
    row[chunk] = from_float<T>(in[0]);
  } else {
    Pack16<T> pack;
    for (int k = 0; k < N; ++k) pack.values[k] = from_float<T>(in[k]);
    reinterpret_cast<Pack16<T>*>(row)[chunk] = pack;
  }
}

// Chunk c of the row: x (+ residual), in f32.
template <typename T, int N>
PAGEDC_DEVICE void row_values(const T* x, const T* residual, i64 chunk, float (&s)[N]) {
  load<T, N>(x, chunk, s);
  if (residual) {
    float r[N];
    load<T, N>(residual, chunk, r);
    for (int k = 0; k < N; ++k) s[k] += r[k];
  }
}

// The row's normalisation with accesses of N elements; each thread visits chunks
// threadIdx.x, threadIdx.x + NUM_THREADS, ... and sums its elements in that order.
template <typename T, int NUM_THREADS, bool SUBTRACT_MEAN, int N>
PAGEDC_DEVICE void normalize_row(const NormParams& p, float* scratch) {
  const i64 row = blockIdx.x;
  const i64 hidden = p.hidden, chunks = hidden / N;
  const T* x = static_cast<const T*>(p.x) + row * hidden;
  const T* residual = p.residual ? static_cast<const T*>(p.residual) + row * hidden : nullptr;
  const T* weight = static_cast<const T*>(p.weight);
  const T* bias = SUBTRACT_MEAN && p.bias ? static_cast<const T*>(p.bias) : nullptr;
  T* out = static_cast<T*>(p.out) + row * hidden;
  T* sum_out = p.sum_out ? static_cast<T*>(p.sum_out) + row * hidden : nullptr;
  const float count = static_cast<float>(hidden);

  float mean = 0.0f;
  if (SUBTRACT_MEAN) {
    float partial = 0.0f;
    PAGEDC_NORM_ROLLED_LOOP
    for (i64 c = threadIdx.x; c < chunks; c += NUM_THREADS) {
      float s[N];
      row_values<T, N>(x, residual, c, s);
      for (int k = 0; k < N; ++k) partial += s[k];
    }
    mean = block_sum<NUM_THREADS>(partial, scratch) / count;
  }
  float squares = 0.0f;
  PAGEDC_NORM_ROLLED_LOOP
  for (i64 c = threadIdx.x; c < chunks; c += NUM_THREADS) {
    float s[N];
    row_values<T, N>(x, residual, c, s);
    for (int k = 0; k < N; ++k) squares += (s[k] - mean) * (s[k] - mean);
  }
  // 1 / sqrtf, not rsqrtf: both IEEE-rounded without fast math, where rsqrtf is approximate.
  const float inv_std = 1.0f / sqrtf(block_sum<NUM_THREADS>(squares, scratch) / count + p.epsilon);

  PAGEDC_NORM_ROLLED_LOOP
  for (i64 c = threadIdx.x; c < chunks; c += NUM_THREADS) {
    float s[N], w[N], y[N];
    row_values<T, N>(x, residual, c, s);
    load<T, N>(weight, c, w);
    for (int k = 0; k < N; ++k) y[k] = (s[k] - mean) * inv_std * w[k];
    if (bias) {
      float b[N];
      load<T, N>(bias, c, b);
      for (int k = 0; k < N; ++k) y[k] += b[k];
    }
    store<T, N>(out, c, y);
    if (sum_out) store<T, N>(sum_out, c, s);
  }
}

template <typename T, int NUM_THREADS, bool SUBTRACT_MEAN>
PAGEDC_DEVICE void normalize(const NormParams& p) {
  __shared__ float scratch[NUM_THREADS / kWarpSize];
  if (static_cast<i64>(blockIdx.x) >= p.rows) return;
  constexpr int kPack = 16 / static_cast<int>(sizeof(T));
  const u64 alignment = reinterpret_cast<u64>(p.x) | reinterpret_cast<u64>(p.residual) | reinterpret_cast<u64>(p.weight) |
                        reinterpret_cast<u64>(p.bias) | reinterpret_cast<u64>(p.out) | reinterpret_cast<u64>(p.sum_out);
  // Null pointers are aligned; so is every row when the first is and hidden is a multiple of kPack.
  if (alignment % 16 == 0 && p.hidden % kPack == 0)
    normalize_row<T, NUM_THREADS, SUBTRACT_MEAN, kPack>(p, scratch);
  else
    normalize_row<T, NUM_THREADS, SUBTRACT_MEAN, 1>(p, scratch);
}

}  // namespace norm_detail

// out = (x + residual) / sqrt(mean((x + residual)^2) + epsilon) * weight; grid (rows).
template <typename T, int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) rms_norm(NormParams p) {
  norm_detail::normalize<T, NUM_THREADS, false>(p);
}

// out = (s - mean(s)) / sqrt(var(s) + epsilon) * weight (+ bias), s = x + residual; grid (rows).
template <typename T, int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) layer_norm(NormParams p) {
  norm_detail::normalize<T, NUM_THREADS, true>(p);
}

}  // namespace pagedc
