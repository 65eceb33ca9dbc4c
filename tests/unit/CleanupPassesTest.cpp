// The cleanup passes (fold-shape-arith, fold-constants, canonicalize, cse, dce): unit cases on small
// graphs, and on every fixture a check that cleanup removes ops without changing what the graph computes.
//
// Tolerance on fixtures: bitwise. The passes only fold exact integer shape arithmetic, evaluate
// constant ops with the same reference kernels the interpreter runs (in the same f32 storage, and
// never storing a result the declared dtype would round), and drop ops that are exact identities,
// so the interpreter must produce the very same bits before and after.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "frontend/OnnxImporter.h"
#include "ir/Interpreter.h"
#include "ir/NpzFile.h"
#include "ir/OpDef.h"
#include "ir/TextFormat.h"
#include "ir/TypeInference.h"
#include "ir/Verifier.h"
#include "passes/Canonicalize.h"
#include "passes/Cleanup.h"
#include "passes/CommonSubexpressionElimination.h"
#include "passes/ConstantFolding.h"
#include "passes/DeadCodeElimination.h"
#include "passes/ShapeArithmeticFolding.h"

namespace pagedc {
namespace {

namespace fs = std::filesystem;

size_t countOpsNamed(const Graph& graph, std::string_view name) {
  size_t n = 0;
  for (const auto& op : graph.ops()) n += op->opName() == name ? 1 : 0;
  return n;
}

const Op* producerOfOutput(const Graph& graph, size_t i) { return graph.outputs.at(i)->producer; }

TEST(CleanupPasses, ShapeArithmeticFoldsKnownDimsOnly) {
  auto graph = parseGraph(R"(graph @g(%x: f32[2, seq, 8]) {
    %shape = Shape(%x) : i64[3]
    %i0 = Constant() {value = tensor<i64[]>[0]} : i64[]
    %i1 = Constant() {value = tensor<i64[]>[1]} : i64[]
    %b = Gather(%shape, %i0) {axis = 0} : i64[]
    %s = Gather(%shape, %i1) {axis = 0} : i64[]
    return %b, %s
  })");
  inferTypes(*graph);
  EXPECT_EQ(foldShapeArithmetic(*graph), 1u);
  eliminateDeadCode(*graph);
  verifyOrThrow(*graph);
  EXPECT_EQ(producerOfOutput(*graph, 0)->opName(), "Constant");
  EXPECT_EQ(graph->outputs[0]->name, "b");  // the output keeps its name
  EXPECT_EQ(producerOfOutput(*graph, 1)->opName(), "Gather");  // seq is symbolic
  EXPECT_EQ(countOpsNamed(*graph, "Shape"), 1u);
}

TEST(CleanupPasses, ConstantFoldingUsesSmallWeightsOnly) {
  auto store = std::make_shared<WeightStore>();
  store->add("tiny", Tensor::fromValues(DType::F32, {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6}));
  std::vector<float> medium(16 * 8);
  for (size_t i = 0; i < medium.size(); ++i) medium[i] = static_cast<float>(i) * 0.5f;
  store->add("medium", Tensor::fromValues(DType::F32, {16, 8}, medium));
  store->add("big", Tensor::zeros(DType::F32, {128, 64}));
  auto graph = parseGraph(R"(graph @g(%x: f32[3, 2]) {
    %tiny = weight() {name = "tiny"} : f32[2, 3]
    %t = Transpose(%tiny) {perm = [1, 0]} : f32[3, 2]
    %y = Add(%x, %t) : f32[3, 2]
    %medium = weight() {name = "medium"} : f32[16, 8]
    %mt = Transpose(%medium) {perm = [1, 0]} : f32[8, 16]
    %big = weight() {name = "big"} : f32[128, 64]
    %bt = Transpose(%big) {perm = [1, 0]} : f32[64, 128]
    return %y, %mt, %bt
  })", "test", store);
  auto x = Tensor::fromValues(DType::F32, {3, 2}, std::vector<float>{0.5f, -1, 2, 3, -4, 7});
  auto before = Interpreter(*graph).run({{"x", x}});
  inferTypes(*graph);
  EXPECT_EQ(foldConstants(*graph), 2u);  // tiny and medium; big stays a Transpose of the weight
  eliminateDeadCode(*graph);
  verifyOrThrow(*graph);
  EXPECT_EQ(graph->ops().size(), 5u) << printGraph(*graph);
  const Op* mt = producerOfOutput(*graph, 1);
  ASSERT_EQ(mt->opName(), "weight");  // 128 elements: over the inline limit, so a new weight
  EXPECT_EQ(graph->outputs[1]->name, "mt");
  EXPECT_TRUE(store->contains(mt->stringAttr("name", "")));
  EXPECT_EQ(producerOfOutput(*graph, 2)->opName(), "Transpose");
  EXPECT_EQ(producerOfOutput(*graph, 0)->operand(1)->producer->opName(), "Constant");
  auto after = Interpreter(*graph).run({{"x", x}});
  for (const auto& [name, tensor] : before)
    EXPECT_EQ(std::memcmp(after.at(name).bytes(), tensor.bytes(), tensor.byteSize()), 0) << name;
}

