// Attention-family ops: ONNX Attention, RotaryEmbedding (both domains), com.microsoft
// GroupQueryAttention and MultiHeadAttention, checked on hand-checkable cases and against each other.
#include <gtest/gtest.h>

#include <cmath>

#include "OpTestSupport.h"
#include "ir/Error.h"

using namespace pagedc;
using namespace pagedc::test;

namespace {
Tensor randomTensor(std::vector<int64_t> shape, uint32_t seed) {
  Tensor t = Tensor::zeros(DType::F32, std::move(shape));
  uint32_t state = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < t.numElements(); ++i) {
    state = state * 1664525u + 1013904223u;
    t.mutableData<float>()[i] = static_cast<float>((state >> 8) % 2001) / 1000.0f - 1.0f;
  }
  return t;
}

// [batch, seq, heads * dim] -> [batch, heads, seq, dim]
Tensor toBnsh(const Tensor& bsd, int64_t heads) {
  int64_t b = bsd.shape()[0], s = bsd.shape()[1], d = bsd.shape()[2] / heads;
  Tensor out = Tensor::zeros(DType::F32, {b, heads, s, d});
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < s; ++j)
      for (int64_t n = 0; n < heads; ++n)
        for (int64_t k = 0; k < d; ++k)
          out.mutableData<float>()[((i * heads + n) * s + j) * d + k] = bsd.data<float>()[((i * s + j) * heads + n) * d + k];
  return out;
}

// Repeats each head of a [batch, heads, seq, dim] tensor `times` times (GQA expressed as MHA).
Tensor repeatHeads(const Tensor& bnsh, int64_t times) {
  const auto& s = bnsh.shape();
  Tensor out = Tensor::zeros(DType::F32, {s[0], s[1] * times, s[2], s[3]});
  int64_t block = s[2] * s[3];
  for (int64_t b = 0; b < s[0]; ++b)
    for (int64_t n = 0; n < s[1] * times; ++n)
      std::copy_n(bnsh.data<float>() + (b * s[1] + n / times) * block, block, out.mutableData<float>() + (b * s[1] * times + n) * block);
  return out;
}

// Rows [from, to) of the sequence axis (axis 2 of a 4-D tensor, axis 1 of a 3-D one).
Tensor sliceSeq(const Tensor& t, int64_t from, int64_t to) {
  std::vector<int64_t> shape = t.shape();
  size_t axis = t.rank() == 4 ? 2 : 1;
  int64_t inner = 1;
  for (size_t i = axis + 1; i < shape.size(); ++i) inner *= shape[i];
  int64_t outer = 1;
  for (size_t i = 0; i < axis; ++i) outer *= shape[i];
  int64_t length = shape[axis];
  shape[axis] = to - from;
  Tensor out = Tensor::zeros(DType::F32, shape);
  for (int64_t o = 0; o < outer; ++o)
    std::copy_n(t.data<float>() + (o * length + from) * inner, (to - from) * inner, out.mutableData<float>() + o * (to - from) * inner);
  return out;
}

Tensor scalarI32(int32_t v) { return Tensor::fromValues(DType::I32, {}, std::vector<int32_t>{v}); }
}  // namespace

// ---- ONNX Attention -----------------------------------------------------------------------------

TEST(Attention, SingleKeyReturnsValue) {
  auto out = runOp("Attention", {randomTensor({1, 1, 2, 2}, 1), randomTensor({1, 1, 1, 2}, 2), f32({1, 1, 1, 3}, {4, 5, 6})}, {});
  expectNear(out[0], {4, 5, 6, 4, 5, 6});
}

TEST(Attention, CausalRowsAverageVisibleValues) {
  // Zero keys: every visible key scores the same, so row i averages V[0..i].
  Tensor zeros = Tensor::zeros(DType::F32, {1, 1, 3, 2});
  auto out = runOp("Attention", {randomTensor({1, 1, 3, 2}, 3), zeros, f32({1, 1, 3, 1}, {1, 2, 4})}, {{"is_causal", 1}});
  expectNear(out[0], {1.0f, 1.5f, 7.0f / 3.0f});
}

