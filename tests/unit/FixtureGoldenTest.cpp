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

const fs::path& modelsDir() {
  static const fs::path dir = fs::path(PAGEDC_SOURCE_DIR) / "models";
  return dir;
}

struct GoldenCase {
  std::string fixture;  // "llama-past"
  fs::path directory;   // holds golden/
  fs::path onnxPath;
  std::string step;     // "prefill" or "decode"
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  fs::path golden(const std::string& file) const { return directory / "golden" / file; }
};

// The random-weight fixtures (models/fixtures/manifest.json lists them) and the trained
// stories260K model (models/stories260K/manifest.json describes it).
std::vector<GoldenCase> allGoldenCases() {
  std::vector<GoldenCase> cases;
  auto addCases = [&](const nlohmann::json& entry, const fs::path& root, const fs::path& directory) {
    for (const char* step : {"prefill", "decode"})
      if (fs::exists(directory / "golden" / (std::string(step) + "_inputs.npz")))
        cases.push_back({entry["name"], directory, root / entry["onnx"].get<std::string>(), step,
                         entry.value("num_kv_heads", int64_t{0}), entry.value("head_dim", int64_t{0})});
  };
  if (std::ifstream in(modelsDir() / "fixtures" / "manifest.json"); in) {
    auto manifest = nlohmann::json::parse(in);
    for (const auto& fixture : manifest["fixtures"])
      addCases(fixture, modelsDir() / "fixtures", modelsDir() / "fixtures" / fixture["name"].get<std::string>());
  }
  if (std::ifstream in(modelsDir() / "stories260K" / "manifest.json"); in)
    addCases(nlohmann::json::parse(in), modelsDir() / "stories260K", modelsDir() / "stories260K");
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
  auto graph = importOnnx(c.onnxPath.string());
  Interpreter interpreter(*graph);
  auto inputs = readNpz(c.golden(c.step + "_inputs.npz").string());
  auto expected = readNpz(c.golden(c.step + "_outputs.npz").string());
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
  fs::path logitsPath = c.golden("transformers_logits.npz");
  auto transformersLogits = fs::exists(logitsPath) ? readNpz(logitsPath.string()) : std::map<std::string, Tensor>{};
  std::string key = c.step == "prefill" ? "logits" : "decode_logits";
  if (!transformersLogits.count(key)) GTEST_SKIP() << "no transformers logits for this step";
  auto graph = importOnnx(c.onnxPath.string());
  auto inputs = readNpz(c.golden(c.step + "_inputs.npz").string());
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
  auto imported = importOnnx(c.onnxPath.string());
  std::string text = printGraph(*imported);
  auto parsed = parseGraph(text, c.onnxPath.string(), imported->weights);
  EXPECT_TRUE(verifyGraph(*parsed).empty());
  ASSERT_EQ(printGraph(*parsed), text);
  auto inputs = readNpz(c.golden(c.step + "_inputs.npz").string());
  auto expected = Interpreter(*imported).run(inputs);
  auto actual = Interpreter(*parsed).run(inputs);
  for (const auto& [name, tensor] : expected) {
    ASSERT_EQ(actual.at(name).shape(), tensor.shape()) << name;
    EXPECT_EQ(std::memcmp(actual.at(name).bytes(), tensor.bytes(), tensor.byteSize()), 0) << name;
  }
}

// Greedy decoding with the reference executor, one token at a time, reproduces transformers'
// `generate`: through the KV cache (past_key_values.* in, present.* out) when the graph has one,
// otherwise by re-running the whole sequence each step.
TEST_P(FixtureGolden, GreedyDecodingMatchesTransformers) {
  const GoldenCase& c = GetParam();
  if (c.step != "prefill" || !fs::exists(c.golden("greedy.json"))) GTEST_SKIP() << "greedy goldens are checked once per model";
  std::ifstream in(c.golden("greedy.json"));
  auto greedy = nlohmann::json::parse(in);
  auto prompt = greedy["prompt_ids"].get<std::vector<int64_t>>();
  auto expected = greedy["greedy"]["generated_ids"].get<std::vector<int64_t>>();
  auto graph = importOnnx(c.onnxPath.string());
  Interpreter interpreter(*graph);

  std::map<std::string, Tensor> cache;  // past inputs by name
  bool hasPast = false, hasPositions = false;
  for (const Value* input : graph->inputs) {
    hasPositions = hasPositions || input->name == "position_ids";
    if (input->name.rfind("past_key_values.", 0) != 0) continue;
    hasPast = true;
    cache[input->name] = Tensor::zeros(DType::F32, {1, c.kvHeads, 0, c.headDim});
  }
  std::vector<int64_t> sequence = prompt, generated;
  int64_t past = 0;
  while (generated.size() < expected.size()) {
    std::vector<int64_t> step = hasPast ? std::vector<int64_t>(sequence.begin() + past, sequence.end()) : sequence;
    int64_t first = hasPast ? past : 0, count = static_cast<int64_t>(step.size());
    std::map<std::string, Tensor> inputs = cache;
    inputs["input_ids"] = Tensor::fromValues(DType::I64, {1, count}, step);
    inputs["attention_mask"] = Tensor::fromValues(DType::I64, {1, first + count}, std::vector<int64_t>(first + count, 1));
    if (hasPositions) {
      std::vector<int64_t> positions(count);
      for (int64_t i = 0; i < count; ++i) positions[i] = first + i;
      inputs["position_ids"] = Tensor::fromValues(DType::I64, {1, count}, positions);
    }
    auto outputs = interpreter.run(inputs);
    const Tensor& logits = outputs.at("logits");
    int64_t vocab = logits.shape()[2];
    const float* last = logits.data<float>() + (count - 1) * vocab;
    int64_t next = std::max_element(last, last + vocab) - last;
    generated.push_back(next);
    sequence.push_back(next);
    for (auto& [name, tensor] : cache) tensor = outputs.at("present." + name.substr(std::string("past_key_values.").size()));
    past = first + count;
  }
  EXPECT_EQ(generated, expected);
}

TEST(FixtureManifest, ListsFixturesWithGoldens) {
  // Guards against the golden suite silently running nothing.
  EXPECT_GE(allGoldenCases().size(), 8u) << "models/fixtures/manifest.json lists too few golden cases";
}

}  // namespace
}  // namespace pagedc
