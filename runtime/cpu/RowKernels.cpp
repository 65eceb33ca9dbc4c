// Row-wise kernels. Each hot loop is compiled for AVX-512, AVX2 and a baseline, picked at load
// time by the CPU's flags (GCC target_clones), so one binary runs everywhere at full width.
#include "runtime/cpu/RowKernels.h"

#include <cmath>

#include "ir/Error.h"
#include "runtime/cpu/VectorMath.h"

namespace pagedc::cpu {

namespace {

#define PAGEDC_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// Parallelise only when a step has enough work to pay for waking the threads.
constexpr int64_t kParallelElements = 1 << 15;

// s = x (+ residual) is stored in sumOut when given, else recomputed in each pass (the same float
// additions, so the same bits).
PAGEDC_SIMD_CLONES void normalizeRow(const float* x, const float* residual, const float* weight, const float* bias, float* out,
                                     float* sumOut, int64_t hidden, double epsilon, bool subtractMean) {
  const float* s = x;
  if (residual && sumOut) {
    for (int64_t i = 0; i < hidden; ++i) sumOut[i] = x[i] + residual[i];
    s = sumOut;
    residual = nullptr;
  }
  auto at = [&](int64_t i) { return residual ? s[i] + residual[i] : s[i]; };
  // Sums in 8 fixed lanes (the element i goes to lane i % 8) joined by a fixed tree: vectorisable
  // without reassociating anything, so the bits do not depend on the instruction set's width.
  auto laneSum = [&](auto&& term) {
    double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= hidden; i += 8)
      for (int l = 0; l < 8; ++l) lanes[l] += term(i + l);
    for (int l = 0; i < hidden; ++i, ++l) lanes[l] += term(i);
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  };
  double mean = 0;
  if (subtractMean) mean = laneSum([&](int64_t i) { return static_cast<double>(at(i)); }) / static_cast<double>(hidden);
  const double squares = laneSum([&](int64_t i) {
    const double d = at(i) - mean;
    return d * d;
  });
  const double invStd = 1.0 / std::sqrt(squares / static_cast<double>(hidden) + epsilon);
  for (int64_t i = 0; i < hidden; ++i) {
    double value = (at(i) - mean) * invStd * weight[i];
    if (bias) value += bias[i];
    out[i] = static_cast<float>(value);
  }
}

PAGEDC_SIMD_CLONES void siluLoop(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = siluApprox(x[i]);
}
PAGEDC_SIMD_CLONES void geluTanhLoop(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = geluTanhApprox(x[i]);
}
PAGEDC_SIMD_CLONES void reluLoop(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
void geluErfLoop(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
}
PAGEDC_SIMD_CLONES void siluMulLoop(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = siluApprox(gate[i]) * up[i];
}
PAGEDC_SIMD_CLONES void geluTanhMulLoop(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = geluTanhApprox(gate[i]) * up[i];
}
PAGEDC_SIMD_CLONES void reluMulLoop(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = (gate[i] > 0.0f ? gate[i] : 0.0f) * up[i];
}
void geluErfMulLoop(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = 0.5f * gate[i] * (1.0f + std::erf(gate[i] * 0.70710678118654752f)) * up[i];
}

// Runs fn(begin, end) over [0, count) in chunks of whole cache lines; chunk boundaries do not
// change any element's result, as every element is computed on its own.
template <class Fn>
void forChunks(int64_t count, Fn&& fn) {
  constexpr int64_t kChunk = 4096;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (count >= kParallelElements)
  for (int64_t c = 0; c < chunks; ++c) fn(c * kChunk, std::min(count, (c + 1) * kChunk));
}

}  // namespace

void normalize(const NormArgs& a) {
#pragma omp parallel for schedule(static) if (a.rows * a.hidden >= kParallelElements)
  for (int64_t r = 0; r < a.rows; ++r) {
    const int64_t offset = r * a.hidden;
    normalizeRow(a.x + offset, a.residual ? a.residual + offset : nullptr, a.weight, a.bias, a.out + offset,
                 a.sumOut ? a.sumOut + offset : nullptr, a.hidden, a.epsilon, a.subtractMean);
  }
  // Without a residual the sum is x itself.
  if (!a.residual && a.sumOut && a.sumOut != a.x)
    forChunks(a.rows * a.hidden, [&](int64_t b, int64_t e) { std::copy(a.x + b, a.x + e, a.sumOut + b); });
}

void activate(const float* x, float* out, int64_t count, Activation activation) {
  forChunks(count, [&](int64_t b, int64_t e) {
    switch (activation) {
      case Activation::Silu: siluLoop(x + b, out + b, e - b); break;
      case Activation::GeluErf: geluErfLoop(x + b, out + b, e - b); break;
      case Activation::GeluTanh: geluTanhLoop(x + b, out + b, e - b); break;
      case Activation::Relu: reluLoop(x + b, out + b, e - b); break;
    }
  });
}

void gatedActivate(const float* gate, const float* up, float* out, int64_t count, Activation activation) {
  forChunks(count, [&](int64_t b, int64_t e) {
    switch (activation) {
      case Activation::Silu: siluMulLoop(gate + b, up + b, out + b, e - b); break;
      case Activation::GeluErf: geluErfMulLoop(gate + b, up + b, out + b, e - b); break;
      case Activation::GeluTanh: geluTanhMulLoop(gate + b, up + b, out + b, e - b); break;
      case Activation::Relu: reluMulLoop(gate + b, up + b, out + b, e - b); break;
    }
  });
}

void rope(const RopeArgs& a) {
  const int64_t rotaryDim = a.rotaryDim > 0 ? a.rotaryDim : a.headDim;
  const int64_t half = rotaryDim / 2;
  for (int64_t b = 0; b < a.positionsBatch; ++b)
    for (int64_t s = 0; s < a.seq; ++s) {
      const int64_t p = a.positions[b * a.seq + s];
      if (p < 0 || p >= a.maxPositions)
        fail("rope: token ", s, " has position ", p, ", outside the rotary tables' ", a.maxPositions,
             " rows (the model's maximum length)");
    }
  const int64_t rows = a.batch * a.heads * a.seq;
#pragma omp parallel for schedule(static) if (rows * a.headDim >= kParallelElements)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t s = a.tokenMajor ? (row / a.heads) % a.seq : row % a.seq, b = row / (a.heads * a.seq);
    const int64_t p = a.positions[(a.positionsBatch == 1 ? 0 : b) * a.seq + s];
    const float* cos = a.cosTable + p * half;
    const float* sin = a.sinTable + p * half;
    const float* in = a.x + row * a.headDim;
    float* out = a.out + row * a.headDim;
    if (in != out) std::copy(in, in + a.headDim, out);
    for (int64_t i = 0; i < half; ++i) {
      const int64_t first = a.interleaved ? 2 * i : i;
      const int64_t second = a.interleaved ? 2 * i + 1 : i + half;
      const float x1 = out[first], x2 = out[second];
      out[first] = cos[i] * x1 - sin[i] * x2;
      out[second] = sin[i] * x1 + cos[i] * x2;
    }
  }
}

}  // namespace pagedc::cpu