TEST(Attention, CausalFrontierIsOffsetByPast) {
  // One cached key plus two new ones: query 0 sees keys {0, 1}, query 1 sees all three.
  Tensor q = randomTensor({1, 1, 2, 2}, 4);
  Tensor zeros = Tensor::zeros(DType::F32, {1, 1, 2, 2});
  auto out = runOp("Attention", {q, zeros, f32({1, 1, 2, 1}, {2, 4}), Tensor(), Tensor::zeros(DType::F32, {1, 1, 1, 2}), f32({1, 1, 1, 1}, {0})},
                   {{"is_causal", 1}}, 3);
  expectNear(out[0], {1.0f, 2.0f});
  expectNear(out[2], {0, 2, 4});  // present_value = past then new
}

TEST(Attention, BooleanAndAdditiveMasks) {
  Tensor q = randomTensor({1, 1, 1, 2}, 5);
  Tensor zeros = Tensor::zeros(DType::F32, {1, 1, 2, 2});
  Tensor v = f32({1, 1, 2, 1}, {10, 20});
  Tensor boolMask = Tensor::fromValues(DType::Bool, {2}, std::vector<uint8_t>{0, 1});
  auto out = runOp("Attention", {q, zeros, v, boolMask}, {});
  expectNear(out[0], {20});
  // Additive: weights 1 : 3.
  out = runOp("Attention", {q, zeros, v, f32({1, 2}, {0, std::log(3.0f)})}, {});
  expectNear(out[0], {17.5f});
  // A fully masked row is zero, not NaN.
  out = runOp("Attention", {q, zeros, v, Tensor::fromValues(DType::Bool, {2}, std::vector<uint8_t>{0, 0})}, {});
  expectNear(out[0], {0});
}

TEST(Attention, GroupedHeadsEqualRepeatedHeads) {
  Tensor q = randomTensor({2, 4, 3, 4}, 6), k = randomTensor({2, 2, 3, 4}, 7), v = randomTensor({2, 2, 3, 5}, 8);
  auto grouped = runOp("Attention", {q, k, v}, {{"is_causal", 1}});
  auto repeated = runOp("Attention", {q, repeatHeads(k, 2), repeatHeads(v, 2)}, {{"is_causal", 1}});
  expectTensorsNear(grouped[0], repeated[0]);
}

TEST(Attention, ThreeDimensionalFormMatchesFourDimensional) {
  Tensor q = randomTensor({1, 3, 8}, 9), k = randomTensor({1, 3, 4}, 10), v = randomTensor({1, 3, 6}, 11);
  auto packed = runOp("Attention", {q, k, v}, {{"q_num_heads", 4}, {"kv_num_heads", 2}, {"is_causal", 1}}, 3);
  auto split = runOp("Attention", {toBnsh(q, 4), toBnsh(k, 2), toBnsh(v, 2)}, {{"is_causal", 1}});
  EXPECT_EQ(packed[0].shape(), (std::vector<int64_t>{1, 3, 12}));
  expectTensorsNear(toBnsh(packed[0], 4), split[0]);
  expectTensorsNear(packed[1], toBnsh(k, 2));
}

TEST(Attention, QkOutputModesAndSoftcap) {
  Tensor q = f32({1, 1, 1, 1}, {2}), k = f32({1, 1, 2, 1}, {1, 3}), v = f32({1, 1, 2, 1}, {0, 1});
  auto mode0 = runOp("Attention", {q, k, v}, {{"scale", 1.0}, {"softcap", 4.0}}, 4);
  expectNear(mode0[3], {2, 6});
  auto mode1 = runOp("Attention", {q, k, v}, {{"scale", 1.0}, {"softcap", 4.0}, {"qk_matmul_output_mode", 1}}, 4);
  float c0 = 4 * std::tanh(0.5f), c1 = 4 * std::tanh(1.5f);
  expectNear(mode1[3], {c0, c1});
  auto mode3 = runOp("Attention", {q, k, v}, {{"scale", 1.0}, {"softcap", 4.0}, {"qk_matmul_output_mode", 3}}, 4);
  float p1 = 1 / (1 + std::exp(c0 - c1));
  expectNear(mode3[3], {1 - p1, p1});
  expectNear(mode3[0], {p1});
}

