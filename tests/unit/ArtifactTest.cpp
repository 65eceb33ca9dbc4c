// The compiled artifact: write and load round trip (zero-copy weights), dtype conversion, atomic
// replacement, and a clear error for every kind of damage.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "codegen/ArtifactWriter.h"
#include "ir/Error.h"
#include "ir/TextFormat.h"
#include "runtime/Artifact.h"
#include "runtime/Sha256.h"

namespace pagedc {
namespace {

namespace fs = std::filesystem;

const char* kGraphText = R"(graph @main(%x: f32[n, 4]) {
  %w = weight() {name = "layer.w"} : f32[4, 3]
  %b = weight() {name = "layer.b"} : f32[3]
  %y = MatMul(%x, %w) : f32[n, 3]
  %z = Add(%y, %b) : f32[n, 3]
  return %z
})";

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A fresh directory per test, removed afterwards.
class ArtifactTest : public ::testing::Test {
protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("pagedc-artifact-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Graph> makeGraph(const char* text = kGraphText, bool extraWeight = false) {
    auto store = std::make_shared<WeightStore>();
    std::vector<float> w(12), b = {0.5f, -1.25f, 3.0f};
    for (int i = 0; i < 12; ++i) w[i] = 0.1f * static_cast<float>(i) - 0.3f;
    store->add("layer.w", Tensor::fromValues(DType::F32, {4, 3}, w));
    store->add("layer.b", Tensor::fromValues(DType::F32, {3}, b));
    if (extraWeight) store->add("dead.w", Tensor::fromValues(DType::F32, {2}, std::vector<float>{1, 2}));
    return parseGraph(text, "<test>", store);
  }

  ArtifactContents contents() const {
    ArtifactContents c;
    c.options = {32, DType::F32, "cpu"};
    c.facts.numLayers = 2;
    c.facts.numHeads = 4;
    c.facts.numKvHeads = 2;
    c.facts.headDim = 8;
    c.facts.hiddenSize = 32;
    c.facts.vocabSize = 100;
    c.facts.maxPositions = 64;
    c.facts.rotary = {true, false, 8, 10000};
    c.facts.blockSize = 32;
    c.facts.kernelVariants = {"paged_attention.bs32.hd8.f32"};
    c.opCountsBefore = {{"MatMul", 1}, {"Add", 1}, {"weight", 2}, {"Identity", 3}};
    c.opCountsAfter = {{"MatMul", 1}, {"Add", 1}, {"weight", 2}};
    return c;
  }

  fs::path writeDefault() {
    auto graph = makeGraph();
    writeArtifact(*graph, contents(), (dir_ / "model.pgc").string());
    return dir_ / "model.pgc";
  }

