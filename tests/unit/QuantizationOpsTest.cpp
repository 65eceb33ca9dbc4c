// com.microsoft.MatMulNBits: hand-packed weights against the float matmul of their dequantized values.
#include <gtest/gtest.h>

#include "OpTestSupport.h"
#include "ir/Error.h"

using namespace pagedc;
using namespace pagedc::test;

namespace {
Tensor u8(std::vector<int64_t> shape, const std::vector<uint8_t>& values) { return Tensor::fromValues(DType::U8, std::move(shape), values); }

// Packs 4-bit values two per byte, the first in the low nibble.
std::vector<uint8_t> pack4(const std::vector<int>& q) {
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < q.size(); i += 2) bytes.push_back(static_cast<uint8_t>(q[i] | (q[i + 1] << 4)));
  return bytes;
}

// y[n] = sum_k a[k] * (q[n][k] - zp[n]) * scale[n] for one block per row.
std::vector<float> reference(const std::vector<float>& a, const std::vector<std::vector<int>>& q, const std::vector<float>& zp,
                             const std::vector<float>& scale) {
  std::vector<float> y;
  for (size_t n = 0; n < q.size(); ++n) {
    double sum = 0;
    for (size_t k = 0; k < a.size(); ++k) sum += a[k] * (q[n][k] - zp[n]) * scale[n];
    y.push_back(static_cast<float>(sum));
  }
  return y;
}
}  // namespace

TEST(MatMulNBits, FourBitBlockWithDefaultZeroPoint) {
  std::vector<int> row0, row1;
  std::vector<float> a;
  for (int k = 0; k < 16; ++k) {
    row0.push_back(k);
    row1.push_back((k * 7 + 3) % 16);
    a.push_back(static_cast<float>(k % 5) - 2.0f);
  }
  std::vector<uint8_t> packed = pack4(row0);
  for (uint8_t b : pack4(row1)) packed.push_back(b);
  AttrMap attrs{{"K", 16}, {"N", 2}, {"bits", 4}, {"block_size", 16}};
  auto out = runOp("com.microsoft.MatMulNBits", {f32({1, 16}, a), u8({2, 1, 8}, packed), f32({2, 1}, {0.5f, 2.0f})}, attrs);
  expectNear(out[0], reference(a, {row0, row1}, {8, 8}, {0.5f, 2.0f}), 1e-4f);

  // Packed uint8 zero points: one 4-bit value per row (low nibble first).
  out = runOp("com.microsoft.MatMulNBits", {f32({1, 16}, a), u8({2, 1, 8}, packed), f32({2, 1}, {0.5f, 2.0f}), u8({2, 1}, {3, 5})}, attrs);
  expectNear(out[0], reference(a, {row0, row1}, {3, 5}, {0.5f, 2.0f}), 1e-4f);

  // Float zero points, and a bias.
  out = runOp("com.microsoft.MatMulNBits",
              {f32({1, 16}, a), u8({2, 1, 8}, packed), f32({2, 1}, {0.5f, 2.0f}), f32({2, 1}, {7.5f, 0}), Tensor(), f32({2}, {1, -1})}, attrs);
  std::vector<float> expected = reference(a, {row0, row1}, {7.5f, 0}, {0.5f, 2.0f});
  expectNear(out[0], {expected[0] + 1, expected[1] - 1}, 1e-4f);
}

TEST(MatMulNBits, EightBitsSeveralBlocksAndBatchedA) {
  // K = 20 with block 16: two blocks, the second padded; 8-bit values are whole bytes.
  const int64_t k = 20, n = 1;
  std::vector<uint8_t> packed(32, 0);
  std::vector<float> weights(k);
  for (int64_t i = 0; i < k; ++i) {
    packed[i] = static_cast<uint8_t>(100 + 3 * i);
    float scale = i < 16 ? 0.25f : 0.5f;
    weights[i] = static_cast<float>(static_cast<int>(packed[i]) - 128) * scale;
  }
  std::vector<float> a(2 * k);
  for (int64_t i = 0; i < 2 * k; ++i) a[i] = static_cast<float>(i % 3) - 1.0f;
  auto out = runOp("com.microsoft.MatMulNBits", {f32({2, 1, k}, a), u8({n, 2, 16}, packed), f32({n, 2}, {0.25f, 0.5f})},
                   {{"K", k}, {"N", n}, {"bits", 8}, {"block_size", 16}});
  EXPECT_EQ(out[0].shape(), (std::vector<int64_t>{2, 1, 1}));
  for (int64_t r = 0; r < 2; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += a[r * k + i] * weights[i];
    EXPECT_NEAR(out[0].data<float>()[r], sum, 1e-4);
  }
}

TEST(MatMulNBits, SymbolicShapeAndErrors) {
  auto types = inferredTypes(R"(
graph @main(%a: f16[batch, seq, 32], %b: u8[64, 2, 8], %s: f16[64, 2]) {
  %y = com.microsoft.MatMulNBits(%a, %b, %s) {K = 32, N = 64, bits = 4, block_size = 16} : f16[*]
  return %y
})",
                              {"y"});
  EXPECT_EQ(types, (std::vector<std::string>{"f16[batch, seq, 64]"}));
  EXPECT_THROW(inferredTypes(R"(
graph @main(%a: f32[batch, 16], %b: u8[64, 2, 8], %s: f32[64, 2]) {
  %y = com.microsoft.MatMulNBits(%a, %b, %s) {K = 32, N = 64, bits = 4, block_size = 16} : f32[*]
  return %y
})",
                             {"y"}),
               Error);
  EXPECT_THROW(inferredTypes(R"(
graph @main(%a: f32[batch, 32], %b: u8[64, 2, 8], %s: f32[64, 2]) {
  %y = com.microsoft.MatMulNBits(%a, %b, %s) {K = 32, N = 64, bits = 4, block_size = 12} : f32[*]
  return %y
})",
                             {"y"}),
               Error);
}