TEST(Attention, SymbolicShapes) {
  auto types = inferredTypes(R"(
graph @main(%q: f32[batch, seq, 64], %k: f32[batch, seq, 32], %v: f32[batch, seq, 32], %pk: f32[batch, 2, past, 16], %pv: f32[batch, 2, past, 16]) {
  %y, %k2, %v2, %qk = Attention(%q, %k, %v, none, %pk, %pv) {is_causal = 1, kv_num_heads = 2, q_num_heads = 4} : f32[*], f32[*], f32[*], f32[*]
  return %y, %k2, %v2, %qk
})",
                              {"y", "k2", "qk"});
  EXPECT_EQ(types, (std::vector<std::string>{"f32[batch, seq, 64]", "f32[batch, 2, past + seq, 16]", "f32[batch, 4, seq, past + seq]"}));
  EXPECT_THROW(inferredTypes(R"(
graph @main(%q: f32[1, 3, 64], %k: f32[1, 3, 48], %v: f32[1, 3, 48]) {
  %y = Attention(%q, %k, %v) {kv_num_heads = 2, q_num_heads = 4} : f32[*]
  return %y
})",
                             {"y"}),
               Error);
}

// ---- RotaryEmbedding ----------------------------------------------------------------------------

namespace {
// cos/sin caches [positions, half] for theta_i = base^(-2i/rot).
std::pair<Tensor, Tensor> ropeCaches(int64_t positions, int64_t half) {
  std::vector<float> c, s;
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t i = 0; i < half; ++i) {
      double theta = std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(2 * half));
      c.push_back(static_cast<float>(std::cos(p * theta)));
      s.push_back(static_cast<float>(std::sin(p * theta)));
    }
  return {f32({positions, half}, c), f32({positions, half}, s)};
}
}  // namespace

TEST(RotaryEmbedding, PositionZeroIsIdentity) {
  auto [cos, sin] = ropeCaches(4, 2);
  Tensor x = randomTensor({1, 2, 1, 4}, 12);
  auto out = runOp("RotaryEmbedding", {x, cos, sin, i64({1, 1}, {0})}, {});
  expectTensorsNear(out[0], x);
}

TEST(RotaryEmbedding, PositionRotatesPairsByAngle) {
  auto [cos, sin] = ropeCaches(8, 2);
  Tensor x = f32({1, 1, 1, 4}, {1, 2, 3, 4});
  const int64_t p = 5;
  double t0 = p * 1.0, t1 = p * std::pow(10000.0, -0.5);
  // Halves: pairs (x0, x2) and (x1, x3).
  auto out = runOp("RotaryEmbedding", {x, cos, sin, i64({1, 1}, {p})}, {});
  expectNear(out[0], {static_cast<float>(1 * std::cos(t0) - 3 * std::sin(t0)), static_cast<float>(2 * std::cos(t1) - 4 * std::sin(t1)),
                      static_cast<float>(1 * std::sin(t0) + 3 * std::cos(t0)), static_cast<float>(2 * std::sin(t1) + 4 * std::cos(t1))});
  // Interleaved: pairs (x0, x1) and (x2, x3).
  out = runOp("RotaryEmbedding", {x, cos, sin, i64({1, 1}, {p})}, {{"interleaved", 1}});
  expectNear(out[0], {static_cast<float>(1 * std::cos(t0) - 2 * std::sin(t0)), static_cast<float>(1 * std::sin(t0) + 2 * std::cos(t0)),
                      static_cast<float>(3 * std::cos(t1) - 4 * std::sin(t1)), static_cast<float>(3 * std::sin(t1) + 4 * std::cos(t1))});
}

TEST(RotaryEmbedding, PartialRotationKeepsTail) {
  auto [cos, sin] = ropeCaches(4, 1);
  Tensor x = f32({1, 1, 1, 4}, {1, 2, 3, 4});
  auto out = runOp("RotaryEmbedding", {x, cos, sin, i64({1, 1}, {1})}, {{"rotary_embedding_dim", 2}});
  expectNear(out[0], {static_cast<float>(std::cos(1.0) - 2 * std::sin(1.0)), static_cast<float>(std::sin(1.0) + 2 * std::cos(1.0)), 3, 4});
}

