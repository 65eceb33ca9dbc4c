// com.microsoft Gelu-family activations on known values.
#include <gtest/gtest.h>

#include <cmath>

#include "OpTestSupport.h"

using namespace pagedc;
using namespace pagedc::test;

TEST(GeluContribOps, KnownValues) {
  // Exact Gelu(1) = Phi(1) = 0.8413447; the tanh form gives 0.8411920.
  auto exact = runOp("com.microsoft.BiasGelu", {f32({1, 2}, {0.5f, -3.0f}), f32({2}, {0.5f, 3.0f})}, {});
  expectNear(exact[0], {0.8413447f, 0.0f});
  auto fast = runOp("com.microsoft.FastGelu", {f32({2}, {1.0f, 0.0f})}, {});
  expectNear(fast[0], {0.8411920f, 0.0f});
  auto quick = runOp("com.microsoft.QuickGelu", {f32({2}, {2.0f, -1.0f})}, {{"alpha", 1.0}});
  expectNear(quick[0], {static_cast<float>(2 / (1 + std::exp(-2.0))), static_cast<float>(-1 / (1 + std::exp(1.0)))});
}