TEST(CleanupPasses, ConstantFoldingKeepsF16ResultsTheReferenceComputesInF32) {
  auto graph = parseGraph(R"(graph @g() {
    %a = Constant() {value = tensor<f16[2]>[0.1, 0.3]} : f16[2]
    %b = Constant() {value = tensor<f16[2]>[0.7, 0.9]} : f16[2]
    %p = Mul(%a, %b) : f16[2]
    %one = Constant() {value = tensor<f16[2]>[1.0, 2.0]} : f16[2]
    %q = Add(%one, %one) : f16[2]
    return %p, %q
  })");
  inferTypes(*graph);
  EXPECT_EQ(foldConstants(*graph), 1u);  // 1 + 1 and 2 + 2 are exact in f16; 0.1 * 0.7 is not
  EXPECT_EQ(producerOfOutput(*graph, 0)->opName(), "Mul");
  EXPECT_EQ(producerOfOutput(*graph, 1)->opName(), "Constant");
}

TEST(CleanupPasses, CanonicalizeKeepsOutputNames) {
  auto graph = parseGraph(R"(graph @g(%x: f32[4, 8]) {
    %r = Relu(%x) : f32[4, 8]
    %y = Identity(%r) : f32[4, 8]
    %z = Identity(%x) : f32[4, 8]
    return %y, %z
  })");
  inferTypes(*graph);
  // %y's Identity goes (Relu's result takes the name %y); %z's cannot: %x is a graph input.
  EXPECT_EQ(canonicalize(*graph), 1u);
  eliminateDeadCode(*graph);
  verifyOrThrow(*graph);
  EXPECT_EQ(graph->outputs[0]->name, "y");
  EXPECT_EQ(producerOfOutput(*graph, 0)->opName(), "Relu");
  EXPECT_EQ(graph->outputs[1]->name, "z");
  EXPECT_EQ(producerOfOutput(*graph, 1)->opName(), "Identity");
}

TEST(CleanupPasses, CseMergesEqualOpsAndConstants) {
  auto graph = parseGraph(R"(graph @g(%x: f32[4]) {
    %c1 = Constant() {value = tensor<f32[]>[2.0]} : f32[]
    %c2 = Constant() {value = tensor<f32[]>[2.0]} : f32[]
    %c3 = Constant() {value = tensor<f32[]>[-2.0]} : f32[]
    %a = Mul(%x, %c1) : f32[4]
    %b = Mul(%x, %c2) : f32[4]
    %c = Mul(%x, %c3) : f32[4]
    %s = Add(%a, %b) : f32[4]
    %t = Add(%s, %c) : f32[4]
    return %t
  })");
  inferTypes(*graph);
  EXPECT_EQ(eliminateCommonSubexpressions(*graph), 2u);  // %c2 into %c1, then %b into %a
  eliminateDeadCode(*graph);
  EXPECT_EQ(graph->ops().size(), 6u) << printGraph(*graph);
}

// --- Every fixture: cleanup shrinks the graph and computes exactly what the imported one does. ---

struct FixtureCase {
  std::string name;  // "llama-past"
  fs::path onnx;
  std::string form;  // "past", "nopast", "dynamo", "genai"
};

void PrintTo(const FixtureCase& c, std::ostream* out) { *out << c.name; }

