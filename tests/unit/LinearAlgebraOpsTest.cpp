// MatMul and Gemm: numpy shape rules on symbolic shapes, errors, and reference products checked by hand.
#include <gtest/gtest.h>

#include "OpTestSupport.h"

namespace pagedc {
namespace {

using namespace test;

TEST(LinearAlgebraOps, MatMulShapeRules) {
  auto graph = inferred(R"(graph @g(%x: f32[batch, seq, 64], %w: f32[64, 256], %v: f32[64], %q: f32[batch, heads, seq, 64], %k: f32[batch, heads, 64, past + seq], %a: f32[2, 1, 3, 4], %b: f32[5, 4, 6]) {
  %proj = MatMul(%x, %w) : f32[*]
  %rowVector = MatMul(%v, %w) : f32[*]
  %columnVector = MatMul(%x, %v) : f32[*]
  %dot = MatMul(%v, %v) : f32[*]
  %scores = MatMul(%q, %k) : f32[*]
  %batched = MatMul(%a, %b) : f32[*]
  return %proj, %rowVector, %columnVector, %dot, %scores, %batched
})");
  EXPECT_EQ(typeOf(*graph, "proj"), "f32[batch, seq, 256]");
  EXPECT_EQ(typeOf(*graph, "rowVector"), "f32[256]");
  EXPECT_EQ(typeOf(*graph, "columnVector"), "f32[batch, seq]");
  EXPECT_EQ(typeOf(*graph, "dot"), "f32[]");
  EXPECT_EQ(typeOf(*graph, "scores"), "f32[batch, heads, seq, past + seq]");
  EXPECT_EQ(typeOf(*graph, "batched"), "f32[2, 5, 3, 6]");
}

TEST(LinearAlgebraOps, MatMulErrorsNameTheOp) {
  std::string message = errorOf([] {
    inferred(R"(graph @g(%x: f32[batch, seq, 64], %w: f32[32, 256]) {
  %y = MatMul(%x, %w) : f32[*] loc("/model/proj")
  return %y
})");
  });
  EXPECT_NE(message.find("MatMul '/model/proj' (result %y)"), std::string::npos) << message;
  EXPECT_NE(message.find("inner dimensions differ (64 vs 32)"), std::string::npos) << message;
  message = errorOf([] {
    inferred(R"(graph @g(%x: f32[2, 3], %w: f16[3, 4]) {
  %y = MatMul(%x, %w) : f32[*]
  return %y
})");
  });
  EXPECT_NE(message.find("must have the element type of operand 0"), std::string::npos) << message;
  message = errorOf([] {
    inferred(R"(graph @g(%x: f32[], %w: f32[3, 4]) {
  %y = MatMul(%x, %w) : f32[*]
  return %y
})");
  });
  EXPECT_NE(message.find("rank 1 or more"), std::string::npos) << message;
}

TEST(LinearAlgebraOps, MatMulValues) {
  auto out = runGraph(R"(graph @g(%a: f32[2, 2], %b: f32[2, 2], %v: f32[2], %batch: f32[2, 1, 2], %i: i64[2, 2]) {
  %ab = MatMul(%a, %b) : f32[*]
  %va = MatMul(%v, %a) : f32[*]
  %av = MatMul(%a, %v) : f32[*]
  %vv = MatMul(%v, %v) : f32[*]
  %bb = MatMul(%batch, %b) : f32[*]
  %ii = MatMul(%i, %i) : i64[*]
  return %ab, %va, %av, %vv, %bb, %ii
})",
                      {{"a", f32({2, 2}, {1, 2, 3, 4})},
                       {"b", f32({2, 2}, {5, 6, 7, 8})},
                       {"v", f32({2}, {1, -1})},
                       {"batch", f32({2, 1, 2}, {1, 0, 0, 1})},
                       {"i", i64({2, 2}, {1, 2, 3, 4})}});
  EXPECT_EQ(floatsOf(out.at("ab")), (std::vector<float>{19, 22, 43, 50}));
  EXPECT_EQ(floatsOf(out.at("va")), (std::vector<float>{-2, -2}));
  EXPECT_EQ(floatsOf(out.at("av")), (std::vector<float>{-1, -1}));
  EXPECT_EQ(floatsOf(out.at("vv")), (std::vector<float>{2}));
  EXPECT_EQ(out.at("vv").rank(), 0u);
  EXPECT_EQ(out.at("bb").shape(), (std::vector<int64_t>{2, 1, 2}));
  EXPECT_EQ(floatsOf(out.at("bb")), (std::vector<float>{5, 6, 7, 8}));  // selects b's rows
  EXPECT_EQ(intsOf(out.at("ii")), (std::vector<int64_t>{7, 10, 15, 22}));
}

