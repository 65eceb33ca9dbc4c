// Normalization ops: hand-checkable values and symbolic shape rules.
#include <gtest/gtest.h>

#include <cmath>

#include "OpTestSupport.h"
#include "ir/Error.h"

using namespace pagedc;
using namespace pagedc::test;

TEST(RMSNormalization, ConstantVectorNormalizesToScale) {
  // mean(x^2) = 9, so x / sqrt(9 + eps) = 1 for every element (with eps = 0).
  auto out = runOp("RMSNormalization", {f32({1, 4}, {3, 3, 3, 3}), f32({4}, {1, 2, 3, 4})}, {{"epsilon", 0.0}});
  expectNear(out[0], {1, 2, 3, 4});
  out = runOp("RMSNormalization", {f32({1, 4}, {-3, -3, -3, -3}), f32({4}, {1, 1, 1, 1})}, {});
  float expected = static_cast<float>(-3.0 / std::sqrt(9.0 + 1e-5));
  expectNear(out[0], {expected, expected, expected, expected});
}

TEST(RMSNormalization, AxisCoversTrailingDimensions) {
  // axis 1 of [1, 2, 2]: one row of four values {1, 1, 1, 1} * {1, -1, 7, 7} -> rms = sqrt(mean(1, 1, 49, 49)) = 5.
  auto out = runOp("RMSNormalization", {f32({1, 2, 2}, {1, -1, 7, 7}), f32({2, 2}, {1, 1, 1, 1})}, {{"axis", 1}, {"epsilon", 0.0}});
  expectNear(out[0], {0.2f, -0.2f, 1.4f, 1.4f});
}

TEST(LayerNormalization, MeanAndInvStdDevPerRow) {
  // Row {1, 2, 3, 4}: mean 2.5, variance 1.25. Row {2, 2, 2, 2}: mean 2, variance 0.
  auto out = runOp("LayerNormalization", {f32({2, 4}, {1, 2, 3, 4, 2, 2, 2, 2}), f32({4}, {1, 1, 2, 2}), f32({4}, {0, 0, 0, 1})},
                   {{"epsilon", 0.25}}, 3);
  float inv = static_cast<float>(1.0 / std::sqrt(1.25 + 0.25));
  expectNear(out[0], {-1.5f * inv, -0.5f * inv, 2 * 0.5f * inv, 2 * 1.5f * inv + 1, 0, 0, 0, 1});
  EXPECT_EQ(out[1].shape(), (std::vector<int64_t>{2, 1}));
  expectNear(out[1], {2.5f, 2.0f});
  expectNear(out[2], {inv, 2.0f});  // 1 / sqrt(0 + 0.25)
}

TEST(LayerNormalization, ScaleBroadcastsOverNormalizedAxes) {
  // axis 1 of [1, 2, 2] normalizes all four values {0, 2, 4, 6}: mean 3, variance 5.
  auto out = runOp("LayerNormalization", {f32({1, 2, 2}, {0, 2, 4, 6}), f32({2, 1}, {1, 10})}, {{"axis", 1}, {"epsilon", 0.0}});
  float inv = static_cast<float>(1.0 / std::sqrt(5.0));
  expectNear(out[0], {-3 * inv, -1 * inv, 10 * inv, 30 * inv});
}

TEST(SimplifiedLayerNormalization, ReturnsInvStdVar) {
  auto out = runOp("SimplifiedLayerNormalization", {f32({2, 2}, {3, 4, 0, 2}), f32({2}, {1, 2})}, {{"epsilon", 0.0}}, 2);
  // Row {3, 4}: mean square 12.5. Row {0, 2}: mean square 2.
  float a = static_cast<float>(1 / std::sqrt(12.5)), b = static_cast<float>(1 / std::sqrt(2.0));
  expectNear(out[0], {3 * a, 8 * a, 0, 4 * b});
  expectNear(out[1], {a, b});
}

