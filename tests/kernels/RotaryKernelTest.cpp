// The rope kernel against the reference ops: the fused rope ([batch, heads, seq, head_dim]), ONNX
// RotaryEmbedding (3-D token-major and 4-D, with position ids or per-token caches) and
// com.microsoft.RotaryEmbedding (a start position), in both pair forms and with partial rotation.
//
// Tolerances: the reference rotates in f32 with the kernel's formula, so the emulated kernel agrees
// exactly; 2 ulps + 1e-6 for f32 (1 ulp for 16-bit types) leave room for the GPU contracting the
// products into fused multiply-adds.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "../unit/OpTestSupport.h"
#include "OtherKernelsTestSupport.h"
#include "rotary.cuh"

using namespace pagedc;
using namespace pagedc::kerneltest;

namespace {

template <class T>
Tolerance ropeTolerance() {
  if constexpr (std::is_same_v<T, float>)
    return {2, 1e-6};
  else
    return {1, 0};
}

// cos/sin tables [rows, half] of angles position * base^(-i / half).
struct Tables {
  std::vector<float> cos, sin;
};
Tables makeTables(int64_t rows, int64_t half) {
  Tables t;
  for (int64_t p = 0; p < rows; ++p)
    for (int64_t i = 0; i < half; ++i) {
      double angle = static_cast<double>(p) * std::pow(100.0, -static_cast<double>(i) / static_cast<double>(half)) + 0.1;
      t.cos.push_back(static_cast<float>(std::cos(angle)));
      t.sin.push_back(static_cast<float>(std::sin(angle)));
    }
  return t;
}

// Where the heads of x live, as RopeParams strides.
struct RopeLayout {
  int64_t batch, seq, heads, headDim, rotaryDim;
  int64_t batchStride, seqStride, headStride;
  int64_t positionsBatchStride;
  int64_t size() const { return batch * seq * heads * headDim; }
};
RopeLayout headMajor(int64_t batch, int64_t heads, int64_t seq, int64_t headDim, int64_t rotaryDim, bool sharedPositions) {
  return {batch, seq, heads, headDim, rotaryDim, heads * seq * headDim, headDim, seq * headDim, sharedPositions ? 0 : seq};
}
RopeLayout tokenMajor(int64_t batch, int64_t seq, int64_t heads, int64_t headDim, int64_t rotaryDim) {
  return {batch, seq, heads, headDim, rotaryDim, seq * heads * headDim, heads * headDim, headDim, seq};
}

// Runs the kernel under every schedule (checking they agree bitwise) and returns the output;
// inPlace makes out alias x.
template <class T, bool INTERLEAVED, int NUM_THREADS>
std::vector<float> runRope(const RopeLayout& l, const std::vector<float>& x, const std::vector<int64_t>& positions, const Tables& tables,
                           int64_t maxPositions, bool inPlace = false) {
  std::vector<float> first;
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<T> xBuffer(toStorage<T>(x)), outBuffer(inPlace ? 0 : x.size());
    DeviceArray<i64> positionBuffer(positions);
    DeviceArray<float> cosBuffer(tables.cos), sinBuffer(tables.sin);
    RopeParams p{};
    p.out = inPlace ? xBuffer.get() : outBuffer.get();
    p.x = xBuffer.get();
    p.positions = positionBuffer.get();
    p.cos_table = cosBuffer.get();
    p.sin_table = sinBuffer.get();
    p.batch = l.batch;
    p.seq = l.seq;
    p.heads = l.heads;
    p.head_dim = l.headDim;
    p.rotary_dim = l.rotaryDim;
    p.batch_stride = l.batchStride;
    p.seq_stride = l.seqStride;
    p.head_stride = l.headStride;
    p.positions_batch_stride = l.positionsBatchStride;
    p.max_positions = maxPositions;
    emu::launch(rope<T, INTERLEAVED, NUM_THREADS>, emu::Dim3{static_cast<unsigned>(l.batch * l.seq)}, emu::Dim3{NUM_THREADS}, p, options);
    std::vector<float> got = widen(inPlace ? xBuffer.read() : outBuffer.read());
    if (first.empty())
      first = got;
    else
      expectSameBits(got, first, "output under another schedule");
  }
  return first;
}

std::vector<int64_t> randomPositions(std::mt19937& rng, size_t n, int64_t maxPositions) {
  std::uniform_int_distribution<int64_t> dist(0, maxPositions - 1);
  std::vector<int64_t> out(n);
  for (auto& p : out) p = dist(rng);
  return out;
}

