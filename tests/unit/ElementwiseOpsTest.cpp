// Element-wise ops: shape rules on symbolic shapes, knownInts arithmetic, and reference values checked by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "OpTestSupport.h"

namespace pagedc {
namespace {

using namespace test;

TEST(ElementwiseOps, BroadcastsSymbolicShapes) {
  auto graph = inferred(R"(graph @g(%mask: f32[batch, 1, seq, seq], %scores: f32[batch, heads, seq, seq], %x: f32[seq, 1], %b: f32[64], %s: f32[]) {
  %sum = Add(%mask, %scores) : f32[*]
  %outer = Mul(%x, %b) : f32[*]
  %scaled = Div(%scores, %s) : f32[*]
  %less = Less(%mask, %scores) : f32[*]
  return %sum, %outer, %scaled, %less
})");
  EXPECT_EQ(typeOf(*graph, "sum"), "f32[batch, heads, seq, seq]");
  EXPECT_EQ(typeOf(*graph, "outer"), "f32[seq, 64]");
  EXPECT_EQ(typeOf(*graph, "scaled"), "f32[batch, heads, seq, seq]");
  EXPECT_EQ(typeOf(*graph, "less"), "bool[batch, heads, seq, seq]");
}

TEST(ElementwiseOps, IncompatibleDimsAndTypesNameTheOp) {
  std::string message = errorOf([] {
    inferred(R"(graph @g(%a: f32[batch, 3], %b: f32[batch, 4]) {
  %c = Add(%a, %b) : f32[*] loc("/model/add")
  return %c
})");
  });
  EXPECT_NE(message.find("Add '/model/add' (result %c)"), std::string::npos) << message;
  EXPECT_NE(message.find("cannot broadcast"), std::string::npos) << message;

  message = errorOf([] {
    inferred(R"(graph @g(%a: f32[4], %b: f16[4]) {
  %c = Sub(%a, %b) : f32[*]
  return %c
})");
  });
  EXPECT_NE(message.find("Sub (result %c): operand 1 (%b) must have the element type of operand 0 (f32), got f16"), std::string::npos) << message;

  message = errorOf([] {
    inferred(R"(graph @g(%a: bool[4], %b: bool[4]) {
  %c = Less(%a, %b) : bool[*]
  return %c
})");
  });
  EXPECT_NE(message.find("must be numeric, got bool"), std::string::npos) << message;

  message = errorOf([] {
    inferred(R"(graph @g(%a: f32[4], %b: f32[4]) {
  %c = Mod(%a, %b) : f32[*]
  return %c
})");
  });
  EXPECT_NE(message.find("floating-point Mod requires fmod = 1"), std::string::npos) << message;

  message = errorOf([] {
    inferred(R"(graph @g(%a: f32[4]) {
  %c = Gelu(%a) {approximate = "fast"} : f32[*]
  return %c
})");
  });
  EXPECT_NE(message.find("'approximate' must be"), std::string::npos) << message;
}

