// The reference executor against external goldens: every fixture in models/fixtures/manifest.json,
// imported from ONNX and run op by op, must reproduce onnxruntime's outputs (and transformers' logits).
//
// Tolerance: max |ours - theirs| / max |theirs| < 1e-4 per output. Both sides compute in f32 but
// sum in different orders (onnxruntime's MLAS GEMMs block and vectorise), so bitwise equality is
// not expected; 1e-4 relative to the output's scale is far above f32 reordering noise (~1e-6 here)
// and far below any real error (a wrong mask or rotary convention moves logits by O(1)).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "frontend/OnnxImporter.h"
#include "ir/Interpreter.h"
#include "ir/NpzFile.h"
#include "ir/TextFormat.h"
#include "ir/Verifier.h"

namespace pagedc {
namespace {

namespace fs = std::filesystem;
constexpr double kRelativeTolerance = 1e-4;

const fs::path& fixturesDir() {
  static const fs::path dir = fs::path(PAGEDC_SOURCE_DIR) / "models" / "fixtures";
  return dir;
}

struct GoldenCase {
  std::string fixture;   // "llama-past"
  std::string onnxPath;  // relative to fixturesDir
  std::string step;      // "prefill" or "decode"
};

std::vector<GoldenCase> allGoldenCases() {
  std::vector<GoldenCase> cases;
  std::ifstream in(fixturesDir() / "manifest.json");
  if (!in) return cases;
  auto manifest = nlohmann::json::parse(in);
  for (const auto& fixture : manifest["fixtures"]) {
    for (const char* step : {"prefill", "decode"}) {
      std::string inputs = fixture["name"].get<std::string>() + "/golden/" + step + "_inputs.npz";
      if (fs::exists(fixturesDir() / inputs)) cases.push_back({fixture["name"], fixture["onnx"], step});
    }
  }
  return cases;
}

void PrintTo(const GoldenCase& c, std::ostream* out) { *out << c.fixture << " " << c.step; }

struct Comparison {
  double maxAbsError = 0;
  double maxAbsReference = 0;
  double relative() const { return maxAbsReference > 0 ? maxAbsError / maxAbsReference : maxAbsError; }
};

Comparison compare(const Tensor& ours, const Tensor& reference, const std::vector<bool>* positionMask = nullptr,
                   int64_t elementsPerPosition = 1) {
  Comparison result;
  Tensor a = ours.convertTo(DType::F32);
  Tensor b = reference.convertTo(DType::F32);
  for (int64_t i = 0; i < b.numElements(); ++i) {
    if (positionMask && !(*positionMask)[static_cast<size_t>(i / elementsPerPosition)]) continue;
    double x = a.data<float>()[i];
    double y = b.data<float>()[i];
    result.maxAbsError = std::max(result.maxAbsError, std::abs(x - y));
    result.maxAbsReference = std::max(result.maxAbsReference, std::abs(y));
  }
  return result;
}

class FixtureGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(FixtureGolden, ReferenceExecutorMatchesOnnxRuntime) {
  const GoldenCase& c = GetParam();
  auto graph = importOnnx((fixturesDir() / c.onnxPath).string());
  Interpreter interpreter(*graph);
  auto inputs = readNpz((fixturesDir() / c.fixture / "golden" / (c.step + "_inputs.npz")).string());
  auto expected = readNpz((fixturesDir() / c.fixture / "golden" / (c.step + "_outputs.npz")).string());
  auto outputs = interpreter.run(inputs);
  ASSERT_EQ(outputs.size(), expected.size());
  for (const auto& [name, reference] : expected) {
    ASSERT_TRUE(outputs.count(name)) << "missing output " << name;
    const Tensor& ours = outputs.at(name);
    ASSERT_EQ(ours.shape(), reference.shape()) << name;
    Comparison cmp = compare(ours, reference);
    EXPECT_LT(cmp.relative(), kRelativeTolerance)
        << c.fixture << " " << c.step << " output " << name << ": max abs error " << cmp.maxAbsError
        << ", max abs value " << cmp.maxAbsReference;
  }
}

// transformers' own logits (key `logits` for the prefill, `decode_logits` for the decode step), on
// the positions the attention mask keeps (padded positions are unspecified in both systems).
TEST_P(FixtureGolden, ReferenceExecutorMatchesTransformers) {
  const GoldenCase& c = GetParam();
  fs::path logitsPath = fixturesDir() / c.fixture / "golden" / "transformers_logits.npz";
  auto transformersLogits = fs::exists(logitsPath) ? readNpz(logitsPath.string()) : std::map<std::string, Tensor>{};
  std::string key = c.step == "prefill" ? "logits" : "decode_logits";
  if (!transformersLogits.count(key)) GTEST_SKIP() << "no transformers logits for this step";
  auto graph = importOnnx((fixturesDir() / c.onnxPath).string());
  auto inputs = readNpz((fixturesDir() / c.fixture / "golden" / (c.step + "_inputs.npz")).string());
  auto outputs = Interpreter(*graph).run(inputs);
  const Tensor& reference = transformersLogits.at(key);
  const Tensor& ours = outputs.at("logits");
  ASSERT_EQ(ours.shape(), reference.shape());
  std::vector<bool> keep(static_cast<size_t>(reference.numElements() / reference.shape().back()), true);
  if (inputs.count("attention_mask")) {
    // The mask covers past + current tokens; the current tokens are its last `seq` columns.
    const Tensor& mask = inputs.at("attention_mask");
    int64_t batch = reference.shape()[0], seq = reference.shape()[1], total = mask.shape()[1];
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t s = 0; s < seq; ++s) keep[static_cast<size_t>(b * seq + s)] = mask.elementAsInt(b * total + total - seq + s) != 0;
  }
  Comparison cmp = compare(ours, reference, &keep, reference.shape().back());
  EXPECT_LT(cmp.relative(), kRelativeTolerance) << "max abs error " << cmp.maxAbsError << ", max abs value " << cmp.maxAbsReference;
}

std::string caseName(const ::testing::TestParamInfo<GoldenCase>& info) {
  std::string name = info.param.fixture + "_" + info.param.step;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureGolden, ::testing::ValuesIn(allGoldenCases()), caseName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(FixtureGolden);

// The textual form is complete: printing an imported fixture, parsing it back (with the same
// weights) and printing again gives identical text, the parsed graph verifies, and it computes
// exactly what the imported graph computes.
TEST_P(FixtureGolden, TextFormRoundTripsAndRunsIdentically) {
  const GoldenCase& c = GetParam();
  auto imported = importOnnx((fixturesDir() / c.onnxPath).string());
  std::string text = printGraph(*imported);
  auto parsed = parseGraph(text, c.onnxPath, imported->weights);
  EXPECT_TRUE(verifyGraph(*parsed).empty());
  ASSERT_EQ(printGraph(*parsed), text);
  auto inputs = readNpz((fixturesDir() / c.fixture / "golden" / (c.step + "_inputs.npz")).string());
  auto expected = Interpreter(*imported).run(inputs);
  auto actual = Interpreter(*parsed).run(inputs);
  for (const auto& [name, tensor] : expected) {
    ASSERT_EQ(actual.at(name).shape(), tensor.shape()) << name;
    EXPECT_EQ(std::memcmp(actual.at(name).bytes(), tensor.bytes(), tensor.byteSize()), 0) << name;
  }
}

TEST(FixtureManifest, ListsFixturesWithGoldens) {
  // Guards against the golden suite silently running nothing.
  EXPECT_GE(allGoldenCases().size(), 8u) << "models/fixtures/manifest.json lists too few golden cases";
}

}  // namespace
}  // namespace pagedc
