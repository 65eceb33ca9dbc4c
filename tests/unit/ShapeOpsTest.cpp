// Shape rules (symbolic, incl. exporter shape arithmetic), reference values and diagnostics of the
// shape, slicing, indexing and generator ops.
#include <gtest/gtest.h>

#include <limits>

#include "ir/Error.h"
#include "ir/Interpreter.h"
#include "ir/OpDef.h"
#include "ir/TextFormat.h"
#include "ir/TypeInference.h"

using namespace pagedc;

namespace {

std::unique_ptr<Graph> inferred(const std::string& text) {
  auto graph = parseGraph(text);
  inferTypes(*graph);
  return graph;
}

std::string typeOf(const Graph& graph, const std::string& name) {
  const Value* value = graph.findValue(name);
  if (!value) return "<no value %" + name + ">";
  return value->type.str();
}

// A fresh symbol prints as _uN; tests only care that the size was left unknown.
bool isUnknownDim(const Graph& graph, const std::string& name, size_t dim) {
  const Value* value = graph.findValue(name);
  if (!value || !value->type.shape || value->type.rank() <= dim) return false;
  auto symbol = value->type.dim(dim).singleSymbol();
  return symbol && symbol->rfind("_u", 0) == 0;
}

std::string knownIntsOf(const Graph& graph, const std::string& name) {
  const Value* value = graph.findValue(name);
  if (!value || !value->knownInts) return "<unknown>";
  return shapeStr(*value->knownInts);
}

Tensor f32(std::vector<int64_t> shape, std::vector<float> values) { return Tensor::fromValues(DType::F32, std::move(shape), values); }
Tensor i64(std::vector<int64_t> shape, std::vector<int64_t> values) { return Tensor::fromValues(DType::I64, std::move(shape), values); }

std::vector<float> floatsOf(const Tensor& t) { return std::vector<float>(t.data<float>(), t.data<float>() + t.numElements()); }
std::vector<int64_t> intsOf(const Tensor& t) { return t.toInt64Vector(); }

std::map<std::string, Tensor> run(const std::string& text, const std::map<std::string, Tensor>& inputs) {
  auto graph = inferred(text);
  return Interpreter(*graph).run(inputs);
}

std::string inferError(const std::string& text) {
  try {
    inferred(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

std::string runError(const std::string& text, const std::map<std::string, Tensor>& inputs) {
  try {
    run(text, inputs);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

constexpr const char* kMax = "9223372036854775807";
constexpr const char* kMin = "-9223372036854775808";

}  // namespace

// The exporter's head split: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), ..., [12], [64])).
TEST(ShapeOps, ReshapeThroughShapeArithmetic) {
  auto g = inferred(R"(graph @g(%x: f32[batch, seq, 768]) {
    %shape = Shape(%x) : i64[*]
    %i0 = Constant() {value = tensor<i64[]>[0]} : i64[]
    %i1 = Constant() {value = tensor<i64[]>[1]} : i64[]
    %b = Gather(%shape, %i0) {axis = 0} : i64[*]
    %s = Gather(%shape, %i1) {axis = 0} : i64[*]
    %ax = Constant() {value = tensor<i64[1]>[0]} : i64[1]
    %bu = Unsqueeze(%b, %ax) : i64[*]
    %su = Unsqueeze(%s, %ax) : i64[*]
    %heads = Constant() {value = tensor<i64[1]>[12]} : i64[1]
    %dim = Constant() {value = tensor<i64[1]>[64]} : i64[1]
    %target = Concat(%bu, %su, %heads, %dim) {axis = 0} : i64[*]
    %y = Reshape(%x, %target) : f32[*]
    return %y
  })");
  EXPECT_EQ(typeOf(*g, "shape"), "i64[3]");
  EXPECT_EQ(knownIntsOf(*g, "shape"), "[batch, seq, 768]");
  EXPECT_EQ(typeOf(*g, "b"), "i64[]");
  EXPECT_EQ(knownIntsOf(*g, "s"), "[seq]");
  EXPECT_EQ(typeOf(*g, "su"), "i64[1]");
  EXPECT_EQ(knownIntsOf(*g, "target"), "[batch, seq, 12, 64]");
  EXPECT_EQ(typeOf(*g, "y"), "f32[batch, seq, 12, 64]");
}

TEST(ShapeOps, ReshapeZeroCopiesAndMinusOneInfers) {
  auto g = inferred(R"(graph @g(%x: f32[batch, seq, 12, 64]) {
    %t = Constant() {value = tensor<i64[3]>[0, 0, -1]} : i64[3]
    %y = Reshape(%x, %t) : f32[*]
    %t2 = Constant() {value = tensor<i64[2]>[-1, 64]} : i64[2]
    %z = Reshape(%x, %t2) : f32[*]
    %t3 = Constant() {value = tensor<i64[2]>[-1, 5]} : i64[2]
    %w = Reshape(%x, %t3) : f32[*]
    return %y, %z, %w
  })");
  EXPECT_EQ(typeOf(*g, "y"), "f32[batch, seq, 768]");
  EXPECT_EQ(typeOf(*g, "z"), "f32[12*batch*seq, 64]");
  // 768*batch*seq over 5 is not exact: the size is unknowable, not an error (batch may be 5).
  EXPECT_TRUE(isUnknownDim(*g, "w", 0));
}

TEST(ShapeOps, ReshapeValuesAndAllowZero) {
  auto out = run(R"(graph @g(%x: f32[2, 3]) {
    %t = Constant() {value = tensor<i64[2]>[3, -1]} : i64[2]
    %y = Reshape(%x, %t) : f32[*]
    return %y
  })",
                 {{"x", f32({2, 3}, {1, 2, 3, 4, 5, 6})}});
  EXPECT_EQ(out["y"].shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(floatsOf(out["y"]), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  // allowzero = 1 keeps 0 as a size: 6 elements cannot become [0, 4].
  EXPECT_NE(inferError(R"(graph @g(%x: f32[2, 3]) {
    %e = Constant() {value = tensor<i64[2]>[0, 4]} : i64[2]
    %z = Reshape(%x, %e) {allowzero = 1} : f32[*]
    return %z
  })").find("cannot reshape"), std::string::npos);
}

TEST(ShapeOps, ReshapeErrorsNameTheOp) {
  std::string twoMinusOne = inferError(R"(graph @g(%x: f32[4, 6]) {
    %t = Constant() {value = tensor<i64[2]>[-1, -1]} : i64[2]
    %y = Reshape(%x, %t) : f32[*] loc("/model/Reshape_7")
    return %y
  })");
  EXPECT_NE(twoMinusOne.find("Reshape '/model/Reshape_7'"), std::string::npos) << twoMinusOne;
  EXPECT_NE(twoMinusOne.find("more than one -1"), std::string::npos) << twoMinusOne;

  std::string mismatch = inferError(R"(graph @g(%x: f32[4, 6]) {
    %t = Constant() {value = tensor<i64[2]>[5, 5]} : i64[2]
    %y = Reshape(%x, %t) : f32[*]
    return %y
  })");
  EXPECT_NE(mismatch.find("Reshape (result %y)"), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find("24 elements"), std::string::npos) << mismatch;

  std::string notMultiple = inferError(R"(graph @g(%x: f32[4, 6]) {
    %t = Constant() {value = tensor<i64[2]>[-1, 5]} : i64[2]
    %y = Reshape(%x, %t) : f32[*]
    return %y
  })");
  EXPECT_NE(notMultiple.find("not a multiple of 5"), std::string::npos) << notMultiple;
}

