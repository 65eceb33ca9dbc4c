// rms_norm and layer_norm kernels against the reference ops rms_norm / layer_norm (double
// statistics), with and without the fused residual, bias and sum output, under every schedule.
//
// Tolerances: 16-bit outputs within 1 ulp of the type (the f32 kernel and the double reference
// round the same value, differing only when it lies within f32 error of a rounding boundary); f32
// outputs within 64 ulps + 1e-6 absolute: the kernel's f32 statistics (per-thread sums, then a
// tree) differ from the double ones by a few f32 ulps of the sums, which the normalisation scales
// into a few ulps of each output, and layer norm's centring loses bits where s ~ mean.
#include <gtest/gtest.h>

#include <random>

#include "../unit/OpTestSupport.h"
#include "OtherKernelsTestSupport.h"
#include "normalization.cuh"

using namespace pagedc;
using namespace pagedc::kerneltest;

namespace {

template <class T>
Tolerance normTolerance() {
  if constexpr (std::is_same_v<T, float>)
    return {64, 1e-6};
  else
    return {1, 0};
}

struct NormCase {
  int64_t rows, hidden;
  bool residual, bias, sumOut;
  float epsilon;
};

template <class T, int NUM_THREADS, bool LAYER>
void checkNorm(const NormCase& c, uint32_t seed) {
  SCOPED_TRACE(std::string(LAYER ? "layer_norm" : "rms_norm") + " T=" + Element<T>::name + " threads=" + std::to_string(NUM_THREADS) +
               " hidden=" + std::to_string(c.hidden) + " residual=" + std::to_string(c.residual) + " bias=" + std::to_string(c.bias) +
               " sum_out=" + std::to_string(c.sumOut));
  std::mt19937 rng(seed);
  const int64_t n = c.rows * c.hidden;
  // An offset keeps layer norm's mean away from zero, so centring is exercised.
  std::vector<float> x = randomRounded<T>(rng, n, -2.0f + (LAYER ? 1.5f : 0.0f), 2.0f + (LAYER ? 1.5f : 0.0f));
  std::vector<float> residual = c.residual ? randomRounded<T>(rng, n, -1, 1) : std::vector<float>{};
  std::vector<float> weight = randomRounded<T>(rng, c.hidden, 0.5f, 1.5f);
  std::vector<float> bias = c.bias ? randomRounded<T>(rng, c.hidden, -0.5f, 0.5f) : std::vector<float>{};

  std::vector<Tensor> operands = {f32Tensor({c.rows, c.hidden}, x), f32Tensor({c.hidden}, weight)};
  if (LAYER) operands.push_back(c.bias ? f32Tensor({c.hidden}, bias) : Tensor());
  operands.push_back(c.residual ? f32Tensor({c.rows, c.hidden}, residual) : Tensor());
  const bool referenceSum = c.residual && c.sumOut;
  auto reference = test::runOp(LAYER ? "layer_norm" : "rms_norm", operands, {{"epsilon", static_cast<double>(c.epsilon)}}, referenceSum ? 2 : 1);
  // The sum output without a residual is x itself.
  std::vector<float> expectedSum;
  if (c.sumOut) {
    expectedSum = c.residual ? floatsOf(reference[1]) : x;
    for (float& v : expectedSum) v = roundTo<T>(v);
  }

  std::vector<float> firstOut;
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<T> xIn(toStorage<T>(x)), residualIn(toStorage<T>(residual)), weightIn(toStorage<T>(weight)), biasIn(toStorage<T>(bias));
    DeviceArray<T> out(n), sumOut(c.sumOut ? n : 0);
    NormParams p{};
    p.out = out.get();
    p.sum_out = c.sumOut ? sumOut.get() : nullptr;
    p.x = xIn.get();
    p.residual = c.residual ? residualIn.get() : nullptr;
    p.weight = weightIn.get();
    p.bias = c.bias ? biasIn.get() : nullptr;
    p.rows = c.rows;
    p.hidden = c.hidden;
    p.epsilon = c.epsilon;
    auto kernel = LAYER ? layer_norm<T, NUM_THREADS> : rms_norm<T, NUM_THREADS>;
    emu::launch(kernel, emu::Dim3{static_cast<unsigned>(c.rows)}, emu::Dim3{NUM_THREADS}, p, options);
    std::vector<float> got = widen(out.read());
    expectClose<T>(got, floatsOf(reference[0]), normTolerance<T>(), "normalised output");
    if (c.sumOut) expectSameBits(widen(sumOut.read()), expectedSum, "sum output");
    // The schedule cannot change a row's arithmetic.
    if (firstOut.empty())
      firstOut = got;
    else
      expectSameBits(got, firstOut, "output under another schedule");
  }
}

