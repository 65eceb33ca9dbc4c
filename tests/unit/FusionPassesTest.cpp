// Fusion passes: the fused ops' reference kernels on hand-computed values, the matchers on small
// graphs, and every fixture's outputs unchanged by fusion (+ DCE) on its golden inputs.
//
// Fixture tolerance: max |fused - unfused| / max |unfused| < 1e-5 per output. The fused kernels
// compute the same math but not the same operation order (row statistics accumulate in double
// instead of the chain's f32 ReduceMean, x / sqrt is x * rsqrt, rope tables are looked up instead
// of recomputed per token), so outputs move by f32 rounding (~1e-7 relative per op), not bitwise;
// 1e-5 is far above that noise and far below any real mistake (a wrong epsilon, rotary half or
// gelu form moves the logits by 1e-3 or more).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "OpTestSupport.h"
#include "frontend/OnnxImporter.h"
#include "ir/NpzFile.h"
#include "ir/Verifier.h"
#include "passes/DeadCodeElimination.h"
#include "passes/FuseActivations.h"
#include "passes/FuseNormalization.h"
#include "passes/FuseRotary.h"
#include "passes/Fusion.h"
#include "passes/PassRegistry.h"

namespace pagedc {
namespace {

using namespace pagedc::test;
namespace fs = std::filesystem;

// ---- Reference kernels --------------------------------------------------------------------------

TEST(FusedOps, RmsNormHandComputed) {
  // Row {3, 4}: mean square 12.5; eps 0 -> x / sqrt(12.5) * w.
  auto out = runOp("rms_norm", {f32({1, 2}, {3, 4}), f32({2}, {1, 2})}, {{"epsilon", 0.0}});
  float r = static_cast<float>(1.0 / std::sqrt(12.5));
  expectNear(out[0], {3 * r, 8 * r});
}

TEST(FusedOps, RmsNormResidualReturnsSum) {
  // x + residual = {1, -1, 7, 7}: rms 5 with eps 0.
  auto out = runOp("rms_norm", {f32({1, 4}, {0, 0, 5, 6}), f32({4}, {1, 1, 1, 2}), f32({1, 4}, {1, -1, 2, 1})}, {{"epsilon", 0.0}}, 2);
  expectNear(out[0], {0.2f, -0.2f, 1.4f, 2.8f});
  expectNear(out[1], {1, -1, 7, 7});
}

TEST(FusedOps, LayerNormHandComputed) {
  // Row {1, 2, 3, 4}: mean 2.5, variance 1.25; eps 0.25 -> invStd = 1 / sqrt(1.5).
  auto out = runOp("layer_norm", {f32({1, 4}, {1, 2, 3, 4}), f32({4}, {1, 1, 2, 2}), f32({4}, {0, 0, 0, 1})}, {{"epsilon", 0.25}});
  float inv = static_cast<float>(1.0 / std::sqrt(1.5));
  expectNear(out[0], {-1.5f * inv, -0.5f * inv, 2 * 0.5f * inv, 2 * 1.5f * inv + 1});
}

TEST(FusedOps, LayerNormResidualWithoutBias) {
  // No bias (omitted operand), residual makes the row {2, 2, 2, 2}: variance 0, eps 1 -> all zero.
  auto out = runOp("layer_norm", {f32({1, 4}, {1, 2, 3, 4}), f32({4}, {1, 1, 1, 1}), Tensor(), f32({1, 4}, {1, 0, -1, -2})}, {{"epsilon", 1.0}}, 2);
  expectNear(out[0], {0, 0, 0, 0});
  expectNear(out[1], {2, 2, 2, 2});
}

TEST(FusedOps, GeluBothForms) {
  // gelu(1) = 0.5 (1 + erf(1/sqrt2)) = 0.8413447; tanh form 0.5 (1 + tanh(0.7978846 * 1.044715)) = 0.8411920.
  expectNear(runOp("gelu", {f32({3}, {-1, 0, 1})}, {})[0], {-0.1586553f, 0, 0.8413447f}, 1e-6f);
  expectNear(runOp("gelu", {f32({3}, {-1, 0, 1})}, {{"approximate", "tanh"}})[0], {-0.1588080f, 0, 0.8411920f}, 1e-6f);
}

TEST(FusedOps, SiluAndGatedAct) {
  // silu(1) = 1 / (1 + e^-1) = 0.7310586, silu(-2) = -2 / (1 + e^2) = -0.2384058.
  expectNear(runOp("silu", {f32({3}, {1, 0, -2})}, {})[0], {0.7310586f, 0, -0.2384058f}, 1e-6f);
  expectNear(runOp("gated_act", {f32({3}, {1, 0, -2}), f32({3}, {2, 5, -1})}, {{"activation", "silu"}})[0],
             {1.4621172f, 0, 0.2384058f}, 1e-6f);
  expectNear(runOp("gated_act", {f32({2}, {1, -1}), f32({2}, {2, 2})}, {{"activation", "gelu_tanh"}})[0], {1.6823840f, -0.3176160f}, 1e-6f);
  EXPECT_THROW(runOp("gated_act", {f32({1}, {1}), f32({1}, {1})}, {{"activation", "relu"}}), Error);
}

TEST(FusedOps, RopeRotateHalfAndInterleaved) {
  // One head of 4 dims at positions {0, 1}; row 0 is the identity, row 1 rotates by 90 degrees
  // (cos 0, sin 1) pairs (0, 2), (1, 3) or, interleaved, (0, 1), (2, 3).
  Tensor x = f32({1, 1, 2, 4}, {1, 2, 3, 4, 1, 2, 3, 4});
  Tensor positions = i64({1, 2}, {0, 1});
  Tensor cos = f32({2, 2}, {1, 1, 0, 0});
  Tensor sin = f32({2, 2}, {0, 0, 1, 1});
  expectNear(runOp("rope", {x, positions, cos, sin}, {})[0], {1, 2, 3, 4, -3, -4, 1, 2});
  expectNear(runOp("rope", {x, positions, cos, sin}, {{"interleaved", 1}})[0], {1, 2, 3, 4, -2, 1, -4, 3});
}

TEST(FusedOps, RopePartialLeavesTheRest) {
  // rotary_dim 2 of 4: only dims (0, 1) rotate, by 90 degrees at position 1.
  Tensor x = f32({1, 1, 1, 4}, {1, 2, 3, 4});
  auto out = runOp("rope", {x, i64({1, 1}, {1}), f32({2, 1}, {1, 0}), f32({2, 1}, {0, 1})}, {{"rotary_dim", 2}});
  expectNear(out[0], {-2, 1, 3, 4});
  EXPECT_THROW(runOp("rope", {x, i64({1, 1}, {2}), f32({2, 1}, {1, 0}), f32({2, 1}, {0, 1})}, {{"rotary_dim", 2}}), Error);
}

TEST(FusedOps, ShapeRules) {
  auto types = inferredTypes(R"(
graph @g(%x: f32[b, s, 64], %r: f32[b, s, 64], %w: f32[64], %q: f32[b, 4, s, 16], %p: i64[b, s], %c: f32[128, 8]) {
  %n, %sum = rms_norm(%x, %w, %r) {epsilon = 1e-05} : f32[*], f32[*]
  %l = layer_norm(%x, %w, %w) {epsilon = 1e-05} : f32[*]
  %g = gated_act(%x, %r) {activation = "silu"} : f32[*]
  %e = rope(%q, %p, %c, %c) : f32[*]
  return %n, %sum, %l, %g, %e
})",
                             {"n", "sum", "l", "g", "e"});
  EXPECT_EQ(types, (std::vector<std::string>{"f32[b, s, 64]", "f32[b, s, 64]", "f32[b, s, 64]", "f32[b, s, 64]", "f32[b, 4, s, 16]"}));
  EXPECT_THROW(inferred(R"(
graph @g(%x: f32[b, s, 64], %w: f32[32]) {
  %n = rms_norm(%x, %w) : f32[*]
  return %n
})"),
               Error);
  EXPECT_THROW(inferred(R"(
graph @g(%q: f32[b, 4, s, 16], %p: i64[b, s], %c: f32[128, 4]) {
  %e = rope(%q, %p, %c, %c) : f32[*]
  return %e
})"),
               Error);
}

// ---- Matchers on small graphs -------------------------------------------------------------------

size_t countOp(const Graph& graph, std::string_view name) {
  return static_cast<size_t>(std::count_if(graph.ops().begin(), graph.ops().end(), [&](const auto& op) { return op->opName() == name; }));
}

// Runs `text` before and after `fuse` (+ DCE) on the inputs; the outputs must agree.
void expectSameOutputs(const std::string& text, const std::function<void(Graph&)>& fuse, const std::map<std::string, Tensor>& inputs,
                       std::unique_ptr<Graph>* fusedOut = nullptr) {
  auto reference = inferred(text);
  auto fused = inferred(text);
  fuse(*fused);
  eliminateDeadCode(*fused);
  verifyOrThrow(*fused);
  auto expected = Interpreter(*reference).run(inputs);
  auto actual = Interpreter(*fused).run(inputs);
  for (const auto& [name, tensor] : expected) expectTensorsNear(actual.at(name), tensor, 1e-5f);
  if (fusedOut) *fusedOut = std::move(fused);
}

TEST(FuseNormalization, DecomposedLayerNormWithReciprocal) {
  std::string text = R"(
graph @g(%x: f32[2, 4], %w: f32[4], %b: f32[4]) {
  %axes = Constant() {value = tensor<i64[1]>[-1]} : i64[1]
  %mean = ReduceMean(%x, %axes) : f32[*]
  %d = Sub(%x, %mean) : f32[*]
  %sq = Mul(%d, %d) : f32[*]
  %var = ReduceMean(%sq, %axes) : f32[*]
  %eps = Constant() {value = tensor<f32[]>[1e-05]} : f32[]
  %ve = Add(%eps, %var) : f32[*]
  %sd = Sqrt(%ve) : f32[*]
  %inv = Reciprocal(%sd) : f32[*]
  %n = Mul(%inv, %d) : f32[*]
  %s = Mul(%n, %w) : f32[*]
  %y = Add(%b, %s) : f32[*]
  return %y
})";
  std::unique_ptr<Graph> fused;
  expectSameOutputs(text, [](Graph& g) { EXPECT_EQ(fuseNormalization(g).at("layer_norm"), 1); },
                    {{"x", f32({2, 4}, {1, 2, 3, 5, -1, 0, 4, 2})}, {"w", f32({4}, {1, 2, 3, 4})}, {"b", f32({4}, {0, 1, 0, -1})}}, &fused);
  EXPECT_EQ(countOp(*fused, "layer_norm"), 1u);
  EXPECT_EQ(countOp(*fused, "ReduceMean"), 0u);
}