template <class T, bool INTERLEAVED, int NUM_THREADS>
void checkFusedRope(int64_t batch, int64_t heads, int64_t seq, int64_t headDim, int64_t rotaryDim, bool sharedPositions, bool inPlace,
                    uint32_t seed) {
  SCOPED_TRACE(std::string("rope T=") + Element<T>::name + " interleaved=" + std::to_string(INTERLEAVED) + " head_dim=" +
               std::to_string(headDim) + " rotary_dim=" + std::to_string(rotaryDim) + " shared=" + std::to_string(sharedPositions) +
               " in_place=" + std::to_string(inPlace));
  std::mt19937 rng(seed);
  const int64_t maxPositions = 50;
  RopeLayout l = headMajor(batch, heads, seq, headDim, rotaryDim, sharedPositions);
  std::vector<float> x = randomRounded<T>(rng, l.size(), -2, 2);
  const int64_t positionRows = sharedPositions ? 1 : batch;
  std::vector<int64_t> positions = randomPositions(rng, positionRows * seq, maxPositions);
  Tables tables = makeTables(maxPositions, rotaryDim / 2);
  auto reference = test::runOp("rope",
                               {f32Tensor({batch, heads, seq, headDim}, x), i64Tensor({positionRows, seq}, positions),
                                f32Tensor({maxPositions, rotaryDim / 2}, tables.cos), f32Tensor({maxPositions, rotaryDim / 2}, tables.sin)},
                               {{"interleaved", INTERLEAVED ? 1 : 0}, {"rotary_dim", rotaryDim}});
  expectClose<T>(runRope<T, INTERLEAVED, NUM_THREADS>(l, x, positions, tables, maxPositions, inPlace), floatsOf(reference[0]),
                 ropeTolerance<T>(), "rope output");
}

TEST(RopeKernel, FusedOpHalvesAndInterleavedPairs) {
  checkFusedRope<float, false, 64>(2, 3, 5, 16, 16, false, false, 1);
  checkFusedRope<float, true, 64>(2, 3, 5, 16, 16, false, false, 2);
  checkFusedRope<f16, false, 128>(2, 4, 3, 64, 64, true, false, 3);
  checkFusedRope<bf16, true, 64>(1, 5, 7, 32, 32, false, true, 4);
}

TEST(RopeKernel, FusedOpPartialRotaryDim) {
  // Only the first rotary_dim elements rotate; the rest are copied (also when out is a new buffer).
  checkFusedRope<float, false, 64>(2, 3, 4, 24, 8, false, false, 5);
  checkFusedRope<bf16, true, 64>(2, 2, 3, 80, 20, true, false, 6);
  checkFusedRope<f16, false, 256>(1, 6, 2, 96, 48, false, true, 7);
}

// ONNX RotaryEmbedding on a 3-D [batch, seq, heads * head] input: token-major strides.
template <class T, bool INTERLEAVED, int NUM_THREADS>
void checkOnnxTokenMajor(int64_t batch, int64_t seq, int64_t heads, int64_t headDim, int64_t rotaryDim, uint32_t seed) {
  SCOPED_TRACE(std::string("RotaryEmbedding 3-D T=") + Element<T>::name + " interleaved=" + std::to_string(INTERLEAVED) +
               " rotary_dim=" + std::to_string(rotaryDim));
  std::mt19937 rng(seed);
  const int64_t maxPositions = 40;
  RopeLayout l = tokenMajor(batch, seq, heads, headDim, rotaryDim);
  std::vector<float> x = randomRounded<T>(rng, l.size(), -2, 2);
  std::vector<int64_t> positions = randomPositions(rng, batch * seq, maxPositions);
  Tables tables = makeTables(maxPositions, rotaryDim / 2);
  auto reference = test::runOp("RotaryEmbedding",
                               {f32Tensor({batch, seq, heads * headDim}, x), f32Tensor({maxPositions, rotaryDim / 2}, tables.cos),
                                f32Tensor({maxPositions, rotaryDim / 2}, tables.sin), i64Tensor({batch, seq}, positions)},
                               {{"interleaved", INTERLEAVED ? 1 : 0}, {"num_heads", heads}, {"rotary_embedding_dim", rotaryDim}});
  expectClose<T>(runRope<T, INTERLEAVED, NUM_THREADS>(l, x, positions, tables, maxPositions), floatsOf(reference[0]), ropeTolerance<T>(),
                 "token-major output");
}

TEST(RopeKernel, OnnxRotaryEmbeddingTokenMajor) {
  checkOnnxTokenMajor<float, false, 64>(2, 5, 3, 16, 16, 11);
  checkOnnxTokenMajor<bf16, true, 128>(3, 2, 4, 32, 16, 12);
  checkOnnxTokenMajor<f16, false, 64>(1, 9, 2, 40, 40, 13);
}