TEST(ElementwiseOps, KnownIntsFlowThroughShapeArithmetic) {
  auto graph = parseGraph(R"(graph @g(%shape: i64[2], %other: i64[2]) {
  %one = Constant() {value = tensor<i64[1]>[1]} : i64[1]
  %two = Constant() {value = tensor<i64[]>[2]} : i64[]
  %plus = Add(%shape, %one) : i64[*]
  %doubled = Mul(%shape, %two) : i64[*]
  %halved = Div(%doubled, %two) : i64[*]
  %inexact = Div(%shape, %two) : i64[*]
  %diff = Sub(%plus, %shape) : i64[*]
  %neg = Neg(%shape) : i64[*]
  %narrow = Cast(%doubled) {to = i32} : i32[*]
  %asFloat = Cast(%shape) {to = f32} : f32[*]
  %folded = Max(%one, %two) : i64[*]
  %symbolicMax = Max(%shape, %one) : i64[*]
  %unknown = Add(%other, %one) : i64[*]
  %pick = Constant() {value = tensor<bool[2]>[1, 0]} : bool[2]
  %selected = Where(%pick, %shape, %doubled) : i64[*]
  return %plus, %halved, %inexact, %diff, %neg, %narrow, %asFloat, %folded, %symbolicMax, %unknown, %selected
})");
  // A graph input cannot carry contents; stand in for Shape(x) by giving the input symbolic ints.
  graph->findValue("shape")->knownInts = std::vector<Dim>{Dim::symbol("batch"), Dim::symbol("seq")};
  inferTypes(*graph);
  EXPECT_EQ(knownIntsOf(*graph, "plus"), "[batch + 1, seq + 1]");
  EXPECT_EQ(typeOf(*graph, "plus"), "i64[2]");
  EXPECT_EQ(knownIntsOf(*graph, "doubled"), "[2*batch, 2*seq]");
  EXPECT_EQ(knownIntsOf(*graph, "halved"), "[batch, seq]");
  EXPECT_EQ(knownIntsOf(*graph, "inexact"), "none");
  EXPECT_EQ(knownIntsOf(*graph, "diff"), "[1, 1]");
  EXPECT_EQ(knownIntsOf(*graph, "neg"), "[-batch, -seq]");
  EXPECT_EQ(knownIntsOf(*graph, "narrow"), "[2*batch, 2*seq]");
  EXPECT_EQ(typeOf(*graph, "narrow"), "i32[2]");
  EXPECT_EQ(knownIntsOf(*graph, "asFloat"), "none");
  EXPECT_EQ(knownIntsOf(*graph, "folded"), "[2]");
  EXPECT_EQ(knownIntsOf(*graph, "symbolicMax"), "none");
  EXPECT_EQ(knownIntsOf(*graph, "unknown"), "none");
  EXPECT_EQ(knownIntsOf(*graph, "selected"), "[batch, 2*seq]");
}

TEST(ElementwiseOps, IntegerDivTruncatesAndModFollowsTheSpec) {
  const char* text = R"(graph @g(%a: i64[4], %b: i64[4]) {
  %q = Div(%a, %b) : i64[*]
  %m = Mod(%a, %b) : i64[*]
  %f = Mod(%a, %b) {fmod = 1} : i64[*]
  return %q, %m, %f
})";
  auto out = runGraph(text, {{"a", i64({4}, {7, -7, 7, -7})}, {"b", i64({4}, {2, 2, -2, -2})}});
  EXPECT_EQ(intsOf(out.at("q")), (std::vector<int64_t>{3, -3, -3, 3}));
  out = runGraph(text, {{"a", i64({4}, {7, -7, 7, -7})}, {"b", i64({4}, {3, 3, -3, -3})}});
  EXPECT_EQ(intsOf(out.at("m")), (std::vector<int64_t>{1, 2, -2, -1}));  // sign of the divisor
  EXPECT_EQ(intsOf(out.at("f")), (std::vector<int64_t>{1, -1, 1, -1}));  // sign of the dividend
  std::string message = errorOf([&] { runGraph(text, {{"a", i64({4}, {1, 2, 3, 4})}, {"b", i64({4}, {1, 0, 1, 1})}}); });
  EXPECT_NE(message.find("Div (result %q): integer division by zero"), std::string::npos) << message;
}

TEST(ElementwiseOps, NarrowIntegersWrap) {
  auto out = runGraph(R"(graph @g(%a: i32[2], %b: i32[2]) {
  %s = Add(%a, %b) : i32[*]
  return %s
})",
                      {{"a", i64({2}, {2147483647, -5})}, {"b", i64({2}, {1, 2})}});
  EXPECT_EQ(intsOf(out.at("s")), (std::vector<int64_t>{-2147483648LL, -3}));
}