TEST(ShapeOps, ExpandWithSymbolicTargetShape) {
  auto g = inferred(R"(graph @g(%ids: i64[batch, seq], %attention_mask: i64[batch, past + seq], %mask: f32[1, 1, 1, past + seq]) {
    %i0 = Constant() {value = tensor<i64[]>[0]} : i64[]
    %i1 = Constant() {value = tensor<i64[]>[1]} : i64[]
    %ax = Constant() {value = tensor<i64[1]>[0]} : i64[1]
    %ids_shape = Shape(%ids) : i64[*]
    %mask_shape = Shape(%attention_mask) : i64[*]
    %b = Gather(%ids_shape, %i0) : i64[*]
    %s = Gather(%ids_shape, %i1) : i64[*]
    %t = Gather(%mask_shape, %i1) : i64[*]
    %bu = Unsqueeze(%b, %ax) : i64[*]
    %su = Unsqueeze(%s, %ax) : i64[*]
    %tu = Unsqueeze(%t, %ax) : i64[*]
    %one = Constant() {value = tensor<i64[1]>[1]} : i64[1]
    %target = Concat(%bu, %one, %su, %tu) {axis = 0} : i64[*]
    %y = Expand(%mask, %target) : f32[*]
    return %y
  })");
  EXPECT_EQ(knownIntsOf(*g, "target"), "[batch, 1, seq, past + seq]");
  EXPECT_EQ(typeOf(*g, "y"), "f32[batch, 1, seq, past + seq]");
}

TEST(ShapeOps, ExpandValuesBroadcastBothWays) {
  auto out = run(R"(graph @g(%x: f32[3, 1]) {
    %t = Constant() {value = tensor<i64[2]>[1, 2]} : i64[2]
    %y = Expand(%x, %t) : f32[*]
    return %y
  })",
                 {{"x", f32({3, 1}, {1, 2, 3})}});
  EXPECT_EQ(out["y"].shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(floatsOf(out["y"]), (std::vector<float>{1, 1, 2, 2, 3, 3}));
}

