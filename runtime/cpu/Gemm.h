// GEMMs of the CPU backend through oneDNN's matmul: activations [M, K] f32 times a weight [K, N]
// packed once at load (f32, or bf16 where the artifact stores bf16), result [M, N] f32.
//
// Why oneDNN (docs/PERF.md, bench/gemm_libraries.cpp): on this project's machines its brgemm
// kernels are 1.5-5x OpenBLAS's sgemm, it has bf16 kernels (AVX-512-BF16, AMX) chosen at run time
// from the CPU's flags, and with one primitive per M each output row is bitwise independent of M,
// which batch invariance needs (OpenBLAS's sgemm is not: its row 0 changes with M).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/DType.h"

namespace pagedc::cpu {

class GemmContext;

// A weight in the layout oneDNN's kernels read, created once; bf16 weights stay bf16.
class PackedWeight {
public:
  // weight: [K, N] row-major when transposed is false, [N, K] when true; dtype F32 or BF16.
  PackedWeight(GemmContext& context, const void* weight, DType dtype, int64_t k, int64_t n, bool transposed);
  ~PackedWeight();
  PackedWeight(const PackedWeight&) = delete;
  PackedWeight& operator=(const PackedWeight&) = delete;

  int64_t k() const { return k_; }
  int64_t n() const { return n_; }
  DType dtype() const { return dtype_; }
  size_t byteSize() const;

private:
  friend class GemmContext;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t k_, n_;
  DType dtype_;
};

// Owns the oneDNN engine and stream and the primitive cache: one primitive per (M, K, N, dtype) for
// M up to kMaxRowsPerCall (larger M runs in calls of that many rows), created on first use (about
// 0.2 ms each) and kept, so a warm step allocates no buffers.
class GemmContext {
public:
  GemmContext();
  ~GemmContext();
  GemmContext(const GemmContext&) = delete;
  GemmContext& operator=(const GemmContext&) = delete;

  // c[M, N] = a[M, K] * weight. For bf16 weights, a is rounded to bf16 into scratch first
  // (grown as needed, then reused). Rows of a and c are contiguous (leading dimension K and N).
  void multiply(const float* a, int64_t m, const PackedWeight& weight, float* c);

  // The oneDNN implementation that runs for a shape, e.g. "brg:avx512_core_bf16" (for docs and logs).
  std::string implementationName(int64_t m, const PackedWeight& weight);

  static constexpr int64_t kMaxRowsPerCall = 256;

private:
  void multiplyRows(const float* a, int64_t m, const PackedWeight& weight, float* c);

  friend class PackedWeight;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pagedc::cpu