TEST(FuseNormalization, RmsNormWithCastsAndResidual) {
  // Pow + ReduceMean + Add + Sqrt + Div(x, .) with an f32 round trip and the sum read later.
  std::string text = R"(
graph @g(%a: f32[1, 2, 4], %b: f32[1, 2, 4], %w: f32[4]) {
  %sum = Add(%a, %b) : f32[*]
  %c = Cast(%sum) {to = f32} : f32[*]
  %two = Constant() {value = tensor<f32[]>[2.0]} : f32[]
  %sq = Pow(%c, %two) : f32[*]
  %axes = Constant() {value = tensor<i64[1]>[2]} : i64[1]
  %ms = ReduceMean(%sq, %axes) {keepdims = 1} : f32[*]
  %eps = Constant() {value = tensor<f32[]>[1e-06]} : f32[]
  %me = Add(%ms, %eps) : f32[*]
  %r = Sqrt(%me) : f32[*]
  %n = Div(%c, %r) : f32[*]
  %nc = Cast(%n) {to = f32} : f32[*]
  %y = Mul(%w, %nc) : f32[*]
  %later = Add(%c, %y) : f32[*]
  return %later
})";
  std::unique_ptr<Graph> fused;
  expectSameOutputs(text, [](Graph& g) { EXPECT_EQ(fuseNormalization(g).at("rms_norm+residual"), 1); },
                    {{"a", f32({1, 2, 4}, {1, 2, 3, 4, 0, -1, 2, 1})}, {"b", f32({1, 2, 4}, {0, 1, 0, 1, 3, 3, 1, 0})}, {"w", f32({4}, {1, 2, 1, 2})}},
                    &fused);
  EXPECT_EQ(countOp(*fused, "rms_norm"), 1u);
  EXPECT_EQ(countOp(*fused, "Sqrt"), 0u);
}

