// Reductions and axis ops: symbolic shape rules (constant and run-time axes) and reference values checked by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "OpTestSupport.h"

namespace pagedc {
namespace {

using namespace test;

TEST(ReductionOps, ShapeRulesOnSymbolicShapes) {
  auto graph = inferred(R"(graph @g(%x: f32[batch, seq, 64], %dynamicAxes: i64[1], %anyAxes: i64[k]) {
  %last = Constant() {value = tensor<i64[1]>[-1]} : i64[1]
  %none = Constant() {value = tensor<i64[0]>[]} : i64[0]
  %mean = ReduceMean(%x, %last) : f32[*]
  %squeezed = ReduceMean(%x, %last) {keepdims = 0} : f32[*]
  %all = ReduceSum(%x) : f32[*]
  %allFlat = ReduceMax(%x) {keepdims = 0} : f32[*]
  %noop = ReduceSum(%x, %none) {noop_with_empty_axes = 1} : f32[*]
  %dynamicKeep = ReduceSum(%x, %dynamicAxes) : f32[*]
  %dynamicDrop = ReduceSum(%x, %dynamicAxes) {keepdims = 0} : f32[*]
  %anyDrop = ReduceSum(%x, %anyAxes) {keepdims = 0} : f32[*]
  %argmax = ArgMax(%x) {axis = -1} : i64[*]
  %argmin = ArgMin(%x) {axis = 1, keepdims = 0} : i64[*]
  %softmax = Softmax(%x) : f32[*]
  return %mean, %squeezed, %all, %allFlat, %noop, %dynamicKeep, %dynamicDrop, %anyDrop, %argmax, %argmin, %softmax
})");
  EXPECT_EQ(typeOf(*graph, "mean"), "f32[batch, seq, 1]");
  EXPECT_EQ(typeOf(*graph, "squeezed"), "f32[batch, seq]");
  EXPECT_EQ(typeOf(*graph, "all"), "f32[1, 1, 1]");
  EXPECT_EQ(typeOf(*graph, "allFlat"), "f32[]");
  EXPECT_EQ(typeOf(*graph, "noop"), "f32[batch, seq, 64]");
  // Run-time axes: the rank is known, the sizes are not.
  const Value* keep = graph->findValue("dynamicKeep");
  ASSERT_TRUE(keep->type.hasRank());
  EXPECT_EQ(keep->type.rank(), 3u);
  EXPECT_EQ(keep->type.dim(0).str().rfind("_u", 0), 0u);
  EXPECT_EQ(graph->findValue("dynamicDrop")->type.rank(), 2u);
  EXPECT_FALSE(graph->findValue("anyDrop")->type.hasRank());
  EXPECT_EQ(typeOf(*graph, "argmax"), "i64[batch, seq, 1]");
  EXPECT_EQ(typeOf(*graph, "argmin"), "i64[batch, 64]");
  EXPECT_EQ(typeOf(*graph, "softmax"), "f32[batch, seq, 64]");
}

TEST(ReductionOps, BadAxesNameTheOp) {
  std::string message = errorOf([] {
    inferred(R"(graph @g(%x: f32[batch, seq]) {
  %axes = Constant() {value = tensor<i64[2]>[1, -1]} : i64[2]
  %r = ReduceSum(%x, %axes) : f32[*] loc("/model/sum")
  return %r
})");
  });
  EXPECT_NE(message.find("ReduceSum '/model/sum' (result %r): axes contains a repeated axis"), std::string::npos) << message;
  message = errorOf([] {
    inferred(R"(graph @g(%x: f32[batch, seq]) {
  %s = Softmax(%x) {axis = 2} : f32[*]
  return %s
})");
  });
  EXPECT_NE(message.find("Softmax (result %s): axis 2 is out of range for rank 2"), std::string::npos) << message;
}