TEST(LinearAlgebraOps, MatMulBroadcastsBatchesBothWays) {
  // [2, 1, 1, 2] x [3, 2, 1]: batch [2, 1] with [3] gives [2, 3]; each product is a 1x1 dot.
  auto out = runGraph(R"(graph @g(%a: f32[2, 1, 1, 2], %b: f32[3, 2, 1]) {
  %c = MatMul(%a, %b) : f32[*]
  return %c
})",
                      {{"a", f32({2, 1, 1, 2}, {1, 2, 3, 4})}, {"b", f32({3, 2, 1}, {1, 0, 0, 1, 1, 1})}});
  EXPECT_EQ(out.at("c").shape(), (std::vector<int64_t>{2, 3, 1, 1}));
  EXPECT_EQ(floatsOf(out.at("c")), (std::vector<float>{1, 2, 3, 3, 4, 7}));
}

TEST(LinearAlgebraOps, GemmShapesAndValues) {
  auto graph = inferred(R"(graph @g(%a: f32[k, m], %b: f32[n, k], %c: f32[n]) {
  %y = Gemm(%a, %b, %c) {transA = 1, transB = 1} : f32[*]
  %z = Gemm(%a, %b) {transA = 1, transB = 1} : f32[*]
  return %y, %z
})");
  EXPECT_EQ(typeOf(*graph, "y"), "f32[m, n]");
  EXPECT_EQ(typeOf(*graph, "z"), "f32[m, n]");

  auto out = runGraph(R"(graph @g(%a: f32[2, 2], %b: f32[2, 2], %c: f32[2], %ct: f32[2, 1]) {
  %plain = Gemm(%a, %b, %c) : f32[*]
  %scaled = Gemm(%a, %b, %ct) {alpha = 2.0, beta = 0.5, transA = 1} : f32[*]
  %noC = Gemm(%a, %b) {transB = 1} : f32[*]
  return %plain, %scaled, %noC
})",
                      {{"a", f32({2, 2}, {1, 2, 3, 4})},
                       {"b", f32({2, 2}, {5, 6, 7, 8})},
                       {"c", f32({2}, {1, 2})},
                       {"ct", f32({2, 1}, {10, 20})}});
  EXPECT_EQ(floatsOf(out.at("plain")), (std::vector<float>{20, 24, 44, 52}));
  // A^T B = [[26, 30], [38, 44]]; times 2 plus 0.5 * [[10], [20]].
  EXPECT_EQ(floatsOf(out.at("scaled")), (std::vector<float>{57, 65, 86, 98}));
  // A B^T = [[17, 23], [39, 53]].
  EXPECT_EQ(floatsOf(out.at("noC")), (std::vector<float>{17, 23, 39, 53}));
}

TEST(LinearAlgebraOps, GemmRejectsBadOperands) {
  std::string message = errorOf([] {
    inferred(R"(graph @g(%a: f32[2, 3], %b: f32[3, 4], %c: f32[3, 4]) {
  %y = Gemm(%a, %b, %c) : f32[*]
  return %y
})");
  });
  EXPECT_NE(message.find("Gemm (result %y)"), std::string::npos) << message;
  EXPECT_NE(message.find("cannot broadcast"), std::string::npos) << message;
  message = errorOf([] {
    inferred(R"(graph @g(%a: f32[2, 3], %b: f32[3, 1], %c: f32[2, 4]) {
  %y = Gemm(%a, %b, %c) : f32[*]
  return %y
})");
  });
  EXPECT_NE(message.find("does not broadcast to [2, 1]"), std::string::npos) << message;
  message = errorOf([] {
    inferred(R"(graph @g(%a: f32[2, 3], %b: f32[2, 4]) {
  %y = Gemm(%a, %b) : f32[*]
  return %y
})");
  });
  EXPECT_NE(message.find("inner dimensions differ (3 vs 2)"), std::string::npos) << message;
  message = errorOf([] {
    inferred(R"(graph @g(%a: f32[2, 3, 1], %b: f32[3, 4]) {
  %y = Gemm(%a, %b) : f32[*]
  return %y
})");
  });
  EXPECT_NE(message.find("operand 0 must have rank 2"), std::string::npos) << message;
}

}  // namespace
}  // namespace pagedc