TEST(ShapeOps, RangeOverSequenceLength) {
  auto g = inferred(R"(graph @g(%ids: i64[batch, seq]) {
    %shape = Shape(%ids) : i64[*]
    %i1 = Constant() {value = tensor<i64[]>[1]} : i64[]
    %s = Gather(%shape, %i1) : i64[*]
    %zero = Constant() {value = tensor<i64[]>[0]} : i64[]
    %one = Constant() {value = tensor<i64[]>[1]} : i64[]
    %pos = Range(%zero, %s, %one) : i64[*]
    %two = Constant() {value = tensor<i64[]>[2]} : i64[]
    %odd = Range(%one, %s, %two) : i64[*]
    %five = Constant() {value = tensor<i64[]>[5]} : i64[]
    %small = Range(%five, %zero, %two) : i64[*]
    %neg = Constant() {value = tensor<i64[]>[-2]} : i64[]
    %down = Range(%five, %zero, %neg) : i64[*]
    return %pos, %odd, %small, %down
  })");
  EXPECT_EQ(typeOf(*g, "pos"), "i64[seq]");
  EXPECT_TRUE(isUnknownDim(*g, "odd", 0));  // ceil((seq - 1) / 2) is not a polynomial
  EXPECT_EQ(typeOf(*g, "small"), "i64[0]");
  EXPECT_EQ(typeOf(*g, "down"), "i64[3]");
  EXPECT_EQ(knownIntsOf(*g, "down"), "[5, 3, 1]");

  auto out = Interpreter(*g).run({{"ids", i64({1, 4}, {7, 7, 7, 7})}});
  EXPECT_EQ(intsOf(out["pos"]), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(intsOf(out["odd"]), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(intsOf(out["down"]), (std::vector<int64_t>{5, 3, 1}));
}

TEST(ShapeOps, RangeFloat) {
  auto out = run(R"(graph @g() {
    %a = Constant() {value = tensor<f32[]>[1.0]} : f32[]
    %b = Constant() {value = tensor<f32[]>[2.0]} : f32[]
    %d = Constant() {value = tensor<f32[]>[0.25]} : f32[]
    %r = Range(%a, %b, %d) : f32[*]
    return %r
  })",
                 {});
  EXPECT_EQ(floatsOf(out["r"]), (std::vector<float>{1.0f, 1.25f, 1.5f, 1.75f}));
}

TEST(ShapeOps, SliceSymbolicSizesAreExactOrUnknown) {
  std::string text = std::string(R"(graph @g(%x: f32[seq, 8], %y: f32[past + 4]) {
    %a0 = Constant() {value = tensor<i64[1]>[0]} : i64[1]
    %a1 = Constant() {value = tensor<i64[1]>[1]} : i64[1]
    %zero = Constant() {value = tensor<i64[1]>[0]} : i64[1]
    %one = Constant() {value = tensor<i64[1]>[1]} : i64[1]
    %three = Constant() {value = tensor<i64[1]>[3]} : i64[1]
    %m1 = Constant() {value = tensor<i64[1]>[-1]} : i64[1]
    %m2 = Constant() {value = tensor<i64[1]>[-2]} : i64[1]
    %m4 = Constant() {value = tensor<i64[1]>[-4]} : i64[1]
    %m5 = Constant() {value = tensor<i64[1]>[-5]} : i64[1]
    %max = Constant() {value = tensor<i64[1]>[)") + kMax + R"(]} : i64[1]
    %min = Constant() {value = tensor<i64[1]>[)" + kMin + R"(]} : i64[1]
    %all = Slice(%x, %zero, %max, %a0) : f32[*]
    %tail = Slice(%x, %one, %max, %a0) : f32[*]
    %last = Slice(%x, %m1, %max, %a0) : f32[*]
    %head = Slice(%x, %zero, %three, %a0) : f32[*]
    %rev = Slice(%x, %m1, %min, %a0, %m1) : f32[*]
    %cols = Slice(%x, %one, %m1, %a1) : f32[*]
    %y2 = Slice(%y, %m2, %max) : f32[*]
    %y4 = Slice(%y, %m4, %max) : f32[*]
    %y5 = Slice(%y, %m5, %max) : f32[*]
    %y3 = Slice(%y, %zero, %three) : f32[*]
    %ydrop = Slice(%y, %zero, %m1) : f32[*]
    return %all
  })";
  auto g = inferred(text);
  EXPECT_EQ(typeOf(*g, "all"), "f32[seq, 8]");
  EXPECT_TRUE(isUnknownDim(*g, "tail", 0));  // seq - 1 would be wrong for seq = 0
  EXPECT_TRUE(isUnknownDim(*g, "last", 0));  // 1 would be wrong for seq = 0
  EXPECT_TRUE(isUnknownDim(*g, "head", 0));  // min(3, seq)
  EXPECT_EQ(typeOf(*g, "rev"), "f32[seq, 8]");
  EXPECT_EQ(typeOf(*g, "cols"), "f32[seq, 6]");
  EXPECT_EQ(typeOf(*g, "y2"), "f32[2]");
  EXPECT_EQ(typeOf(*g, "y4"), "f32[4]");
  EXPECT_TRUE(isUnknownDim(*g, "y5", 0));
  EXPECT_EQ(typeOf(*g, "y3"), "f32[3]");
  EXPECT_EQ(typeOf(*g, "ydrop"), "f32[past + 3]");
}