TEST(ElementwiseOps, UnaryMathMatchesHandValues) {
  auto out = runGraph(R"(graph @g(%x: f32[5]) {
  %erf = Erf(%x) : f32[*]
  %gelu = Gelu(%x) : f32[*]
  %geluTanh = Gelu(%x) {approximate = "tanh"} : f32[*]
  %sigmoid = Sigmoid(%x) : f32[*]
  %softplus = Softplus(%x) : f32[*]
  %round = Round(%x) : f32[*]
  %leaky = LeakyRelu(%x) {alpha = 0.5} : f32[*]
  %hard = HardSigmoid(%x) : f32[*]
  %relu = Relu(%x) : f32[*]
  %sign = Sign(%x) : f32[*]
  %abs = Abs(%x) : f32[*]
  %neg = Neg(%x) : f32[*]
  return %erf, %gelu, %geluTanh, %sigmoid, %softplus, %round, %leaky, %hard, %relu, %sign, %abs, %neg
})",
                      {{"x", f32({5}, {0.5f, 1.0f, 0.0f, -2.5f, 2.5f})}});
  auto erf = floatsOf(out.at("erf"));
  EXPECT_NEAR(erf[0], 0.5204998778f, 1e-7f);
  EXPECT_NEAR(erf[1], 0.8427007929f, 1e-7f);
  auto gelu = floatsOf(out.at("gelu"));
  EXPECT_NEAR(gelu[1], 0.8413447461f, 1e-6f);      // 0.5 * (1 + erf(1/sqrt 2))
  EXPECT_NEAR(gelu[3], -0.0155241633f, 1e-6f);
  auto geluTanh = floatsOf(out.at("geluTanh"));
  EXPECT_NEAR(geluTanh[1], 0.8411919906f, 1e-6f);  // the tanh form differs in the 4th digit
  EXPECT_NEAR(floatsOf(out.at("sigmoid"))[2], 0.5f, 1e-7f);
  EXPECT_NEAR(floatsOf(out.at("sigmoid"))[3], 0.0758581800f, 1e-7f);
  EXPECT_NEAR(floatsOf(out.at("softplus"))[2], 0.6931471806f, 1e-7f);
  // Halves round to even.
  EXPECT_EQ(floatsOf(out.at("round")), (std::vector<float>{0.0f, 1.0f, 0.0f, -2.0f, 2.0f}));
  EXPECT_EQ(floatsOf(out.at("leaky")), (std::vector<float>{0.5f, 1.0f, 0.0f, -1.25f, 2.5f}));
  EXPECT_EQ(floatsOf(out.at("hard")), (std::vector<float>{0.6f, 0.7f, 0.5f, 0.0f, 1.0f}));
  EXPECT_EQ(floatsOf(out.at("relu")), (std::vector<float>{0.5f, 1.0f, 0.0f, 0.0f, 2.5f}));
  EXPECT_EQ(floatsOf(out.at("sign")), (std::vector<float>{1.0f, 1.0f, 0.0f, -1.0f, 1.0f}));
  EXPECT_EQ(floatsOf(out.at("abs")), (std::vector<float>{0.5f, 1.0f, 0.0f, 2.5f, 2.5f}));
  EXPECT_EQ(floatsOf(out.at("neg")), (std::vector<float>{-0.5f, -1.0f, -0.0f, 2.5f, -2.5f}));
}

TEST(ElementwiseOps, LargeInputsStayFinite) {
  auto out = runGraph(R"(graph @g(%x: f32[2]) {
  %sigmoid = Sigmoid(%x) : f32[*]
  %softplus = Softplus(%x) : f32[*]
  return %sigmoid, %softplus
})",
                      {{"x", f32({2}, {-1000.0f, 1000.0f})}});
  EXPECT_EQ(floatsOf(out.at("sigmoid")), (std::vector<float>{0.0f, 1.0f}));
  EXPECT_EQ(floatsOf(out.at("softplus")), (std::vector<float>{0.0f, 1000.0f}));
}