TEST(RotaryEmbedding, LayoutsAndCacheFormsAgree) {
  auto [cos, sin] = ropeCaches(8, 2);
  Tensor x3 = randomTensor({1, 3, 8}, 13);  // [batch, seq, 2 heads * 4]
  Tensor positions = i64({1, 3}, {2, 5, 7});
  auto from3 = runOp("RotaryEmbedding", {x3, cos, sin, positions}, {{"num_heads", 2}});
  auto from4 = runOp("RotaryEmbedding", {toBnsh(x3, 2), cos, sin, positions}, {});
  expectTensorsNear(toBnsh(from3[0], 2), from4[0]);
  // Without position_ids the caches are per token: [batch, seq, half].
  std::vector<float> c, s;
  for (int64_t p : {2, 5, 7})
    for (int64_t i = 0; i < 2; ++i) {
      c.push_back(cos.data<float>()[p * 2 + i]);
      s.push_back(sin.data<float>()[p * 2 + i]);
    }
  auto gathered = runOp("RotaryEmbedding", {x3, f32({1, 3, 2}, c), f32({1, 3, 2}, s)}, {{"num_heads", 2}});
  expectTensorsNear(gathered[0], from3[0]);
  // onnxruntime's form: (input, position_ids, cos, sin); a [1] position_ids is the first position.
  auto contrib = runOp("com.microsoft.RotaryEmbedding", {x3, positions, cos, sin}, {{"num_heads", 2}});
  expectTensorsNear(contrib[0], from3[0]);
  auto offset = runOp("com.microsoft.RotaryEmbedding", {x3, i64({1}, {2}), cos, sin}, {});
  auto explicitPositions = runOp("RotaryEmbedding", {x3, cos, sin, i64({1, 3}, {2, 3, 4})}, {{"num_heads", 2}});
  expectTensorsNear(offset[0], explicitPositions[0]);
}

// ---- com.microsoft.GroupQueryAttention -----------------------------------------------------------

TEST(GroupQueryAttention, PrefillEqualsCausalAttention) {
  Tensor q = randomTensor({1, 3, 8}, 20), k = randomTensor({1, 3, 4}, 21), v = randomTensor({1, 3, 4}, 22);
  auto gqa = runOp("com.microsoft.GroupQueryAttention", {q, k, v, Tensor(), Tensor(), i32({1}, {2}), scalarI32(3)},
                   {{"num_heads", 4}, {"kv_num_heads", 2}}, 3);
  auto reference = runOp("Attention", {q, k, v}, {{"q_num_heads", 4}, {"kv_num_heads", 2}, {"is_causal", 1}}, 3);
  expectTensorsNear(gqa[0], reference[0]);
  expectTensorsNear(gqa[1], reference[1]);
  expectTensorsNear(gqa[2], reference[2]);
}

TEST(GroupQueryAttention, DecodeAppendsToGrowingCache) {
  Tensor q = randomTensor({2, 1, 8}, 23), k = randomTensor({2, 1, 4}, 24), v = randomTensor({2, 1, 4}, 25);
  Tensor pastK = randomTensor({2, 2, 3, 2}, 26), pastV = randomTensor({2, 2, 3, 2}, 27);
  auto gqa = runOp("com.microsoft.GroupQueryAttention", {q, k, v, pastK, pastV, i32({2}, {3, 3}), scalarI32(4)},
                   {{"num_heads", 4}, {"kv_num_heads", 2}}, 3);
  auto reference = runOp("Attention", {q, k, v, Tensor(), pastK, pastV}, {{"q_num_heads", 4}, {"kv_num_heads", 2}, {"is_causal", 1}}, 3);
  EXPECT_EQ(gqa[1].shape(), (std::vector<int64_t>{2, 2, 4, 2}));
  expectTensorsNear(gqa[0], reference[0]);
  expectTensorsNear(gqa[1], reference[1]);
}