TEST(ShapeOps, SliceNegativeStepsValues) {
  std::string text = std::string(R"(graph @g(%x: f32[10], %m: f32[3, 4]) {
    %s = Constant() {value = tensor<i64[1]>[8]} : i64[1]
    %e = Constant() {value = tensor<i64[1]>[1]} : i64[1]
    %st = Constant() {value = tensor<i64[1]>[-3]} : i64[1]
    %a = Slice(%x, %s, %e, none, %st) : f32[*]
    %max = Constant() {value = tensor<i64[1]>[)") + kMax + R"(]} : i64[1]
    %min = Constant() {value = tensor<i64[1]>[)" + kMin + R"(]} : i64[1]
    %m1 = Constant() {value = tensor<i64[1]>[-1]} : i64[1]
    %r = Slice(%x, %max, %min, none, %m1) : f32[*]
    %s2 = Constant() {value = tensor<i64[2]>[-1, 3]} : i64[2]
    %e2 = Constant() {value = tensor<i64[2]>[)" + kMin + R"(, 0]} : i64[2]
    %ax = Constant() {value = tensor<i64[2]>[0, -1]} : i64[2]
    %st2 = Constant() {value = tensor<i64[2]>[-2, -2]} : i64[2]
    %b = Slice(%m, %s2, %e2, %ax, %st2) : f32[*]
    return %a, %r, %b
  })";
  auto g = inferred(text);
  EXPECT_EQ(typeOf(*g, "a"), "f32[3]");
  EXPECT_EQ(typeOf(*g, "b"), "f32[2, 2]");
  auto out = Interpreter(*g).run({{"x", f32({10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9})},
                                  {"m", f32({3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})}});
  EXPECT_EQ(floatsOf(out["a"]), (std::vector<float>{8, 5, 2}));
  EXPECT_EQ(floatsOf(out["r"]), (std::vector<float>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(floatsOf(out["b"]), (std::vector<float>{11, 9, 3, 1}));
}

TEST(ShapeOps, SliceOfKnownVectorStaysKnown) {
  auto g = inferred(R"(graph @g(%x: f32[batch, seq, heads, 64]) {
    %shape = Shape(%x) : i64[*]
    %s = Constant() {value = tensor<i64[1]>[1]} : i64[1]
    %e = Constant() {value = tensor<i64[1]>[3]} : i64[1]
    %mid = Slice(%shape, %s, %e) : i64[*]
    %part = Shape(%x) {start = -2} : i64[*]
    return %mid, %part
  })");
  EXPECT_EQ(typeOf(*g, "mid"), "i64[2]");
  EXPECT_EQ(knownIntsOf(*g, "mid"), "[seq, heads]");
  EXPECT_EQ(knownIntsOf(*g, "part"), "[heads, 64]");
}

TEST(ShapeOps, GatherNegativeIndices) {
  auto g = inferred(R"(graph @g(%x: f32[3, 2]) {
    %i = Constant() {value = tensor<i64[1, 2]>[-1, 0]} : i64[1, 2]
    %a = Gather(%x, %i) {axis = 0} : f32[*]
    %j = Constant() {value = tensor<i64[1]>[-1]} : i64[1]
    %b = Gather(%x, %j) {axis = -1} : f32[*]
    return %a, %b
  })");
  EXPECT_EQ(typeOf(*g, "a"), "f32[1, 2, 2]");
  EXPECT_EQ(typeOf(*g, "b"), "f32[3, 1]");
  auto out = Interpreter(*g).run({{"x", f32({3, 2}, {1, 2, 3, 4, 5, 6})}});
  EXPECT_EQ(floatsOf(out["a"]), (std::vector<float>{5, 6, 1, 2}));
  EXPECT_EQ(floatsOf(out["b"]), (std::vector<float>{2, 4, 6}));
}

TEST(ShapeOps, GatherEmbeddingSymbolic) {
  auto g = inferred(R"(graph @g(%ids: i64[batch, seq], %w: f32[256, 64]) {
    %x = Gather(%w, %ids) : f32[*]
    return %x
  })");
  EXPECT_EQ(typeOf(*g, "x"), "f32[batch, seq, 64]");
}

TEST(ShapeOps, GatherErrors) {
  std::string outOfRange = inferError(R"(graph @g(%x: f32[3, 2]) {
    %i = Constant() {value = tensor<i64[]>[3]} : i64[]
    %a = Gather(%x, %i) {axis = 0} : f32[*]
    return %a
  })");
  EXPECT_NE(outOfRange.find("Gather (result %a)"), std::string::npos) << outOfRange;
  EXPECT_NE(outOfRange.find("index 3 is out of range"), std::string::npos) << outOfRange;
  std::string badAxis = inferError(R"(graph @g(%x: f32[3, 2]) {
    %i = Constant() {value = tensor<i64[]>[0]} : i64[]
    %a = Gather(%x, %i) {axis = 2} : f32[*]
    return %a
  })");
  EXPECT_NE(badAxis.find("axis 2 is out of range for rank 2"), std::string::npos) << badAxis;
}