TEST(ElementwiseOps, CastRoundsToSixteenBitFloatsAndTruncatesToIntegers) {
  auto out = runGraph(R"(graph @g(%x: f32[6], %i: i64[3], %b: bool[2]) {
  %half = Cast(%x) {to = f16} : f16[*]
  %brain = Cast(%x) {to = bf16} : bf16[*]
  %int = Cast(%x) {to = i32} : i32[*]
  %flag = Cast(%x) {to = bool} : bool[*]
  %byte = Cast(%i) {to = i8} : i8[*]
  %fromBool = Cast(%b) {to = f32} : f32[*]
  %like = CastLike(%x, %i) : i64[*]
  return %half, %brain, %int, %flag, %byte, %fromBool, %like
})",
                      {{"x", f32({6}, {1.00048828125f, 1.000732421875f, 0.1f, 65520.0f, 2.7f, -2.7f})},
                       {"i", i64({3}, {300, -129, 5})},
                       {"b", boolean({2}, {1, 0})}});
  auto half = floatsOf(out.at("half"));
  EXPECT_EQ(half[0], 1.0f);            // 1 + 2^-11 is halfway: ties to even
  EXPECT_EQ(half[1], 1.0009765625f);   // 1 + 0.75 ulp rounds up
  EXPECT_EQ(half[2], 0.0999755859375f);
  EXPECT_TRUE(std::isinf(half[3]));    // beyond the largest half (65504) by more than half an ulp
  EXPECT_EQ(half[4], 2.69921875f);
  auto brain = floatsOf(out.at("brain"));
  EXPECT_EQ(brain[0], 1.0f);
  EXPECT_EQ(brain[2], 0.10009765625f);
  EXPECT_EQ(brain[3], 65536.0f);
  EXPECT_EQ(intsOf(out.at("int")), (std::vector<int64_t>{1, 1, 0, 65520, 2, -2}));
  EXPECT_EQ(intsOf(out.at("flag")), (std::vector<int64_t>{1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(intsOf(out.at("byte")), (std::vector<int64_t>{44, 127, 5}));  // wraps like a narrowing cast
  EXPECT_EQ(floatsOf(out.at("fromBool")), (std::vector<float>{1.0f, 0.0f}));
  EXPECT_EQ(intsOf(out.at("like")), (std::vector<int64_t>{1, 1, 0, 65520, 2, -2}));
  EXPECT_EQ(out.at("like").dtype(), DType::I64);
}

TEST(ElementwiseOps, ComparisonsAndLogic) {
  auto out = runGraph(R"(graph @g(%a: f32[3], %b: f32[], %p: bool[2], %q: bool[2, 1]) {
  %eq = Equal(%a, %b) : bool[*]
  %lt = Less(%a, %b) : bool[*]
  %le = LessOrEqual(%a, %b) : bool[*]
  %gt = Greater(%a, %b) : bool[*]
  %ge = GreaterOrEqual(%a, %b) : bool[*]
  %and = And(%p, %q) : bool[*]
  %or = Or(%p, %q) : bool[*]
  %xor = Xor(%p, %q) : bool[*]
  %not = Not(%p) : bool[*]
  return %eq, %lt, %le, %gt, %ge, %and, %or, %xor, %not
})",
                      {{"a", f32({3}, {1, 2, 3})}, {"b", f32({}, {2})}, {"p", boolean({2}, {1, 0})}, {"q", boolean({2, 1}, {1, 0})}});
  EXPECT_EQ(intsOf(out.at("eq")), (std::vector<int64_t>{0, 1, 0}));
  EXPECT_EQ(intsOf(out.at("lt")), (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(intsOf(out.at("le")), (std::vector<int64_t>{1, 1, 0}));
  EXPECT_EQ(intsOf(out.at("gt")), (std::vector<int64_t>{0, 0, 1}));
  EXPECT_EQ(intsOf(out.at("ge")), (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(out.at("and").shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(intsOf(out.at("and")), (std::vector<int64_t>{1, 0, 0, 0}));
  EXPECT_EQ(intsOf(out.at("or")), (std::vector<int64_t>{1, 1, 1, 0}));
  EXPECT_EQ(intsOf(out.at("xor")), (std::vector<int64_t>{0, 1, 1, 0}));
  EXPECT_EQ(intsOf(out.at("not")), (std::vector<int64_t>{0, 1}));
}

TEST(ElementwiseOps, VariadicOpsBroadcastAllOperands) {
  auto graph = inferred(R"(graph @g(%a: f32[seq, 1], %b: f32[4], %c: f32[]) {
  %max = Max(%a, %b, %c) : f32[*]
  return %max
})");
  EXPECT_EQ(typeOf(*graph, "max"), "f32[seq, 4]");

  auto out = runGraph(R"(graph @g(%a: f32[2, 1], %b: f32[3], %c: f32[]) {
  %max = Max(%a, %b, %c) : f32[*]
  %min = Min(%a, %b, %c) : f32[*]
  %sum = Sum(%a, %b, %c) : f32[*]
  %mean = Mean(%a, %b, %c) : f32[*]
  %one = Sum(%b) : f32[*]
  return %max, %min, %sum, %mean, %one
})",
                      {{"a", f32({2, 1}, {0, 10})}, {"b", f32({3}, {1, 5, 9})}, {"c", f32({}, {3})}});
  EXPECT_EQ(floatsOf(out.at("max")), (std::vector<float>{3, 5, 9, 10, 10, 10}));
  EXPECT_EQ(floatsOf(out.at("min")), (std::vector<float>{0, 0, 0, 1, 3, 3}));
  EXPECT_EQ(floatsOf(out.at("sum")), (std::vector<float>{4, 8, 12, 14, 18, 22}));
  EXPECT_EQ(floatsOf(out.at("mean")), (std::vector<float>{4.0f / 3, 8.0f / 3, 4, 14.0f / 3, 6, 22.0f / 3}));
  EXPECT_EQ(floatsOf(out.at("one")), (std::vector<float>{1, 5, 9}));

  auto nan = runGraph(R"(graph @g(%a: f32[2], %b: f32[2]) {
  %max = Max(%a, %b) : f32[*]
  return %max
})",
                      {{"a", f32({2}, {std::nanf(""), 1})}, {"b", f32({2}, {1, std::nanf("")})}});
  auto values = floatsOf(nan.at("max"));
  EXPECT_TRUE(std::isnan(values[0]) && std::isnan(values[1]));
}