TEST(FuseActivations, GeluErfAndSwiGlu) {
  std::string text = R"(
graph @g(%x: f32[6], %u: f32[6]) {
  %k = Constant() {value = tensor<f32[]>[1.4142135]} : f32[]
  %d = Div(%x, %k) : f32[*]
  %e = Erf(%d) : f32[*]
  %one = Constant() {value = tensor<f32[]>[1.0]} : f32[]
  %p = Add(%one, %e) : f32[*]
  %h = Constant() {value = tensor<f32[]>[0.5]} : f32[]
  %xh = Mul(%h, %x) : f32[*]
  %gelu = Mul(%p, %xh) : f32[*]
  %s = Sigmoid(%u) : f32[*]
  %silu = Mul(%s, %u) : f32[*]
  %g = Mul(%u, %silu) : f32[*]
  %sg = Mul(%gelu, %x) : f32[*]
  return %gelu, %g, %sg
})";
  std::unique_ptr<Graph> fused;
  auto counts = std::make_shared<std::map<std::string, int64_t>>();
  expectSameOutputs(text, [&](Graph& g) { *counts = fuseActivations(g); },
                    {{"x", f32({6}, {-3, -1, 0, 0.5f, 1, 2})}, {"u", f32({6}, {-2, -0.5f, 0, 1, 2, 4})}}, &fused);
  // gelu stays (also a graph output); silu(u) * u is gated with up = u.
  EXPECT_EQ(countOp(*fused, "gelu"), 1u);
  EXPECT_EQ(countOp(*fused, "gated_act"), 1u);
  EXPECT_EQ(countOp(*fused, "Erf") + countOp(*fused, "Sigmoid"), 0u);
}