TEST(ShapeOps, GatherElementsAndGatherND) {
  auto out = run(R"(graph @g(%x: f32[2, 2], %i: i64[2, 2], %n: i64[2, 1]) {
    %a = GatherElements(%x, %i) {axis = 1} : f32[*]
    %b = GatherND(%x, %n) : f32[*]
    %c = GatherND(%x, %n) {batch_dims = 1} : f32[*]
    return %a, %b, %c
  })",
                 {{"x", f32({2, 2}, {1, 2, 3, 4})}, {"i", i64({2, 2}, {0, 0, 1, 0})}, {"n", i64({2, 1}, {1, 0})}});
  EXPECT_EQ(floatsOf(out["a"]), (std::vector<float>{1, 1, 4, 3}));
  EXPECT_EQ(out["b"].shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(floatsOf(out["b"]), (std::vector<float>{3, 4, 1, 2}));
  EXPECT_EQ(out["c"].shape(), (std::vector<int64_t>{2}));
  EXPECT_EQ(floatsOf(out["c"]), (std::vector<float>{2, 3}));
}

TEST(ShapeOps, TriluWithK) {
  std::string text = R"(graph @g(%x: f32[3, 4]) {
    %k1 = Constant() {value = tensor<i64[]>[1]} : i64[]
    %km1 = Constant() {value = tensor<i64[]>[-1]} : i64[]
    %u = Trilu(%x, %k1) : f32[*]
    %l = Trilu(%x, %km1) {upper = 0} : f32[*]
    %d = Trilu(%x) : f32[*]
    return %u, %l, %d
  })";
  auto out = run(text, {{"x", f32({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})}});
  EXPECT_EQ(floatsOf(out["u"]), (std::vector<float>{0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12}));
  EXPECT_EQ(floatsOf(out["l"]), (std::vector<float>{0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0}));
  EXPECT_EQ(floatsOf(out["d"]), (std::vector<float>{1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12}));
}