TEST(GroupQueryAttention, RaggedDecodeWritesAfterValidRows) {
  // Entry 1 has 2 valid past tokens of 3 (attention mask 1 1 0 | 1): its new token goes to position 2,
  // overwriting the padding row, and attends to positions [0, 3); rows beyond are zero.
  Tensor q = randomTensor({2, 1, 2}, 50), k = randomTensor({2, 1, 2}, 51), v = randomTensor({2, 1, 2}, 52);
  Tensor pastK = randomTensor({2, 1, 3, 2}, 53), pastV = randomTensor({2, 1, 3, 2}, 54);
  auto gqa = runOp("com.microsoft.GroupQueryAttention", {q, k, v, pastK, pastV, i32({2}, {3, 2}), scalarI32(4)},
                   {{"num_heads", 1}, {"kv_num_heads", 1}}, 3);
  ASSERT_EQ(gqa[1].shape(), (std::vector<int64_t>{2, 1, 4, 2}));
  const float* present = gqa[1].data<float>() + 8;  // entry 1
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(present[i], pastK.data<float>()[6 + i]);  // its two valid past rows
  EXPECT_FLOAT_EQ(present[4], k.data<float>()[2]);
  EXPECT_FLOAT_EQ(present[5], k.data<float>()[3]);
  EXPECT_FLOAT_EQ(present[6], 0.0f);
  EXPECT_FLOAT_EQ(present[7], 0.0f);
  // Its output equals attention over its two valid past rows plus the new token.
  auto entry = [](const Tensor& t) {
    std::vector<int64_t> shape = t.shape();
    shape[0] = 1;
    Tensor out = Tensor::zeros(DType::F32, shape);
    std::copy_n(t.data<float>() + out.numElements(), out.numElements(), out.mutableData<float>());
    return out;
  };
  auto reference = runOp("Attention", {toBnsh(entry(q), 1), toBnsh(entry(k), 1), toBnsh(entry(v), 1), Tensor(), sliceSeq(entry(pastK), 0, 2),
                                       sliceSeq(entry(pastV), 0, 2)},
                         {});
  expectTensorsNear(toBnsh(entry(gqa[0]), 1), reference[0]);
}

TEST(GroupQueryAttention, SharedBufferWritesAtSeqlensK) {
  // A max-length (5) buffer holding 2 valid tokens; the new token goes to position 2, the rows after
  // it are kept, and attention sees positions [0, 3) only.
  Tensor q = randomTensor({1, 1, 4}, 28), k = randomTensor({1, 1, 4}, 29), v = randomTensor({1, 1, 4}, 30);
  Tensor pastK = randomTensor({1, 1, 5, 4}, 31), pastV = randomTensor({1, 1, 5, 4}, 32);
  // total_sequence_length is a graph input here, so the shape rule can only say past + seq: the
  // run-time length max(total, past) = 5 is checked by hand instead.
  auto gqa = runOp("com.microsoft.GroupQueryAttention", {q, k, v, pastK, pastV, i32({1}, {2}), scalarI32(3)},
                   {{"num_heads", 1}, {"kv_num_heads", 1}}, 3, /*checkResultTypes=*/false);
  EXPECT_EQ(gqa[1].shape(), (std::vector<int64_t>{1, 1, 5, 4}));
  expectTensorsNear(sliceSeq(gqa[1], 0, 2), sliceSeq(pastK, 0, 2));
  expectTensorsNear(sliceSeq(gqa[1], 2, 3), toBnsh(k, 1));
  expectTensorsNear(sliceSeq(gqa[2], 3, 5), sliceSeq(pastV, 3, 5));
  auto reference = runOp("Attention", {toBnsh(q, 1), toBnsh(k, 1), toBnsh(v, 1), Tensor(), sliceSeq(pastK, 0, 2), sliceSeq(pastV, 0, 2)}, {});
  expectTensorsNear(toBnsh(gqa[0], 1), reference[0]);
}