// The random-weight fixtures of models/fixtures/manifest.json, and the trained stories260K model.
std::vector<FixtureCase> fixtureCases() {
  std::vector<FixtureCase> cases;
  fs::path models = fs::path(PAGEDC_SOURCE_DIR) / "models";
  if (std::ifstream in(models / "fixtures" / "manifest.json"); in) {
    auto manifest = nlohmann::json::parse(in);
    for (const auto& entry : manifest["fixtures"])
      cases.push_back({entry["name"], models / "fixtures" / entry["onnx"].get<std::string>(), entry.value("form", "")});
  }
  if (std::ifstream in(models / "stories260K" / "manifest.json"); in) {
    auto entry = nlohmann::json::parse(in);
    cases.push_back({entry["name"], models / "stories260K" / entry["onnx"].get<std::string>(), entry.value("form", "")});
  }
  return cases;
}

class CleanupOnFixture : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(CleanupOnFixture, ShrinksTheGraphAndKeepsOutputsBitwise) {
  const std::string& fixture = GetParam().name;
  std::string path = GetParam().onnx.string();
  auto original = importOnnx(path);
  auto cleaned = importOnnx(path);
  size_t opsBefore = cleaned->ops().size();
  size_t shapesBefore = countOpsNamed(*cleaned, "Shape");
  CleanupResult result = runCleanup(*cleaned);
  size_t opsAfter = cleaned->ops().size();
  std::cout << "[cleanup] " << fixture << ": " << opsBefore << " -> " << opsAfter << " ops (Shape " << shapesBefore << " -> "
            << countOpsNamed(*cleaned, "Shape") << ", Constant " << countOpsNamed(*original, "Constant") << " -> "
            << countOpsNamed(*cleaned, "Constant") << ") in " << result.rounds << " rounds, " << result.rewrites << " rewrites\n";
  // onnxruntime-genai's builder emits an already optimised graph (fused attention, no shape
  // arithmetic): there may be nothing left to remove. Every other export has some.
  if (GetParam().form == "genai") EXPECT_LE(opsAfter, opsBefore);
  else EXPECT_LT(opsAfter, opsBefore);
  EXPECT_LT(result.rounds, 16u) << "cleanup did not reach a fixed point";
  auto problems = verifyGraph(*cleaned);
  EXPECT_TRUE(problems.empty()) << problems.front();
  // The interface is unchanged: same inputs and outputs, by name, in order.
  ASSERT_EQ(cleaned->inputs.size(), original->inputs.size());
  for (size_t i = 0; i < original->inputs.size(); ++i) EXPECT_EQ(cleaned->inputs[i]->name, original->inputs[i]->name);
  ASSERT_EQ(cleaned->outputs.size(), original->outputs.size());
  for (size_t i = 0; i < original->outputs.size(); ++i) EXPECT_EQ(cleaned->outputs[i]->name, original->outputs[i]->name);
  // A second run finds nothing left to do.
  EXPECT_EQ(runCleanup(*cleaned).rewrites, 0u);

  Interpreter reference(*original);
  Interpreter optimized(*cleaned);
  fs::path golden = fs::path(path).parent_path() / "golden";
  size_t steps = 0;
  for (const char* step : {"prefill", "decode"}) {
    fs::path inputsPath = golden / (std::string(step) + "_inputs.npz");
    if (!fs::exists(inputsPath)) continue;
    ++steps;
    auto inputs = readNpz(inputsPath.string());
    auto expected = reference.run(inputs);
    auto actual = optimized.run(inputs);
    ASSERT_EQ(actual.size(), expected.size());
    for (const auto& [name, tensor] : expected) {
      ASSERT_TRUE(actual.count(name)) << step << ": missing output " << name;
      const Tensor& ours = actual.at(name);
      ASSERT_EQ(ours.dtype(), tensor.dtype()) << step << " " << name;
      ASSERT_EQ(ours.shape(), tensor.shape()) << step << " " << name;
      EXPECT_EQ(std::memcmp(ours.bytes(), tensor.bytes(), tensor.byteSize()), 0) << step << ": output " << name << " differs";
    }
  }
  EXPECT_GT(steps, 0u) << "no golden inputs for " << fixture;
}

std::string fixtureCaseName(const ::testing::TestParamInfo<FixtureCase>& info) {
  std::string name = info.param.name;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

TEST(CleanupPasses, FixtureListIsNotEmpty) {
  // Guards against the fixture suite silently running nothing.
  EXPECT_GE(fixtureCases().size(), 8u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CleanupOnFixture, ::testing::ValuesIn(fixtureCases()), fixtureCaseName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CleanupOnFixture);

}  // namespace
}  // namespace pagedc