TEST(ShapeOps, ScatterND) {
  auto out = run(R"(graph @g(%x: f32[8], %i: i64[4, 1], %u: f32[4], %m: f32[2, 3], %j: i64[1, 1], %v: f32[1, 3], %k: i64[2, 1], %w: f32[2]) {
    %a = ScatterND(%x, %i, %u) : f32[*]
    %b = ScatterND(%m, %j, %v) : f32[*]
    %c = ScatterND(%x, %k, %w) {reduction = "add"} : f32[*]
    %d = ScatterND(%x, %k, %w) {reduction = "max"} : f32[*]
    return %a, %b, %c, %d
  })",
                 {{"x", f32({8}, {1, 2, 3, 4, 5, 6, 7, 8})},
                  {"i", i64({4, 1}, {4, 3, 1, 7})},
                  {"u", f32({4}, {9, 10, 11, 12})},
                  {"m", f32({2, 3}, {0, 0, 0, 0, 0, 0})},
                  {"j", i64({1, 1}, {-1})},
                  {"v", f32({1, 3}, {7, 8, 9})},
                  {"k", i64({2, 1}, {0, 0})},
                  {"w", f32({2}, {5, 6})}});
  EXPECT_EQ(floatsOf(out["a"]), (std::vector<float>{1, 11, 3, 10, 9, 6, 7, 12}));
  EXPECT_EQ(floatsOf(out["b"]), (std::vector<float>{0, 0, 0, 7, 8, 9}));
  EXPECT_EQ(floatsOf(out["c"]), (std::vector<float>{12, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(floatsOf(out["d"]), (std::vector<float>{6, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(ShapeOps, ScatterElements) {
  auto out = run(R"(graph @g(%x: f32[1, 5], %i: i64[1, 2], %u: f32[1, 2], %d: i64[1, 2]) {
    %a = ScatterElements(%x, %i, %u) {axis = 1} : f32[*]
    %b = ScatterElements(%x, %d, %u) {axis = 1, reduction = "add"} : f32[*]
    return %a, %b
  })",
                 {{"x", f32({1, 5}, {1, 2, 3, 4, 5})},
                  {"i", i64({1, 2}, {1, -2})},
                  {"u", f32({1, 2}, {1.5f, 2.5f})},
                  {"d", i64({1, 2}, {1, 1})}});
  EXPECT_EQ(floatsOf(out["a"]), (std::vector<float>{1, 1.5f, 3, 2.5f, 5}));
  EXPECT_EQ(floatsOf(out["b"]), (std::vector<float>{1, 6, 3, 4, 5}));
}

TEST(ShapeOps, SplitUnevenLastChunkSmaller) {
  auto g = inferred(R"(graph @g(%x: f32[7]) {
    %a, %b, %c = Split(%x) {num_outputs = 3} : f32[*], f32[*], f32[*]
    return %a, %b, %c
  })");
  EXPECT_EQ(typeOf(*g, "a"), "f32[3]");
  EXPECT_EQ(typeOf(*g, "b"), "f32[3]");
  EXPECT_EQ(typeOf(*g, "c"), "f32[1]");
  auto out = Interpreter(*g).run({{"x", f32({7}, {0, 1, 2, 3, 4, 5, 6})}});
  EXPECT_EQ(floatsOf(out["a"]), (std::vector<float>{0, 1, 2}));
  EXPECT_EQ(floatsOf(out["b"]), (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(floatsOf(out["c"]), (std::vector<float>{6}));
}

TEST(ShapeOps, SplitSymbolicAndExplicitSizes) {
  auto g = inferred(R"(graph @g(%x: f32[batch, 2*seq, 6], %y: f32[seq]) {
    %a, %b = Split(%x, none) {axis = 1, num_outputs = 2} : f32[*], f32[*]
    %sizes = Constant() {value = tensor<i64[2]>[2, 4]} : i64[2]
    %c, %d = Split(%x, %sizes) {axis = -1} : f32[*], f32[*]
    %e, %f = Split(%y) {num_outputs = 2} : f32[*], f32[*]
    return %a, %b, %c, %d, %e, %f
  })");
  EXPECT_EQ(typeOf(*g, "a"), "f32[batch, seq, 6]");
  EXPECT_EQ(typeOf(*g, "b"), "f32[batch, seq, 6]");
  EXPECT_EQ(typeOf(*g, "c"), "f32[batch, 2*seq, 2]");
  EXPECT_EQ(typeOf(*g, "d"), "f32[batch, 2*seq, 4]");
  EXPECT_TRUE(isUnknownDim(*g, "e", 0));
  auto out = Interpreter(*g).run({{"x", f32({1, 2, 6}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})}, {"y", f32({1}, {0})}});
  EXPECT_EQ(floatsOf(out["c"]), (std::vector<float>{0, 1, 6, 7}));
  EXPECT_EQ(floatsOf(out["d"]), (std::vector<float>{2, 3, 4, 5, 8, 9, 10, 11}));
  EXPECT_EQ(floatsOf(out["b"]), (std::vector<float>{6, 7, 8, 9, 10, 11}));

  std::string bad = inferError(R"(graph @g(%x: f32[6]) {
    %sizes = Constant() {value = tensor<i64[2]>[2, 3]} : i64[2]
    %c, %d = Split(%x, %sizes) : f32[*], f32[*]
    return %c
  })");
  EXPECT_NE(bad.find("Split (result %c)"), std::string::npos) << bad;
  EXPECT_NE(bad.find("sums to 5"), std::string::npos) << bad;
}

TEST(ShapeOps, ConcatSymbolicValuesAndErrors) {
  auto g = inferred(R"(graph @g(%past: f32[batch, 4, past, 16], %cur: f32[batch, 4, seq, 16]) {
    %kv = Concat(%past, %cur) {axis = -2} : f32[*]
    return %kv
  })");
  EXPECT_EQ(typeOf(*g, "kv"), "f32[batch, 4, past + seq, 16]");

  auto out = run(R"(graph @g(%a: f32[2, 1], %b: f32[2, 2]) {
    %c = Concat(%a, %b) {axis = 1} : f32[*]
    return %c
  })",
                 {{"a", f32({2, 1}, {1, 2})}, {"b", f32({2, 2}, {3, 4, 5, 6})}});
  EXPECT_EQ(floatsOf(out["c"]), (std::vector<float>{1, 3, 4, 2, 5, 6}));

  std::string badAxis = inferError(R"(graph @g(%a: f32[2, 1], %b: f32[2, 2]) {
    %c = Concat(%a, %b) {axis = 2} : f32[*]
    return %c
  })");
  EXPECT_NE(badAxis.find("Concat (result %c): axis 2 is out of range for rank 2"), std::string::npos) << badAxis;
  std::string badDim = inferError(R"(graph @g(%a: f32[2, 1], %b: f32[3, 2]) {
    %c = Concat(%a, %b) {axis = 1} : f32[*]
    return %c
  })");
  EXPECT_NE(badDim.find("dimension 0 is 3"), std::string::npos) << badDim;
}