TEST(GroupQueryAttention, RightPaddedPrefillMatchesUnpaddedRows) {
  Tensor q = randomTensor({2, 3, 4}, 33), k = randomTensor({2, 3, 2}, 34), v = randomTensor({2, 3, 2}, 35);
  auto batched = runOp("com.microsoft.GroupQueryAttention", {q, k, v, Tensor(), Tensor(), i32({2}, {2, 1}), scalarI32(3)},
                       {{"num_heads", 2}, {"kv_num_heads", 1}}, 3);
  // Entry 1 has two valid tokens: its first two rows equal a run on those tokens alone.
  auto row = [](const Tensor& t, int64_t b) {
    std::vector<int64_t> shape = t.shape();
    shape[0] = 1;
    Tensor out = Tensor::zeros(DType::F32, shape);
    std::copy_n(t.data<float>() + b * out.numElements(), out.numElements(), out.mutableData<float>());
    return out;
  };
  auto single = runOp("com.microsoft.GroupQueryAttention",
                      {sliceSeq(row(q, 1), 0, 2), sliceSeq(row(k, 1), 0, 2), sliceSeq(row(v, 1), 0, 2), Tensor(), Tensor(), i32({1}, {1}), scalarI32(2)},
                      {{"num_heads", 2}, {"kv_num_heads", 1}});
  expectTensorsNear(sliceSeq(row(batched[0], 1), 0, 2), single[0]);
}

TEST(GroupQueryAttention, PackedQkvAndRotaryMatchUnfused) {
  Tensor q = randomTensor({1, 3, 8}, 36), k = randomTensor({1, 3, 4}, 37), v = randomTensor({1, 3, 4}, 38);
  Tensor packed = Tensor::zeros(DType::F32, {1, 3, 16});
  for (int64_t s = 0; s < 3; ++s) {
    std::copy_n(q.data<float>() + s * 8, 8, packed.mutableData<float>() + s * 16);
    std::copy_n(k.data<float>() + s * 4, 4, packed.mutableData<float>() + s * 16 + 8);
    std::copy_n(v.data<float>() + s * 4, 4, packed.mutableData<float>() + s * 16 + 12);
  }
  auto [cos, sin] = ropeCaches(8, 2);
  AttrMap attrs{{"num_heads", 2}, {"kv_num_heads", 1}, {"do_rotary", 1}};
  auto fused = runOp("com.microsoft.GroupQueryAttention", {packed, Tensor(), Tensor(), Tensor(), Tensor(), i32({1}, {2}), scalarI32(3), cos, sin}, attrs, 3);
  Tensor positions = i64({1, 3}, {0, 1, 2});
  Tensor qr = runOp("RotaryEmbedding", {q, cos, sin, positions}, {{"num_heads", 2}})[0];
  Tensor kr = runOp("RotaryEmbedding", {k, cos, sin, positions}, {{"num_heads", 1}})[0];
  auto unfused = runOp("com.microsoft.GroupQueryAttention", {qr, kr, v, Tensor(), Tensor(), i32({1}, {2}), scalarI32(3)},
                       {{"num_heads", 2}, {"kv_num_heads", 1}}, 3);
  expectTensorsNear(fused[0], unfused[0]);
  expectTensorsNear(fused[1], unfused[1]);
}

TEST(GroupQueryAttention, LocalWindowAndSmoothSoftmax) {
  // Zero query: equal scores, so outputs average the visible values.
  Tensor q = Tensor::zeros(DType::F32, {1, 3, 1});
  Tensor k = randomTensor({1, 3, 1}, 39);
  Tensor v = f32({1, 3, 1}, {1, 2, 4});
  auto windowed = runOp("com.microsoft.GroupQueryAttention", {q, k, v, Tensor(), Tensor(), i32({1}, {2}), scalarI32(3)},
                        {{"num_heads", 1}, {"kv_num_heads", 1}, {"local_window_size", 1}});
  expectNear(windowed[0], {1.0f, 1.5f, 3.0f});  // the last query sees keys 1 and 2 only
  // Smooth softmax adds exp(0) to the denominator: one visible key of score 0 gets weight 1/2.
  auto smooth = runOp("com.microsoft.GroupQueryAttention", {q, k, v, Tensor(), Tensor(), i32({1}, {2}), scalarI32(3)},
                      {{"num_heads", 1}, {"kv_num_heads", 1}, {"smooth_softmax", 1}});
  expectNear(smooth[0], {0.5f, 1.5f * 2 / 3, 7.0f / 4});
}