TEST(ElementwiseOps, PowKeepsTheBaseType) {
  auto graph = inferred(R"(graph @g(%x: f32[batch, 2], %e: i64[]) {
  %p = Pow(%x, %e) : f32[*]
  return %p
})");
  EXPECT_EQ(typeOf(*graph, "p"), "f32[batch, 2]");
  auto out = runGraph(R"(graph @g(%x: f32[3], %e: i64[], %f: f32[3], %i: i64[3]) {
  %cube = Pow(%x, %e) : f32[*]
  %root = Pow(%x, %f) : f32[*]
  %ipow = Pow(%i, %e) : i64[*]
  return %cube, %root, %ipow
})",
                      {{"x", f32({3}, {2, 3, 4})}, {"e", i64({}, {3})}, {"f", f32({3}, {0.5f, 0.5f, -0.5f})}, {"i", i64({3}, {2, -3, 10})}});
  EXPECT_EQ(floatsOf(out.at("cube")), (std::vector<float>{8, 27, 64}));
  auto root = floatsOf(out.at("root"));
  EXPECT_NEAR(root[0], 1.4142135624f, 1e-7f);
  EXPECT_NEAR(root[2], 0.5f, 1e-7f);
  EXPECT_EQ(intsOf(out.at("ipow")), (std::vector<int64_t>{8, -27, 1000}));
}