  static nlohmann::json readJson(const fs::path& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
  }
  static void writeText(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  static std::string readText(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  // Edits the manifest in place (it carries no checksum of itself).
  static void editManifest(const fs::path& artifact, const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = readJson(artifact / "manifest.json");
    edit(j);
    writeText(artifact / "manifest.json", j.dump(2));
  }

  fs::path dir_;
};

TEST_F(ArtifactTest, RoundTripKeepsGraphWeightsAndFacts) {
  auto graph = makeGraph();
  std::string text = printGraph(*graph);
  ArtifactManifest written = writeArtifact(*graph, contents(), (dir_ / "model.pgc").string());
  EXPECT_EQ(written.weights.size(), 2u);

  Artifact artifact = loadArtifact((dir_ / "model.pgc").string());
  EXPECT_EQ(printGraph(*artifact.graph), text);
  EXPECT_EQ(readText(dir_ / "model.pgc" / "graph.pgir"), text);
  EXPECT_EQ(artifact.manifest.formatVersion, kArtifactFormatVersion);
  EXPECT_EQ(artifact.manifest.pagedcVersion, pagedcVersion());
  EXPECT_EQ(artifact.manifest.options.blockSize, 32);
  EXPECT_EQ(artifact.facts().numKvHeads, 2);
  EXPECT_EQ(artifact.facts().kvBytesPerToken(), 2 * 2 * 2 * 8 * 4);
  EXPECT_TRUE(artifact.facts().rotary.present);
  EXPECT_EQ(artifact.facts().rotary.base, 10000);
  EXPECT_EQ(artifact.facts().kernelVariants, contents().facts.kernelVariants);
  EXPECT_EQ(artifact.manifest.opCountsBefore.at("Identity"), 3);
  EXPECT_EQ(artifact.manifest.opCountsAfter.count("Identity"), 0u);
  ASSERT_EQ(artifact.manifest.inputs.size(), 1u);
  EXPECT_EQ(artifact.manifest.inputs[0].type, "f32[n, 4]");
  EXPECT_EQ(artifact.manifest.outputs[0].name, "z");
  EXPECT_EQ(artifact.manifest.parameterCount(), 15);

  // Weights in first-use order, 64-byte aligned, byte-identical, and views into the mapping.
  const MappedFile& file = *artifact.weightsFile;
  EXPECT_EQ(artifact.manifest.weights[0].name, "layer.w");
  EXPECT_EQ(artifact.manifest.weights[1].offset, 64u);
  EXPECT_EQ(file.size(), 64u + 12u);
  for (const char* name : {"layer.w", "layer.b"}) {
    const Tensor* loaded = artifact.graph->weights->find(name);
    const Tensor* original = graph->weights->find(name);
    ASSERT_TRUE(loaded && original) << name;
    EXPECT_EQ(loaded->shape(), original->shape());
    ASSERT_EQ(loaded->byteSize(), original->byteSize());
    EXPECT_EQ(std::memcmp(loaded->bytes(), original->bytes(), loaded->byteSize()), 0) << name;
    EXPECT_GE(loaded->bytes(), file.data());
    EXPECT_LE(loaded->bytes() + loaded->byteSize(), file.data() + file.size());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(loaded->bytes()) % kWeightAlignment, 0u);
  }
  EXPECT_EQ(artifact.manifest.files.at("weights.bin").sha256, sha256File((dir_ / "model.pgc" / "weights.bin").string()));
}

TEST_F(ArtifactTest, Sha256KnownAnswer) {
  EXPECT_EQ(sha256Hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(ArtifactTest, WritesEachWeightInItsDeclaredDType) {
  std::string text = kGraphText;
  text.replace(text.find(": f32[4, 3]"), 11, ": bf16[4, 3]");
  text.replace(text.find("MatMul(%x, %w)"), 14, "MatMul(%x, %wf)");
  text.replace(text.find("  %y ="), 0, "  %wf = Cast(%w) {to = f32} : f32[4, 3]\n");
  auto graph = makeGraph(text.c_str(), /*extraWeight=*/true);
  writeArtifact(*graph, contents(), (dir_ / "model.pgc").string());
  Artifact artifact = loadArtifact((dir_ / "model.pgc").string());
  const Tensor* w = artifact.graph->weights->find("layer.w");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->dtype(), DType::BF16);
  Tensor expected = graph->weights->find("layer.w")->convertTo(DType::BF16);
  EXPECT_EQ(std::memcmp(w->bytes(), expected.bytes(), expected.byteSize()), 0);
  EXPECT_EQ(artifact.graph->weights->find("layer.b")->dtype(), DType::F32);
  // A store entry no weight op references is dead: not written.
  EXPECT_FALSE(artifact.graph->weights->contains("dead.w"));
  EXPECT_EQ(artifact.manifest.weights.size(), 2u);
}

TEST_F(ArtifactTest, ReplacesAnExistingArtifactAndLeavesNoTemporaries) {
  fs::path path = writeDefault();
  ArtifactContents second = contents();
  second.options.blockSize = 8;
  writeArtifact(*makeGraph(), second, path.string());
  EXPECT_EQ(loadArtifact(path.string()).manifest.options.blockSize, 8);
  for (const auto& entry : fs::directory_iterator(dir_)) EXPECT_EQ(entry.path().filename(), "model.pgc");

  writeText(dir_ / "precious.txt", "not an artifact");
  EXPECT_NE(errorOf([&] { writeArtifact(*makeGraph(), contents(), (dir_ / "precious.txt").string()); })
                .find("precious.txt: exists and is not a pagedc artifact; refusing to replace it"),
            std::string::npos);
  EXPECT_EQ(readText(dir_ / "precious.txt"), "not an artifact");
}

TEST_F(ArtifactTest, RecordsSourceAndCopiesTokenizerFiles) {
  fs::create_directories(dir_ / "src");
  writeText(dir_ / "src" / "model.onnx", "pretend onnx");
  writeText(dir_ / "src" / "tokenizer.json", "{\"model\": {}}");
  writeText(dir_ / "src" / "config.json", "{}");
  ArtifactContents c = contents();
  c.sourceModel = (dir_ / "src" / "model.onnx").string();
  writeArtifact(*makeGraph(), c, (dir_ / "out.pgc").string());
  Artifact artifact = loadArtifact((dir_ / "out.pgc").string());
  EXPECT_EQ(artifact.manifest.sourcePath, c.sourceModel);
  EXPECT_EQ(artifact.manifest.sourceSha256, sha256Hex("pretend onnx", 12));
  EXPECT_EQ(readText(dir_ / "out.pgc" / "tokenizer.json"), "{\"model\": {}}");
  EXPECT_TRUE(artifact.manifest.files.count("config.json"));
  EXPECT_FALSE(artifact.manifest.files.count("generation_config.json"));
  // Tokenizer files are checksummed like the rest.
  writeText(dir_ / "out.pgc" / "tokenizer.json", "{\"model\": []}");
  EXPECT_NE(errorOf([&] { loadArtifact((dir_ / "out.pgc").string()); }).find("tokenizer.json: SHA-256 mismatch"), std::string::npos);
}

TEST_F(ArtifactTest, MissingFiles) {
  fs::path path = writeDefault();
  EXPECT_NE(errorOf([&] { loadArtifact((dir_ / "nowhere.pgc").string()); }).find("nowhere.pgc: no such artifact"), std::string::npos);
  EXPECT_NE(errorOf([&] { loadArtifact((path / "graph.pgir").string()); }).find("graph.pgir: not a pagedc artifact"), std::string::npos);
  fs::remove(path / "graph.pgir");
  EXPECT_NE(errorOf([&] { loadArtifact(path.string()); }).find("model.pgc/graph.pgir: missing file (listed in manifest.json)"),
            std::string::npos);
  fs::remove(path / "manifest.json");
  EXPECT_NE(errorOf([&] { loadArtifact(path.string()); }).find("model.pgc/manifest.json: missing file"), std::string::npos);
}

TEST_F(ArtifactTest, WrongFormatVersion) {
  fs::path path = writeDefault();
  editManifest(path, [](nlohmann::json& j) { j["format_version"] = 99; });
  EXPECT_NE(errorOf([&] { loadArtifact(path.string()); }).find("manifest.json: format version 99 is not supported"), std::string::npos);
  editManifest(path, [](nlohmann::json& j) { j["format"] = "something-else"; });
  EXPECT_NE(errorOf([&] { loadArtifact(path.string()); }).find("manifest.json: not a pagedc artifact manifest"), std::string::npos);
}

TEST_F(ArtifactTest, BadJson) {
  fs::path path = writeDefault();
  std::string text = readText(path / "manifest.json");
  writeText(path / "manifest.json", text.substr(0, text.size() / 2));
  std::string error = errorOf([&] { loadArtifact(path.string()); });
  EXPECT_NE(error.find("manifest.json: bad JSON: [json.exception.parse_error"), std::string::npos) << error;
  writeText(path / "manifest.json", text);
  editManifest(path, [](nlohmann::json& j) { j.erase("facts"); });
  error = errorOf([&] { loadArtifact(path.string()); });
  EXPECT_NE(error.find("manifest.json: [json.exception.out_of_range.403] key 'facts' not found"), std::string::npos) << error;
  writeText(path / "manifest.json", text);
  editManifest(path, [](nlohmann::json& j) { j["options"]["block_size"] = "sixteen"; });
  error = errorOf([&] { loadArtifact(path.string()); });
  EXPECT_NE(error.find("manifest.json: [json.exception.type_error"), std::string::npos) << error;
}

TEST_F(ArtifactTest, ChecksumMismatch) {
  fs::path path = writeDefault();
  std::string weights = readText(path / "weights.bin");
  weights[5] ^= 1;
  writeText(path / "weights.bin", weights);
  EXPECT_NE(errorOf([&] { loadArtifact(path.string()); })
                .find("model.pgc/weights.bin: SHA-256 mismatch: the file is damaged or was changed after compilation"),
            std::string::npos);
  // Without verification the structural checks still pass: the damage is in the values only.
  EXPECT_NO_THROW(loadArtifact(path.string(), {.verifyChecksums = false}));

  fs::path other = dir_ / "other.pgc";
  writeArtifact(*makeGraph(), contents(), other.string());
  std::string graph = readText(other / "graph.pgir");
  graph[graph.find("MatMul")] = 'N';  // same size, different text
  writeText(other / "graph.pgir", graph);
  EXPECT_NE(errorOf([&] { loadArtifact(other.string()); }).find("graph.pgir: SHA-256 mismatch"), std::string::npos);
}

TEST_F(ArtifactTest, TruncatedWeights) {
  fs::path path = writeDefault();
  fs::resize_file(path / "weights.bin", 70);
  std::string error = errorOf([&] { loadArtifact(path.string()); });
  EXPECT_NE(error.find("model.pgc/weights.bin: truncated: weight 'layer.b' needs bytes [64, 76) but the file has 70 bytes"),
            std::string::npos)
      << error;
  // Longer than recorded is damage too, caught by the size before hashing.
  fs::resize_file(path / "weights.bin", 100);
  error = errorOf([&] { loadArtifact(path.string(), {.verifyChecksums = false}); });
  EXPECT_NE(error.find("weights.bin: 100 bytes but the manifest records 76"), std::string::npos) << error;
}

TEST_F(ArtifactTest, WeightIndexDisagreesWithGraph) {
  fs::path path = writeDefault();
  std::string original = readText(path / "manifest.json");
  editManifest(path, [](nlohmann::json& j) { j["weights"]["tensors"][1]["name"] = "layer.bias"; });
  std::string error = errorOf([&] { loadArtifact(path.string()); });
  EXPECT_NE(error.find("model.pgc/graph.pgir: weight 'layer.b' (%b) is not in the weight index of"), std::string::npos) << error;

  writeText(path / "manifest.json", original);
  editManifest(path, [](nlohmann::json& j) { j["weights"]["tensors"][0]["dtype"] = "i32"; });
  error = errorOf([&] { loadArtifact(path.string()); });
  EXPECT_NE(error.find("manifest.json: weight 'layer.w' is i32[4, 3] in the weight index but"), std::string::npos) << error;
  EXPECT_NE(error.find("graph.pgir declares it f32[4, 3]"), std::string::npos) << error;

  writeText(path / "manifest.json", original);
  editManifest(path, [](nlohmann::json& j) { j["weights"]["tensors"][0]["shape"] = {3, 4}; });
  error = errorOf([&] { loadArtifact(path.string()); });
  EXPECT_NE(error.find("manifest.json: weight 'layer.w' is f32[3, 4] in the weight index but"), std::string::npos) << error;

  writeText(path / "manifest.json", original);
  editManifest(path, [](nlohmann::json& j) { j["weights"]["tensors"][0]["bytes"] = 40; });
  error = errorOf([&] { loadArtifact(path.string()); });
  EXPECT_NE(error.find("manifest.json: weight 'layer.w' is 40 bytes in the index but f32[4, 3] needs 48"), std::string::npos) << error;
}

TEST_F(ArtifactTest, WriterRejectsWeightsWithoutData) {
  auto graph = parseGraph(kGraphText, "<test>", std::make_shared<WeightStore>());
  EXPECT_NE(errorOf([&] { writeArtifact(*graph, contents(), (dir_ / "x.pgc").string()); }).find("weight 'layer.w' has no data"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "x.pgc"));
  for (const auto& entry : fs::directory_iterator(dir_)) ADD_FAILURE() << "left behind: " << entry.path();
}

}  // namespace
}  // namespace pagedc