TEST(GroupQueryAttention, SymbolicPresentLength) {
  auto types = inferredTypes(R"(
graph @main(%q: f32[batch, seq, 64], %k: f32[batch, seq, 32], %v: f32[batch, seq, 32], %pk: f32[batch, 2, past, 16], %pv: f32[batch, 2, past, 16], %sl: i32[batch], %t: i32[]) {
  %y, %pk2, %pv2 = com.microsoft.GroupQueryAttention(%q, %k, %v, %pk, %pv, %sl, %t) {kv_num_heads = 2, num_heads = 4} : f32[*], f32[*], f32[*]
  %y0, %pk0, %pv0 = com.microsoft.GroupQueryAttention(%q, %k, %v, none, none, %sl, %t) {kv_num_heads = 2, num_heads = 4} : f32[*], f32[*], f32[*]
  return %y, %pk2, %pv2, %y0, %pk0, %pv0
})",
                              {"y", "pk2", "pv2", "pk0"});
  EXPECT_EQ(types, (std::vector<std::string>{"f32[batch, seq, 64]", "f32[batch, 2, past + seq, 16]", "f32[batch, 2, past + seq, 16]",
                                             "f32[batch, 2, seq, 16]"}));
  EXPECT_THROW(inferredTypes(R"(
graph @main(%q: f32[1, 3, 64], %k: f32[1, 3, 48], %v: f32[1, 3, 48], %sl: i32[1], %t: i32[]) {
  %y = com.microsoft.GroupQueryAttention(%q, %k, %v, none, none, %sl, %t) {kv_num_heads = 2, num_heads = 4} : f32[*]
  return %y
})",
                             {"y"}),
               Error);
}

// ---- com.microsoft.MultiHeadAttention -------------------------------------------------------------

TEST(MultiHeadAttention, MatchesAttentionWithBiasAndPast) {
  Tensor q = randomTensor({1, 2, 8}, 40), k = randomTensor({1, 2, 8}, 41), v = randomTensor({1, 2, 8}, 42);
  Tensor pastK = randomTensor({1, 2, 3, 4}, 43), pastV = randomTensor({1, 2, 3, 4}, 44);
  auto mha = runOp("com.microsoft.MultiHeadAttention", {q, k, v, Tensor(), Tensor(), Tensor(), pastK, pastV},
                   {{"num_heads", 2}, {"unidirectional", 1}}, 3);
  auto reference = runOp("Attention", {q, k, v, Tensor(), pastK, pastV}, {{"q_num_heads", 2}, {"kv_num_heads", 2}, {"is_causal", 1}}, 3);
  expectTensorsNear(mha[0], reference[0]);
  expectTensorsNear(mha[1], reference[1]);
  // The projection bias is added to Q, K and V.
  Tensor bias = randomTensor({24}, 45);
  auto biased = runOp("com.microsoft.MultiHeadAttention", {q, k, v, bias}, {{"num_heads", 2}});
  auto addBias = [&](const Tensor& t, int64_t offset) {
    Tensor out = t;
    for (int64_t i = 0; i < t.numElements(); ++i) out.mutableData<float>()[i] += bias.data<float>()[offset + i % 8];
    return out;
  };
  auto manual = runOp("com.microsoft.MultiHeadAttention", {addBias(q, 0), addBias(k, 8), addBias(v, 16)}, {{"num_heads", 2}});
  expectTensorsNear(biased[0], manual[0]);
}

TEST(MultiHeadAttention, KeyPaddingMaskExcludesKeys) {
  Tensor q = randomTensor({1, 1, 2}, 46), k = randomTensor({1, 3, 2}, 47), v = randomTensor({1, 3, 2}, 48);
  auto masked = runOp("com.microsoft.MultiHeadAttention", {q, k, v, Tensor(), i32({1, 3}, {1, 1, 0})}, {{"num_heads", 1}});
  auto lengths = runOp("com.microsoft.MultiHeadAttention", {q, k, v, Tensor(), i32({1}, {2})}, {{"num_heads", 1}});
  auto truncated = runOp("com.microsoft.MultiHeadAttention", {q, sliceSeq(k, 0, 2), sliceSeq(v, 0, 2)}, {{"num_heads", 1}});
  expectTensorsNear(masked[0], truncated[0]);
  expectTensorsNear(lengths[0], truncated[0]);
}