template <class T, int NUM_THREADS>
void checkBothNorms(const NormCase& c, uint32_t seed) {
  checkNorm<T, NUM_THREADS, false>(c, seed);
  checkNorm<T, NUM_THREADS, true>(c, seed + 1000);
}

TEST(NormKernels, MatchReferenceAcrossTypesAndSizes) {
  // Hidden sizes below, between and above multiples of the thread count.
  for (int64_t hidden : {1, 7, 100, 1000}) {
    checkBothNorms<float, 64>({3, hidden, false, false, false, 1e-5f}, 1);
    checkBothNorms<f16, 128>({3, hidden, false, false, false, 1e-5f}, 2);
    checkBothNorms<bf16, 64>({3, hidden, false, false, false, 1e-6f}, 3);
  }
  checkBothNorms<f16, 32>({2, 100, true, true, true, 1e-5f}, 11);  // one warp: the smallest block
}

TEST(NormKernels, FusedResidualBiasAndSumOutput) {
  checkBothNorms<float, 256>({4, 300, true, true, true, 1e-5f}, 4);
  checkBothNorms<f16, 64>({5, 257, true, false, true, 1e-5f}, 5);
  checkBothNorms<bf16, 128>({2, 513, true, true, false, 1e-5f}, 6);
  checkBothNorms<bf16, 64>({2, 96, false, true, true, 1e-5f}, 7);  // sum output without a residual: x
}

TEST(NormKernels, LargeHiddenWithManyThreads) {
  checkBothNorms<bf16, 1024>({2, 5000, true, true, true, 1e-5f}, 8);
  checkBothNorms<float, 512>({2, 4099, true, false, true, 1e-5f}, 9);
}

// out may alias x and sum_out may alias residual (the in-place fused add-norm of decoder layers).
TEST(NormKernels, InPlaceOutputAndSum) {
  std::mt19937 rng(10);
  const int64_t rows = 3, hidden = 200;
  std::vector<float> x = randomRounded<bf16>(rng, rows * hidden, -2, 2), residual = randomRounded<bf16>(rng, rows * hidden, -2, 2);
  std::vector<float> weight = randomRounded<bf16>(rng, hidden, 0.5f, 1.5f);
  auto reference = test::runOp("rms_norm", {f32Tensor({rows, hidden}, x), f32Tensor({hidden}, weight), f32Tensor({rows, hidden}, residual)},
                               {{"epsilon", 1e-5}}, 2);
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<bf16> xBuffer(toStorage<bf16>(x)), residualBuffer(toStorage<bf16>(residual)), weightBuffer(toStorage<bf16>(weight));
    NormParams p{};
    p.out = xBuffer.get();
    p.sum_out = residualBuffer.get();
    p.x = xBuffer.get();
    p.residual = residualBuffer.get();
    p.weight = weightBuffer.get();
    p.rows = rows;
    p.hidden = hidden;
    p.epsilon = 1e-5f;
    emu::launch(rms_norm<bf16, 64>, emu::Dim3{static_cast<unsigned>(rows)}, emu::Dim3{64}, p, options);
    expectClose<bf16>(widen(xBuffer.read()), floatsOf(reference[0]), {1, 0}, "in-place output");
    std::vector<float> sum = floatsOf(reference[1]);
    for (float& v : sum) v = roundTo<bf16>(v);
    expectSameBits(widen(residualBuffer.read()), sum, "in-place sum");
  }
}

}  // namespace