TEST(ShapeOps, TransposeFlattenSqueezeUnsqueeze) {
  auto g = inferred(R"(graph @g(%x: f32[batch, seq, 12, 64], %o: f32[batch, 1, seq]) {
    %t = Transpose(%x) {perm = [0, 2, 1, 3]} : f32[*]
    %r = Transpose(%x) : f32[*]
    %f = Flatten(%x) {axis = 2} : f32[*]
    %f0 = Flatten(%x) {axis = 0} : f32[*]
    %ax = Constant() {value = tensor<i64[2]>[1, -1]} : i64[2]
    %u = Unsqueeze(%o, %ax) : f32[*]
    %one = Constant() {value = tensor<i64[1]>[1]} : i64[1]
    %s = Squeeze(%o, %one) : f32[*]
    %sa = Squeeze(%o) : f32[*]
    return %t, %r, %f, %f0, %u, %s, %sa
  })");
  EXPECT_EQ(typeOf(*g, "t"), "f32[batch, 12, seq, 64]");
  EXPECT_EQ(typeOf(*g, "r"), "f32[64, 12, seq, batch]");
  EXPECT_EQ(typeOf(*g, "f"), "f32[batch*seq, 768]");
  EXPECT_EQ(typeOf(*g, "f0"), "f32[1, 768*batch*seq]");
  EXPECT_EQ(typeOf(*g, "u"), "f32[batch, 1, 1, seq, 1]");
  EXPECT_EQ(typeOf(*g, "s"), "f32[batch, seq]");
  EXPECT_EQ(typeOf(*g, "sa"), "f32[*]");  // batch or seq may be 1 at run time

  auto out = run(R"(graph @g(%x: f32[2, 3]) {
    %t = Transpose(%x) : f32[*]
    return %t
  })",
                 {{"x", f32({2, 3}, {1, 2, 3, 4, 5, 6})}});
  EXPECT_EQ(floatsOf(out["t"]), (std::vector<float>{1, 4, 2, 5, 3, 6}));

  std::string badSqueeze = inferError(R"(graph @g(%x: f32[2, 3]) {
    %one = Constant() {value = tensor<i64[1]>[1]} : i64[1]
    %s = Squeeze(%x, %one) : f32[*]
    return %s
  })");
  EXPECT_NE(badSqueeze.find("Squeeze (result %s): cannot squeeze dimension 1"), std::string::npos) << badSqueeze;
  std::string badPerm = inferError(R"(graph @g(%x: f32[2, 3]) {
    %t = Transpose(%x) {perm = [0, 0]} : f32[*]
    return %t
  })");
  EXPECT_NE(badPerm.find("not a permutation"), std::string::npos) << badPerm;
}

TEST(ShapeOps, TileAndPad) {
  auto g = inferred(R"(graph @g(%x: f32[batch, 3]) {
    %r = Constant() {value = tensor<i64[2]>[2, 1]} : i64[2]
    %t = Tile(%x, %r) : f32[*]
    %p = Constant() {value = tensor<i64[4]>[0, 1, 0, 2]} : i64[4]
    %q = Pad(%x, %p) : f32[*]
    return %t, %q
  })");
  EXPECT_EQ(typeOf(*g, "t"), "f32[2*batch, 3]");
  EXPECT_EQ(typeOf(*g, "q"), "f32[batch, 6]");

  auto out = run(R"(graph @g(%x: f32[2, 3]) {
    %r = Constant() {value = tensor<i64[2]>[1, 2]} : i64[2]
    %t = Tile(%x, %r) : f32[*]
    %p = Constant() {value = tensor<i64[2]>[2, 1]} : i64[2]
    %ax = Constant() {value = tensor<i64[1]>[1]} : i64[1]
    %v = Constant() {value = tensor<f32[]>[9.0]} : f32[]
    %c = Pad(%x, %p, %v, %ax) : f32[*]
    %re = Pad(%x, %p, none, %ax) {mode = "reflect"} : f32[*]
    %ed = Pad(%x, %p, none, %ax) {mode = "edge"} : f32[*]
    %wr = Pad(%x, %p, none, %ax) {mode = "wrap"} : f32[*]
    %n = Constant() {value = tensor<i64[4]>[0, -1, 0, 0]} : i64[4]
    %cr = Pad(%x, %n) : f32[*]
    return %t, %c, %re, %ed, %wr, %cr
  })",
                 {{"x", f32({2, 3}, {1, 2, 3, 4, 5, 6})}});
  EXPECT_EQ(floatsOf(out["t"]), (std::vector<float>{1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6}));
  EXPECT_EQ(floatsOf(out["c"]), (std::vector<float>{9, 9, 1, 2, 3, 9, 9, 9, 4, 5, 6, 9}));
  EXPECT_EQ(floatsOf(out["re"]), (std::vector<float>{3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5}));
  EXPECT_EQ(floatsOf(out["ed"]), (std::vector<float>{1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6}));
  EXPECT_EQ(floatsOf(out["wr"]), (std::vector<float>{2, 3, 1, 2, 3, 1, 5, 6, 4, 5, 6, 4}));
  EXPECT_EQ(floatsOf(out["cr"]), (std::vector<float>{2, 3, 5, 6}));
}

