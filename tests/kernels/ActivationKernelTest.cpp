// The activation kernel against the reference ops silu, gelu (erf and tanh), Relu and gated_act
// (SwiGLU / GeGLU; gated relu as Relu then Mul), plain and gated, under every schedule.
//
// Tolerances: the reference evaluates in double and rounds to f32; the kernel uses f32 expf / erfcf
// (a few ulps each) in forms without cancellation. f32 outputs: silu and relu within 8 ulps; gelu
// within 48 and gelu_tanh within 64, because in the negative tail erfc(z) and exp(-2u) multiply the
// rounding error of their f32 argument by about 2z^2 (25 at x = -5) and 2|u| (17): inherent to an
// f32 evaluation. 1e-30 absolute covers results that underflow. 16-bit outputs within 1 ulp of
// the type. Inputs stay where the double reference itself is accurate to f32 (see checkActivation).
#include <gtest/gtest.h>

#include <random>

#include "../unit/OpTestSupport.h"
#include "OtherKernelsTestSupport.h"
#include "activation.cuh"

using namespace pagedc;
using namespace pagedc::kerneltest;

namespace {

template <class T>
Tolerance activationTolerance(int act) {
  if constexpr (std::is_same_v<T, float>)
    return {act == 1 ? 48.0 : act == 2 ? 64.0 : 8.0, 1e-30};
  else
    return {1, 0};
}

// The reference of activation ACT applied to x (and multiplied by up when given).
std::vector<float> referenceActivation(int act, const std::vector<float>& x, const std::vector<float>* up) {
  const int64_t n = static_cast<int64_t>(x.size());
  Tensor xt = f32Tensor({n}, x);
  static const char* kNames[] = {"silu", "gelu", "gelu_tanh", "relu"};
  if (up && act != 3)
    return floatsOf(test::runOp("gated_act", {xt, f32Tensor({n}, *up)}, {{"activation", kNames[act]}})[0]);
  Tensor y;
  if (act == 0) y = test::runOp("silu", {xt}, {})[0];
  if (act == 1) y = test::runOp("gelu", {xt}, {})[0];
  if (act == 2) y = test::runOp("gelu", {xt}, {{"approximate", "tanh"}})[0];
  if (act == 3) y = test::runOp("Relu", {xt}, {})[0];
  if (up) y = test::runOp("Mul", {y, f32Tensor({n}, *up)}, {})[0];
  return floatsOf(y);
}

template <class T, int ACT, int NUM_THREADS>
void checkActivation(int64_t count, bool gated, unsigned gridOverride, uint32_t seed) {
  SCOPED_TRACE(std::string("T=") + Element<T>::name + " act=" + std::to_string(ACT) + " gated=" + std::to_string(gated) +
               " count=" + std::to_string(count) + " threads=" + std::to_string(NUM_THREADS));
  std::mt19937 rng(seed);
  // Within [-5, 5] the double reference's 1 + erf / 1 + tanh keeps f32 accuracy (below about -6 it
  // cancels to a few correct digits, where the kernel's erfc form is the accurate one).
  std::vector<float> x = randomRounded<T>(rng, count, -5, 5);
  // Exact zeros, tiny values and tails that underflow to zero in both.
  const float special[] = {0.0f, -0.0f, 1e-6f, -1e-6f, 30.0f, -30.0f, -90.0f};
  for (size_t i = 0; i < std::size(special) && i < x.size(); ++i) x[i] = roundTo<T>(special[i]);
  std::vector<float> up = gated ? randomRounded<T>(rng, count, -2, 2) : std::vector<float>{};
  std::vector<float> want = referenceActivation(ACT, x, gated ? &up : nullptr);
  const unsigned grid = gridOverride ? gridOverride : static_cast<unsigned>((count + NUM_THREADS - 1) / NUM_THREADS);
  std::vector<float> first;
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<T> xBuffer(toStorage<T>(x)), upBuffer(toStorage<T>(up)), out(count);
    ActivationParams p{};
    p.out = out.get();
    p.x = xBuffer.get();
    p.up = gated ? upBuffer.get() : nullptr;
    p.count = count;
    emu::launch(activation<T, ACT, NUM_THREADS>, emu::Dim3{grid}, emu::Dim3{NUM_THREADS}, p, options);
    std::vector<float> got = widen(out.read());
    expectClose<T>(got, want, activationTolerance<T>(ACT), "activation output");
    if (first.empty())
      first = got;
    else
      expectSameBits(got, first, "output under another schedule");
  }
}

template <int ACT>
void checkAllTypes(uint32_t seed) {
  checkActivation<float, ACT, 256>(1000, false, 0, seed);
  checkActivation<float, ACT, 64>(777, true, 0, seed + 1);
  checkActivation<f16, ACT, 128>(1000, true, 0, seed + 2);
  checkActivation<bf16, ACT, 64>(333, false, 0, seed + 3);
  checkActivation<bf16, ACT, 64>(1000, true, 3, seed + 4);  // fewer CTAs than elements / threads: grid-stride
}

TEST(ActivationKernel, Silu) { checkAllTypes<0>(100); }
TEST(ActivationKernel, GeluErf) { checkAllTypes<1>(200); }
TEST(ActivationKernel, GeluTanh) { checkAllTypes<2>(300); }
TEST(ActivationKernel, Relu) { checkAllTypes<3>(400); }

TEST(ActivationKernel, InPlaceGated) {
  // out aliases x (SwiGLU writing over its gate half).
  std::mt19937 rng(500);
  const int64_t count = 300;
  std::vector<float> x = randomRounded<bf16>(rng, count, -5, 5), up = randomRounded<bf16>(rng, count, -2, 2);
  std::vector<float> want = referenceActivation(0, x, &up);
  for (const auto& options : schedules()) {
    DeviceArray<bf16> xBuffer(toStorage<bf16>(x)), upBuffer(toStorage<bf16>(up));
    ActivationParams p{xBuffer.get(), xBuffer.get(), upBuffer.get(), count};
    emu::launch(activation<bf16, 0, 64>, emu::Dim3{5}, emu::Dim3{64}, p, options);
    expectClose<bf16>(widen(xBuffer.read()), want, {1, 0}, scheduleName(options));
  }
}

}  // namespace