TEST(ElementwiseOps, IsNaNAndIsInf) {
  float inf = std::numeric_limits<float>::infinity();
  auto out = runGraph(R"(graph @g(%x: f32[4]) {
  %nan = IsNaN(%x) : bool[*]
  %inf = IsInf(%x) : bool[*]
  %pos = IsInf(%x) {detect_negative = 0} : bool[*]
  return %nan, %inf, %pos
})",
                      {{"x", f32({4}, {std::nanf(""), inf, -inf, 1})}});
  EXPECT_EQ(intsOf(out.at("nan")), (std::vector<int64_t>{1, 0, 0, 0}));
  EXPECT_EQ(intsOf(out.at("inf")), (std::vector<int64_t>{0, 1, 1, 0}));
  EXPECT_EQ(intsOf(out.at("pos")), (std::vector<int64_t>{0, 1, 0, 0}));
}

TEST(ElementwiseOps, ClipWhereAndDropout) {
  auto graph = inferred(R"(graph @g(%c: bool[batch, 1, seq], %x: f32[heads, 1], %y: f32[]) {
  %w = Where(%c, %x, %y) : f32[*]
  %d, %mask = Dropout(%x) : f32[*], bool[*]
  return %w, %d, %mask
})");
  EXPECT_EQ(typeOf(*graph, "w"), "f32[batch, heads, seq]");
  EXPECT_EQ(typeOf(*graph, "mask"), "bool[heads, 1]");

  auto out = runGraph(R"(graph @g(%x: f32[4], %lo: f32[], %hi: f32[1], %i: i64[4], %ilo: i64[], %c: bool[2, 1]) {
  %clipped = Clip(%x, %lo, %hi) : f32[*]
  %floor = Clip(%x, %lo) : f32[*]
  %ceiling = Clip(%x, none, %hi) : f32[*]
  %iclip = Clip(%i, %ilo) : i64[*]
  %w = Where(%c, %x, %lo) : f32[*]
  %d, %mask = Dropout(%x) : f32[*], bool[*]
  return %clipped, %floor, %ceiling, %iclip, %w, %d, %mask
})",
                      {{"x", f32({4}, {-2, 0.5f, 3, 7})},
                       {"lo", f32({}, {0})},
                       {"hi", f32({1}, {4})},
                       {"i", i64({4}, {-5, 0, 5, 10})},
                       {"ilo", i64({}, {1})},
                       {"c", boolean({2, 1}, {1, 0})}});
  EXPECT_EQ(floatsOf(out.at("clipped")), (std::vector<float>{0, 0.5f, 3, 4}));
  EXPECT_EQ(floatsOf(out.at("floor")), (std::vector<float>{0, 0.5f, 3, 7}));
  EXPECT_EQ(floatsOf(out.at("ceiling")), (std::vector<float>{-2, 0.5f, 3, 4}));
  EXPECT_EQ(intsOf(out.at("iclip")), (std::vector<int64_t>{1, 1, 5, 10}));
  EXPECT_EQ(floatsOf(out.at("w")), (std::vector<float>{-2, 0.5f, 3, 7, 0, 0, 0, 0}));
  EXPECT_EQ(floatsOf(out.at("d")), (std::vector<float>{-2, 0.5f, 3, 7}));
  EXPECT_EQ(intsOf(out.at("mask")), (std::vector<int64_t>{1, 1, 1, 1}));

  std::string message = errorOf([] {
    inferred(R"(graph @g(%x: f32[4]) {
  %t = Constant() {value = tensor<bool[]>[1]} : bool[]
  %d = Dropout(%x, none, %t) : f32[*]
  return %d
})");
  });
  EXPECT_NE(message.find("only inference"), std::string::npos) << message;
  // Training mode with ratio 0 is the identity, which is allowed.
  EXPECT_EQ(errorOf([] {
              inferred(R"(graph @g(%x: f32[4]) {
  %t = Constant() {value = tensor<bool[]>[1]} : bool[]
  %r = Constant() {value = tensor<f32[]>[0]} : f32[]
  %d = Dropout(%x, %r, %t) : f32[*]
  return %d
})");
            }),
            "");
}

}  // namespace
}  // namespace pagedc