TEST(ShapeOps, ConstantOfShapeAndSize) {
  auto g = inferred(R"(graph @g(%ids: i64[batch, seq]) {
    %shape = Shape(%ids) : i64[*]
    %ones = ConstantOfShape(%shape) {value = tensor<i64[1]>[1]} : i64[*]
    %zeros = ConstantOfShape(%shape) : f32[*]
    %n = Size(%ids) : i64[*]
    %three = Constant() {value = tensor<i64[1]>[3]} : i64[1]
    %sevens = ConstantOfShape(%three) {value = tensor<i64[1]>[7]} : i64[*]
    return %ones, %zeros, %n, %sevens
  })");
  EXPECT_EQ(typeOf(*g, "ones"), "i64[batch, seq]");
  EXPECT_EQ(typeOf(*g, "zeros"), "f32[batch, seq]");
  EXPECT_EQ(typeOf(*g, "n"), "i64[]");
  EXPECT_EQ(knownIntsOf(*g, "n"), "[batch*seq]");
  EXPECT_EQ(knownIntsOf(*g, "sevens"), "[7, 7, 7]");
  EXPECT_EQ(knownIntsOf(*g, "ones"), "<unknown>");
  auto out = Interpreter(*g).run({{"ids", i64({2, 3}, {0, 0, 0, 0, 0, 0})}});
  EXPECT_EQ(intsOf(out["ones"]), (std::vector<int64_t>(6, 1)));
  EXPECT_EQ(out["zeros"].shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(intsOf(out["n"]), (std::vector<int64_t>{6}));
}

TEST(ShapeOps, NonZeroAndEyeLike) {
  auto g = inferred(R"(graph @g(%x: f32[2, 3]) {
    %nz = NonZero(%x) : i64[*]
    %eye = EyeLike(%x) {dtype = i64, k = 1} : i64[*]
    return %nz, %eye
  })");
  EXPECT_EQ(typeOf(*g, "eye"), "i64[2, 3]");
  EXPECT_TRUE(isUnknownDim(*g, "nz", 1));
  auto out = Interpreter(*g).run({{"x", f32({2, 3}, {0, 1, 0, 2, 0, 3})}});
  EXPECT_EQ(intsOf(out["nz"]), (std::vector<int64_t>{0, 1, 1, 1, 0, 2}));
  EXPECT_EQ(intsOf(out["eye"]), (std::vector<int64_t>{0, 1, 0, 0, 0, 1}));
}

TEST(ShapeOps, ReferenceErrorsNameTheOp) {
  std::string gather = runError(R"(graph @g(%x: f32[3], %i: i64[1]) {
    %a = Gather(%x, %i) : f32[*] loc("/embed/Gather")
    return %a
  })",
                                {{"x", f32({3}, {1, 2, 3})}, {"i", i64({1}, {-4})}});
  EXPECT_NE(gather.find("Gather '/embed/Gather'"), std::string::npos) << gather;
  EXPECT_NE(gather.find("index -4 is out of range for dimension 0 of size 3"), std::string::npos) << gather;
  std::string reshape = runError(R"(graph @g(%x: f32[4], %t: i64[2]) {
    %y = Reshape(%x, %t) : f32[*]
    return %y
  })",
                                 {{"x", f32({4}, {1, 2, 3, 4})}, {"t", i64({2}, {3, -1})}});
  EXPECT_NE(reshape.find("Reshape (result %y): cannot reshape [4] to [3, -1]"), std::string::npos) << reshape;
}

TEST(ShapeOps, KnownNonNegativeIsSoundForSizes) {
  EXPECT_TRUE(Dim::parse("past + seq").isKnownNonNegative());
  EXPECT_TRUE(Dim::parse("past + 3").isKnownNonNegative());
  EXPECT_TRUE(Dim(0).isKnownNonNegative());
  EXPECT_FALSE(Dim::parse("seq - 1").isKnownNonNegative());  // seq may be 0
  EXPECT_FALSE(Dim::parse("past - seq").isKnownNonNegative());
  EXPECT_FALSE(Dim(-2).isKnownNonNegative());
}

TEST(ShapeOps, KnownIntsFlowThroughReshapeSqueezeIdentity) {
  auto g = inferred(R"(graph @g(%x: f32[batch, seq, 64]) {
    %shape = Shape(%x) {start = 1, end = 2} : i64[*]
    %flat = Constant() {value = tensor<i64[1]>[-1]} : i64[1]
    %v = Reshape(%shape, %flat) : i64[*]
    %ax = Constant() {value = tensor<i64[1]>[0]} : i64[1]
    %scalar = Squeeze(%v, %ax) : i64[*]
    %same = Identity(%scalar) : i64[*]
    %zero = Constant() {value = tensor<i64[]>[0]} : i64[]
    %one = Constant() {value = tensor<i64[]>[1]} : i64[]
    %pos = Range(%zero, %same, %one) : i64[*]
    %ones = ConstantOfShape(%v) {value = tensor<i64[1]>[1]} : i64[*]
    return %pos, %ones
  })");
  EXPECT_EQ(knownIntsOf(*g, "v"), "[seq]");
  EXPECT_EQ(typeOf(*g, "scalar"), "i64[]");
  EXPECT_EQ(knownIntsOf(*g, "scalar"), "[seq]");
  EXPECT_EQ(typeOf(*g, "pos"), "i64[seq]");
  EXPECT_EQ(typeOf(*g, "ones"), "i64[seq]");
}
