// Token embedding lookup. Semantics: EmbeddingParams in kernel_params.h; the reference op is
// Gather on axis 0 (which rejects ids the kernel turns into zero rows).
//
// One CTA per token (grid: num_tokens); its threads stride over the hidden elements of the row,
// 16 bytes at a time when the table row, the output row and hidden allow it.
#pragma once

#include "pagedc_cuda.cuh"

namespace pagedc {

namespace embedding_detail {

struct alignas(16) Bytes16 {
  u32 words[4];
};

}  // namespace embedding_detail

template <typename T, int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) embedding(EmbeddingParams p) {
  const i64 token = blockIdx.x;
  if (token >= p.num_tokens) return;
  const i64 id = p.ids[token];
  const i64 hidden = p.hidden;
  T* out = static_cast<T*>(p.out) + token * hidden;
  const bool valid = id >= 0 && id < p.vocab;
  const T* row = static_cast<const T*>(p.table) + (valid ? id : 0) * hidden;
  const i64 row_bytes = hidden * static_cast<i64>(sizeof(T));
  using Bytes16 = embedding_detail::Bytes16;
  if (((reinterpret_cast<u64>(out) | reinterpret_cast<u64>(row) | static_cast<u64>(row_bytes)) & 15) == 0) {
    Bytes16* o = reinterpret_cast<Bytes16*>(out);
    const Bytes16* r = reinterpret_cast<const Bytes16*>(row);
    const Bytes16 zero = {{0, 0, 0, 0}};
    for (i64 i = threadIdx.x; i < row_bytes / 16; i += NUM_THREADS) o[i] = valid ? r[i] : zero;
    return;
  }
  for (i64 i = threadIdx.x; i < hidden; i += NUM_THREADS) out[i] = valid ? row[i] : from_float<T>(0.0f);
}

}  // namespace pagedc