TEST(FuseActivations, QuickGeluIsNotGelu) {
  // x * sigmoid(1.702 x) approximates gelu to ~1e-2: it must not be fused as gelu or silu.
  auto graph = inferred(R"(
graph @g(%x: f32[4]) {
  %k = Constant() {value = tensor<f32[]>[1.702]} : f32[]
  %kx = Mul(%x, %k) : f32[*]
  %s = Sigmoid(%kx) : f32[*]
  %y = Mul(%x, %s) : f32[*]
  return %y
})");
  EXPECT_TRUE(fuseActivations(*graph).empty());
}

TEST(FuseRotary, PartialRotaryWithCacheGatherAndSplit) {
  // Rotary on the first 4 of 6 dims (Split halves), cos/sin gathered from [8, 4] caches whose
  // halves agree; x in the [batch, seq, heads, d] layout, so Transposes come in.
  std::vector<float> cache(32), sine(32);
  for (int p = 0; p < 8; ++p)
    for (int i = 0; i < 4; ++i) {
      cache[p * 4 + i] = std::cos(p * (i % 2 == 0 ? 1.0f : 0.1f));
      sine[p * 4 + i] = std::sin(p * (i % 2 == 0 ? 1.0f : 0.1f));
    }
  auto str = [](const std::vector<float>& v) {
    std::string s;
    for (float f : v) s += (s.empty() ? "" : ", ") + std::to_string(f);
    return s;
  };
  // rotate_half pairs i and i + 2, so cos[i] must equal cos[i + 2]: duplicate columns {0, 1}.
  for (int p = 0; p < 8; ++p) {
    cache[p * 4 + 2] = cache[p * 4 + 0];
    cache[p * 4 + 3] = cache[p * 4 + 1];
    sine[p * 4 + 2] = sine[p * 4 + 0];
    sine[p * 4 + 3] = sine[p * 4 + 1];
  }
  std::string text = R"(
graph @g(%x: f32[1, 3, 2, 6], %pos: i64[1, 3]) {
  %cc = Constant() {value = tensor<f32[8, 4]>[)" + str(cache) + R"(]} : f32[8, 4]
  %sc = Constant() {value = tensor<f32[8, 4]>[)" + str(sine) + R"(]} : f32[8, 4]
  %cg = Gather(%cc, %pos) : f32[*]
  %sg = Gather(%sc, %pos) : f32[*]
  %ax = Constant() {value = tensor<i64[1]>[2]} : i64[1]
  %cu = Unsqueeze(%cg, %ax) : f32[*]
  %su = Unsqueeze(%sg, %ax) : f32[*]
  %z = Constant() {value = tensor<i64[1]>[0]} : i64[1]
  %four = Constant() {value = tensor<i64[1]>[4]} : i64[1]
  %big = Constant() {value = tensor<i64[1]>[100]} : i64[1]
  %last = Constant() {value = tensor<i64[1]>[-1]} : i64[1]
  %xr = Slice(%x, %z, %four, %last) : f32[*]
  %xp = Slice(%x, %four, %big, %last) : f32[*]
  %x1, %x2 = Split(%xr) {axis = -1, num_outputs = 2} : f32[*], f32[*]
  %n2 = Neg(%x2) : f32[*]
  %rot = Concat(%n2, %x1) {axis = -1} : f32[*]
  %a = Mul(%xr, %cu) : f32[*]
  %b = Mul(%su, %rot) : f32[*]
  %e = Add(%a, %b) : f32[*]
  %y = Concat(%e, %xp) {axis = -1} : f32[*]
  return %y
})";
  std::vector<float> xs(36);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::sin(0.7f * static_cast<float>(i)) + 0.1f * static_cast<float>(i % 5);
  std::unique_ptr<Graph> fused;
  expectSameOutputs(text, [](Graph& g) { EXPECT_EQ(fuseRotary(g).at("rope"), 1); }, {{"x", f32({1, 3, 2, 6}, xs)}, {"pos", i64({1, 3}, {5, 0, 7})}},
                    &fused);
  ASSERT_EQ(countOp(*fused, "rope"), 1u);
  for (const auto& op : fused->ops())
    if (op->opName() == "rope") {
      EXPECT_EQ(op->intAttr("rotary_dim", 0), 4);
      EXPECT_EQ(op->operand(2)->type.str(), "f32[8, 2]");  // the cache's 8 rows, half width
    }
  EXPECT_EQ(countOp(*fused, "Neg"), 0u);
}