TEST(ReductionOps, ReduceValues) {
  auto out = runGraph(R"(graph @g(%x: f32[2, 3], %big: f32[2], %v: f32[2]) {
  %axis1 = Constant() {value = tensor<i64[1]>[1]} : i64[1]
  %axis0 = Constant() {value = tensor<i64[1]>[0]} : i64[1]
  %sum = ReduceSum(%x, %axis1) {keepdims = 0} : f32[*]
  %mean = ReduceMean(%x) {keepdims = 0} : f32[*]
  %max = ReduceMax(%x, %axis0) : f32[*]
  %min = ReduceMin(%x, %axis1) : f32[*]
  %prod = ReduceProd(%x, %axis1) {keepdims = 0} : f32[*]
  %l1 = ReduceL1(%x, %axis0) {keepdims = 0} : f32[*]
  %l2 = ReduceL2(%v) {keepdims = 0} : f32[*]
  %sq = ReduceSumSquare(%v) {keepdims = 0} : f32[*]
  %logsum = ReduceLogSum(%v) {keepdims = 0} : f32[*]
  %lse = ReduceLogSumExp(%big) {keepdims = 0} : f32[*]
  return %sum, %mean, %max, %min, %prod, %l1, %l2, %sq, %logsum, %lse
})",
                      {{"x", f32({2, 3}, {1, -2, 3, 4, 5, 6})}, {"big", f32({2}, {1000, 1000})}, {"v", f32({2}, {3, 4})}});
  EXPECT_EQ(floatsOf(out.at("sum")), (std::vector<float>{2, 15}));
  EXPECT_EQ(floatsOf(out.at("mean")), (std::vector<float>{17.0f / 6}));
  EXPECT_EQ(out.at("max").shape(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(floatsOf(out.at("max")), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(floatsOf(out.at("min")), (std::vector<float>{-2, 4}));
  EXPECT_EQ(floatsOf(out.at("prod")), (std::vector<float>{-6, 120}));
  EXPECT_EQ(floatsOf(out.at("l1")), (std::vector<float>{5, 7, 9}));
  EXPECT_EQ(floatsOf(out.at("l2")), (std::vector<float>{5}));
  EXPECT_EQ(floatsOf(out.at("sq")), (std::vector<float>{25}));
  EXPECT_NEAR(floatsOf(out.at("logsum"))[0], 1.9459101091f, 1e-6f);
  // A naive log(sum(exp)) overflows here; the stable form gives 1000 + log 2.
  EXPECT_NEAR(floatsOf(out.at("lse"))[0], 1000.6931471806f, 1e-3f);
}

TEST(ReductionOps, IntegerReductionsAndEmptyAxes) {
  auto out = runGraph(R"(graph @g(%x: i64[2, 2], %axes: i64[k]) {
  %sum = ReduceSum(%x, %axes) : i64[*]
  %mean = ReduceMean(%x, %axes) {keepdims = 0} : i64[*]
  %same = ReduceMax(%x, %axes) {noop_with_empty_axes = 1} : i64[*]
  return %sum, %mean, %same
})",
                      {{"x", i64({2, 2}, {1, 2, 3, 5})}, {"axes", i64({0}, {})}});
  EXPECT_EQ(intsOf(out.at("sum")), (std::vector<int64_t>{11}));
  EXPECT_EQ(out.at("sum").shape(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(intsOf(out.at("mean")), (std::vector<int64_t>{2}));  // 11 / 4 truncated
  EXPECT_EQ(intsOf(out.at("same")), (std::vector<int64_t>{1, 2, 3, 5}));
}

TEST(ReductionOps, ReduceProdOfAShapeStaysKnown) {
  auto graph = parseGraph(R"(graph @g(%shape: i64[3]) {
  %p = ReduceProd(%shape) {keepdims = 0} : i64[*]
  %s = ReduceSum(%shape) : i64[*]
  return %p, %s
})");
  graph->findValue("shape")->knownInts = std::vector<Dim>{Dim::symbol("batch"), Dim::symbol("seq"), Dim(64)};
  inferTypes(*graph);
  EXPECT_EQ(knownIntsOf(*graph, "p"), "[64*batch*seq]");
  EXPECT_EQ(typeOf(*graph, "p"), "i64[]");
  EXPECT_EQ(knownIntsOf(*graph, "s"), "[batch + seq + 64]");
}

TEST(ReductionOps, ArgMaxAndArgMin) {
  auto out = runGraph(R"(graph @g(%x: f32[2, 4]) {
  %first = ArgMax(%x) {axis = 1} : i64[*]
  %last = ArgMax(%x) {axis = 1, select_last_index = 1, keepdims = 0} : i64[*]
  %min = ArgMin(%x) {axis = 0, keepdims = 0} : i64[*]
  return %first, %last, %min
})",
                      {{"x", f32({2, 4}, {1, 7, 3, 7, 5, 5, 0, 2})}});
  EXPECT_EQ(out.at("first").shape(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(intsOf(out.at("first")), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(intsOf(out.at("last")), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(intsOf(out.at("min")), (std::vector<int64_t>{0, 1, 1, 1}));
}

TEST(ReductionOps, SoftmaxFamily) {
  auto out = runGraph(R"(graph @g(%x: f32[3], %big: f32[3], %m: f32[2, 2]) {
  %s = Softmax(%x) : f32[*]
  %stable = Softmax(%big) : f32[*]
  %log = LogSoftmax(%x) : f32[*]
  %cols = Softmax(%m) {axis = 0} : f32[*]
  %hard = Hardmax(%m) : f32[*]
  return %s, %stable, %log, %cols, %hard
})",
                      {{"x", f32({3}, {1, 2, 3})}, {"big", f32({3}, {1001, 1002, 1003})}, {"m", f32({2, 2}, {0, 5, 0, 5})}});
  std::vector<float> expected = {0.0900305732f, 0.2447284711f, 0.6652409558f};
  for (const char* name : {"s", "stable"}) {
    auto values = floatsOf(out.at(name));
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(values[i], expected[i], 1e-7f) << name << "[" << i << "]";
  }
  auto log = floatsOf(out.at("log"));
  EXPECT_NEAR(log[0], -2.4076059644f, 1e-6f);
  EXPECT_NEAR(log[2], -0.4076059644f, 1e-6f);
  EXPECT_EQ(floatsOf(out.at("cols")), (std::vector<float>{0.5f, 0.5f, 0.5f, 0.5f}));
  EXPECT_EQ(floatsOf(out.at("hard")), (std::vector<float>{0, 1, 0, 1}));
}

TEST(ReductionOps, CumSum) {
  auto out = runGraph(R"(graph @g(%x: f32[2, 3], %axis: i64[]) {
  %inclusive = CumSum(%x, %axis) : f32[*]
  %exclusive = CumSum(%x, %axis) {exclusive = 1} : f32[*]
  %reverse = CumSum(%x, %axis) {reverse = 1} : f32[*]
  %both = CumSum(%x, %axis) {exclusive = 1, reverse = 1} : f32[*]
  return %inclusive, %exclusive, %reverse, %both
})",
                      {{"x", f32({2, 3}, {1, 2, 3, 4, 5, 6})}, {"axis", i64({}, {-1})}});
  EXPECT_EQ(floatsOf(out.at("inclusive")), (std::vector<float>{1, 3, 6, 4, 9, 15}));
  EXPECT_EQ(floatsOf(out.at("exclusive")), (std::vector<float>{0, 1, 3, 0, 4, 9}));
  EXPECT_EQ(floatsOf(out.at("reverse")), (std::vector<float>{6, 5, 3, 15, 11, 6}));
  EXPECT_EQ(floatsOf(out.at("both")), (std::vector<float>{5, 3, 0, 11, 6, 0}));
  out = runGraph(R"(graph @g(%x: i64[2, 2], %axis: i64[1]) {
  %c = CumSum(%x, %axis) : i64[*]
  return %c
})",
                 {{"x", i64({2, 2}, {1, 2, 3, 4})}, {"axis", i64({1}, {0})}});
  EXPECT_EQ(intsOf(out.at("c")), (std::vector<int64_t>{1, 2, 4, 6}));
}