TEST(SkipSimplifiedLayerNormalization, NormalizesResidualSum) {
  Tensor input = f32({1, 2, 2}, {1, 2, 3, 4});
  Tensor skip = f32({1, 2, 2}, {2, 2, -3, -4});
  Tensor gamma = f32({2}, {1, 1});
  Tensor bias = f32({2}, {0, 2});
  auto out = runOp("com.microsoft.SkipSimplifiedLayerNormalization", {input, skip, gamma, bias}, {{"epsilon", 0.0}}, 4);
  // Sums: {3, 6} and {0, 2}.
  expectNear(out[3], {3, 6, 0, 2});
  float a = static_cast<float>(1 / std::sqrt(22.5)), b = static_cast<float>(1 / std::sqrt(2.0));
  expectNear(out[0], {3 * a, 6 * a, 0, 2 * b});
  expectNear(out[2], {a, b});
  EXPECT_EQ(out[2].shape(), (std::vector<int64_t>{1, 2, 1}));
}

TEST(SkipLayerNormalization, SkipBroadcastsOverBatchAndBetaShifts) {
  Tensor input = f32({2, 1, 2}, {1, 3, 5, 5});
  Tensor skip = f32({1, 2}, {1, -1});  // (sequence_length, hidden_size) form
  auto out = runOp("com.microsoft.SkipLayerNormalization", {input, skip, f32({2}, {2, 2}), f32({2}, {1, 1})}, {{"epsilon", 1.0}}, 4);
  // Sums {2, 2} (mean 2, variance 0) and {6, 4} (mean 5, variance 1); epsilon 1.
  expectNear(out[3], {2, 2, 6, 4});
  float inv = static_cast<float>(1 / std::sqrt(2.0));
  expectNear(out[0], {1, 1, 2 * inv + 1, -2 * inv + 1});
  expectNear(out[1], {2, 5});
  expectNear(out[2], {1, inv});
}

TEST(NormalizationShapes, SymbolicStatistics) {
  auto types = inferredTypes(R"(
graph @main(%x: f32[batch, seq, 64], %s: f32[64], %b: f16[batch, seq, 64], %sk: f16[seq, 64], %g: f16[64]) {
  %y, %mean, %inv = LayerNormalization(%x, %s) {axis = 1} : f32[*], f32[*], f32[*]
  %r = RMSNormalization(%x, %s) : f32[*]
  %o, %m2, %i2, %sum = com.microsoft.SkipSimplifiedLayerNormalization(%b, %sk, %g) {epsilon = 0.000001} : f16[*], f32[*], f32[*], f16[*]
  return %y, %mean, %inv, %r, %o, %m2, %i2, %sum
}
)",
                              {"y", "mean", "inv", "r", "o", "i2", "sum"});
  EXPECT_EQ(types, (std::vector<std::string>{"f32[batch, seq, 64]", "f32[batch, 1, 1]", "f32[batch, 1, 1]", "f32[batch, seq, 64]",
                                             "f16[batch, seq, 64]", "f32[batch, seq, 1]", "f16[batch, seq, 64]"}));
}

TEST(NormalizationShapes, RejectsBadOperands) {
  EXPECT_THROW(inferredTypes(R"(
graph @main(%x: f32[batch, 64], %s: f32[32]) {
  %y = LayerNormalization(%x, %s) : f32[*]
  return %y
})",
                             {"y"}),
               Error);
  EXPECT_THROW(inferredTypes(R"(
graph @main(%x: f32[batch, 64], %s: f32[64]) {
  %y, %m = LayerNormalization(%x, %s) {stash_type = 7} : f32[*], f32[*]
  return %y
})",
                             {"y"}),
               Error);
  EXPECT_THROW(inferredTypes(R"(
graph @main(%x: f32[batch, 64], %s: f32[64]) {
  %y = RMSNormalization(%x, %s) {axis = 2} : f32[*]
  return %y
})",
                             {"y"}),
               Error);
}