TEST(FuseRotary, InterleavedForm) {
  // GPT-J's rotate_every_two: stack(-x[..., 1::2], x[..., ::2]) flattened; cos repeat-interleaved
  // and computed at run time from the positions.
  std::string text = R"(
graph @g(%x: f32[1, 2, 3, 4], %pos: i64[1, 3]) {
  %ax = Constant() {value = tensor<i64[1]>[-1]} : i64[1]
  %pu = Unsqueeze(%pos, %ax) : f32[*]
  %pf = Cast(%pu) {to = f32} : f32[*]
  %freq = Constant() {value = tensor<f32[4]>[1.0, 1.0, 0.01, 0.01]} : f32[4]
  %ang = Mul(%pf, %freq) : f32[*]
  %c = Cos(%ang) : f32[*]
  %s = Sin(%ang) : f32[*]
  %one = Constant() {value = tensor<i64[1]>[1]} : i64[1]
  %cu = Unsqueeze(%c, %one) : f32[*]
  %su = Unsqueeze(%s, %one) : f32[*]
  %z = Constant() {value = tensor<i64[1]>[0]} : i64[1]
  %big = Constant() {value = tensor<i64[1]>[100]} : i64[1]
  %two = Constant() {value = tensor<i64[1]>[2]} : i64[1]
  %ev = Slice(%x, %z, %big, %ax, %two) : f32[*]
  %od = Slice(%x, %one, %big, %ax, %two) : f32[*]
  %no = Neg(%od) : f32[*]
  %a1 = Unsqueeze(%no, %ax) : f32[*]
  %a2 = Unsqueeze(%ev, %ax) : f32[*]
  %st = Concat(%a1, %a2) {axis = -1} : f32[*]
  %shape = Constant() {value = tensor<i64[4]>[1, 2, 3, 4]} : i64[4]
  %rot = Reshape(%st, %shape) : f32[*]
  %m1 = Mul(%x, %cu) : f32[*]
  %m2 = Mul(%rot, %su) : f32[*]
  %y = Add(%m2, %m1) : f32[*]
  return %y
})";
  std::vector<float> xs(24);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = std::cos(1.3f * static_cast<float>(i));
  std::unique_ptr<Graph> fused;
  expectSameOutputs(text, [](Graph& g) { EXPECT_EQ(fuseRotary(g, {.maxPositions = 64}).at("rope(interleaved)"), 1); },
                    {{"x", f32({1, 2, 3, 4}, xs)}, {"pos", i64({1, 3}, {2, 9, 40})}}, &fused);
  EXPECT_EQ(countOp(*fused, "Cos"), 0u);
}