TEST(ReductionOps, TopK) {
  auto graph = parseGraph(R"(graph @g(%x: f32[batch, vocab], %k: i64[1]) {
  %two = Constant() {value = tensor<i64[1]>[2]} : i64[1]
  %v, %i = TopK(%x, %k) : f32[*], i64[*]
  %v2, %i2 = TopK(%x, %two) {axis = 1} : f32[*], i64[*]
  return %v, %i, %v2, %i2
})");
  graph->findValue("k")->knownInts = std::vector<Dim>{Dim::symbol("beam")};
  inferTypes(*graph);
  EXPECT_EQ(typeOf(*graph, "v"), "f32[batch, beam]");
  EXPECT_EQ(typeOf(*graph, "i"), "i64[batch, beam]");
  EXPECT_EQ(typeOf(*graph, "v2"), "f32[batch, 2]");

  const char* text = R"(graph @g(%x: f32[2, 4], %k: i64[1]) {
  %v, %i = TopK(%x, %k) : f32[*], i64[*]
  %sv, %si = TopK(%x, %k) {largest = 0} : f32[*], i64[*]
  return %v, %i, %sv, %si
})";
  auto out = runGraph(text, {{"x", f32({2, 4}, {1, 3, 2, 3, 9, -1, 4, 0})}, {"k", i64({1}, {2})}});
  EXPECT_EQ(floatsOf(out.at("v")), (std::vector<float>{3, 3, 9, 4}));
  EXPECT_EQ(intsOf(out.at("i")), (std::vector<int64_t>{1, 3, 0, 2}));  // ties: lower index first
  EXPECT_EQ(floatsOf(out.at("sv")), (std::vector<float>{1, 2, -1, 0}));
  EXPECT_EQ(intsOf(out.at("si")), (std::vector<int64_t>{0, 2, 1, 3}));
  std::string message = errorOf([&] { runGraph(text, {{"x", f32({2, 4}, std::vector<float>(8))}, {"k", i64({1}, {5})}}); });
  EXPECT_NE(message.find("K = 5 is out of range"), std::string::npos) << message;
}

}  // namespace
}  // namespace pagedc