TEST(RopeKernel, OnnxRotaryEmbeddingPerTokenCaches) {
  // Without position_ids the caches are [batch, seq, rot/2]: token (b, s) reads row b * seq + s,
  // i.e. positions b * seq + s with positions_batch_stride seq.
  std::mt19937 rng(14);
  const int64_t batch = 2, heads = 3, seq = 4, headDim = 16;
  RopeLayout l = headMajor(batch, heads, seq, headDim, headDim, false);
  std::vector<float> x = randomRounded<float>(rng, l.size(), -2, 2);
  Tables tables = makeTables(batch * seq, headDim / 2);
  auto reference = test::runOp("RotaryEmbedding",
                               {f32Tensor({batch, heads, seq, headDim}, x), f32Tensor({batch, seq, headDim / 2}, tables.cos),
                                f32Tensor({batch, seq, headDim / 2}, tables.sin)},
                               {{"interleaved", 1}});
  std::vector<int64_t> positions(batch * seq);
  for (int64_t i = 0; i < batch * seq; ++i) positions[i] = i;
  expectClose<float>(runRope<float, true, 64>(l, x, positions, tables, batch * seq), floatsOf(reference[0]), ropeTolerance<float>(),
                     "per-token caches");
}

TEST(RopeKernel, ContribRotaryEmbeddingStartPosition) {
  // position_ids [1] = p0: token s is at p0 + s for every batch row: shared positions.
  std::mt19937 rng(15);
  const int64_t batch = 2, heads = 2, seq = 5, headDim = 32, p0 = 7, maxPositions = 20;
  RopeLayout l = tokenMajor(batch, seq, heads, headDim, headDim);
  l.positionsBatchStride = 0;
  std::vector<float> x = randomRounded<bf16>(rng, l.size(), -2, 2);
  Tables tables = makeTables(maxPositions, headDim / 2);
  auto reference = test::runOp("com.microsoft.RotaryEmbedding",
                               {f32Tensor({batch, seq, heads * headDim}, x), i64Tensor({1}, {p0}), f32Tensor({maxPositions, headDim / 2}, tables.cos),
                                f32Tensor({maxPositions, headDim / 2}, tables.sin)},
                               {{"num_heads", heads}});
  std::vector<int64_t> positions(seq);
  for (int64_t s = 0; s < seq; ++s) positions[s] = p0 + s;
  expectClose<bf16>(runRope<bf16, false, 64>(l, x, positions, tables, maxPositions), floatsOf(reference[0]), ropeTolerance<bf16>(),
                    "start-position form");
}

TEST(RopeKernel, PositionOutsideTablesLeavesHeadUnchanged) {
  std::mt19937 rng(16);
  const int64_t batch = 2, heads = 3, seq = 4, headDim = 16, rotaryDim = 12, maxPositions = 10;
  RopeLayout l = headMajor(batch, heads, seq, headDim, rotaryDim, false);
  std::vector<float> x = randomRounded<f16>(rng, l.size(), -2, 2);
  std::vector<int64_t> positions = randomPositions(rng, batch * seq, maxPositions);
  positions[1] = -1;
  positions[6] = maxPositions;
  positions[7] = 1000;
  Tables tables = makeTables(maxPositions, rotaryDim / 2);
  // Reference: the valid tokens rotated, the others copied.
  std::vector<int64_t> clamped = positions;
  for (auto& p : clamped) p = (p < 0 || p >= maxPositions) ? 0 : p;
  auto reference = test::runOp("rope",
                               {f32Tensor({batch, heads, seq, headDim}, x), i64Tensor({batch, seq}, clamped),
                                f32Tensor({maxPositions, rotaryDim / 2}, tables.cos), f32Tensor({maxPositions, rotaryDim / 2}, tables.sin)},
                               {{"rotary_dim", rotaryDim}});
  std::vector<float> expected = floatsOf(reference[0]);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s) {
      if (positions[b * seq + s] == clamped[b * seq + s]) continue;
      for (int64_t n = 0; n < heads; ++n)
        for (int64_t d = 0; d < headDim; ++d) {
          int64_t at = ((b * heads + n) * seq + s) * headDim + d;
          expected[at] = x[at];
        }
    }
  for (bool inPlace : {false, true})
    expectClose<f16>(runRope<f16, false, 64>(l, x, positions, tables, maxPositions, inPlace), expected, ropeTolerance<f16>(),
                     inPlace ? "in place" : "out of place");
}

}  // namespace