// ---- Every fixture: fusion keeps the outputs ----------------------------------------------------

const fs::path& modelsDir() {
  static const fs::path dir = fs::path(PAGEDC_SOURCE_DIR) / "models";
  return dir;
}

struct FixtureCase {
  std::string name;
  fs::path directory;
  fs::path onnx;
  std::string step;
};

std::vector<FixtureCase> fixtureCases() {
  std::vector<FixtureCase> cases;
  auto add = [&](const std::string& name, const fs::path& directory, const fs::path& onnx) {
    for (const char* step : {"prefill", "decode"})
      if (fs::exists(directory / "golden" / (std::string(step) + "_inputs.npz"))) cases.push_back({name, directory, onnx, step});
  };
  if (std::ifstream in(modelsDir() / "fixtures" / "manifest.json"); in) {
    auto manifest = nlohmann::json::parse(in);
    for (const auto& fixture : manifest["fixtures"]) {
      std::string name = fixture["name"];
      add(name, modelsDir() / "fixtures" / name, modelsDir() / "fixtures" / fixture["onnx"].get<std::string>());
    }
  }
  if (std::ifstream in(modelsDir() / "stories260K" / "manifest.json"); in) {
    auto entry = nlohmann::json::parse(in);
    add(entry["name"], modelsDir() / "stories260K", modelsDir() / "stories260K" / entry["onnx"].get<std::string>());
  }
  return cases;
}

class FixtureFusion : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(FixtureFusion, FusedGraphComputesTheSameOutputs) {
  const FixtureCase& c = GetParam();
  auto reference = importOnnx(c.onnx.string());
  auto fused = importOnnx(c.onnx.string());
  auto counts = runFusions(*fused);
  EXPECT_FALSE(counts.empty()) << c.name << ": no fusion fired";
  std::string fired;
  for (const auto& [kind, n] : counts) fired += " " + kind + "=" + std::to_string(n);
  RecordProperty("fusions", fired);
  std::cout << "[fusions] " << c.name << ":" << fired << "\n";
  verifyOrThrow(*fused);
  auto inputs = readNpz((c.directory / "golden" / (c.step + "_inputs.npz")).string());
  auto expected = Interpreter(*reference).run(inputs);
  auto actual = Interpreter(*fused).run(inputs);
  for (const auto& [name, tensor] : expected) {
    ASSERT_EQ(actual.at(name).shape(), tensor.shape()) << name;
    double maxError = 0, maxValue = 0;
    for (int64_t i = 0; i < tensor.numElements(); ++i) {
      maxError = std::max(maxError, static_cast<double>(std::abs(actual.at(name).data<float>()[i] - tensor.data<float>()[i])));
      maxValue = std::max(maxValue, static_cast<double>(std::abs(tensor.data<float>()[i])));
    }
    EXPECT_LT(maxError, 1e-5 * std::max(maxValue, 1e-30)) << c.name << " " << c.step << " output " << name << ": max abs error " << maxError
                                                       << ", max abs value " << maxValue;
  }
}

std::string caseName(const ::testing::TestParamInfo<FixtureCase>& info) {
  std::string name = info.param.name + "_" + info.param.step;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureFusion, ::testing::ValuesIn(fixtureCases()), caseName);

TEST(FixtureFusion, CoversEveryFixture) { EXPECT_GE(fixtureCases().size(), 16u); }

TEST(FusionPasses, RegisteredByName) {
  for (const char* name : {"fuse-norms", "fuse-activations", "fuse-rotary", "fuse"}) EXPECT_NE(findPass(name), nullptr) << name;
}

}  // namespace
}  // namespace pagedc
