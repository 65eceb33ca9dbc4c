// The bundled default model (models/default/, trained by scripts/models/train_default_model.py):
// compiled in-process the way `pagedc compile` does it, it must reproduce transformers' greedy and
// beam generations (golden/generate.json) on the CPU backend, its artifact must carry the
// tokenizer and generation files, and the tokenizer must give the goldens' prompt ids and texts.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "codegen/ArtifactWriter.h"
#include "frontend/OnnxImporter.h"
#include "passes/CompilePipeline.h"
#include "runtime/Engine.h"
#include "runtime/GenerationDefaults.h"
#include "runtime/cpu/CpuModelRunner.h"
#include "runtime/tokenizer/Tokenizer.h"
#include "GenerateGoldens.h"

namespace pagedc {
namespace {

namespace fs = std::filesystem;

fs::path modelDir() { return fs::path(PAGEDC_SOURCE_DIR) / "models" / "default"; }

nlohmann::json readJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return nlohmann::json::parse(in);
}

// models/default/model.onnx compiled with pagedc compile's defaults into a temporary artifact (once).
struct CompiledDefault {
  fs::path path;
  Artifact artifact;
  nlohmann::json generate = readJson(modelDir() / "golden" / "generate.json");
  CompiledDefault() {
    const std::string onnx = (modelDir() / "model.onnx").string();
    auto graph = importOnnx(onnx);
    CompileResult compiled = compileGraph(*graph, CompileOptions{});
    ArtifactContents contents;
    contents.sourceModel = onnx;
    contents.facts = compiled.facts;
    contents.opCountsBefore = compiled.opCountsBefore;
    contents.opCountsAfter = compiled.opCountsAfter;
    path = fs::temp_directory_path() / ("pagedc_default_model_" + std::to_string(::getpid()) + ".pgc");
    writeArtifact(*graph, contents, path.string());
    artifact = loadArtifact(path.string());
  }
  ~CompiledDefault() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

const CompiledDefault& compiled() {
  static CompiledDefault instance;
  return instance;
}

std::vector<TokenId> prompt(const nlohmann::json& gen, const nlohmann::json& c) {
  return gen["prompts"][c["prompt"].get<size_t>()].get<std::vector<TokenId>>();
}

std::map<RequestId, RequestOutput> runAll(Engine& engine) {
  std::map<RequestId, RequestOutput> all;
  for (int steps = 0; engine.hasUnfinished(); ++steps) {
    if (steps > 2000) {
      ADD_FAILURE() << "not finished after 2000 steps";
      break;
    }
    for (const RequestOutput& o : engine.step()) all[o.requestId].append(o);
  }
  return all;
}

std::unique_ptr<cpu::CpuModelRunner> cpuRunner(const Artifact& artifact) {
  cpu::CpuRunnerConfig config;
  config.numDeviceBlocks = 256;
  config.maxModelLen = artifact.facts().maxPositions > 0 ? artifact.facts().maxPositions : 256;
  return std::make_unique<cpu::CpuModelRunner>(artifact, config);
}

TEST(DefaultModelTest, ArtifactCarriesTokenizerAndEos) {
  const auto& model = compiled();
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "config.json"})
    EXPECT_TRUE(fs::exists(model.path / file)) << file << " not copied into the artifact";
  GenerationDefaults defaults = readGenerationDefaults(model.path.string());
  EXPECT_EQ(defaults.eosTokenIds, std::vector<int64_t>{model.generate["eos_token_id"].get<int64_t>()});
  const nlohmann::json config = readJson(model.path / "tokenizer_config.json");
  EXPECT_TRUE(config.contains("chat_template"));
  EXPECT_EQ(config["eos_token"], "<|endoftext|>");
}

// Greedy decoding on the CPU backend, all prompts batched: transformers' tokens exactly.
TEST(DefaultModelTest, GreedyMatchesTransformersOnCpu) {
  const auto& model = compiled();
  const auto& gen = model.generate;
  auto runner = cpuRunner(model.artifact);
  Engine engine(*runner);
  const int64_t eos = gen["eos_token_id"].get<int64_t>();
  int i = 0;
  for (const auto& c : gen["greedy"]) {
    SamplingParams p;
    p.temperature = 0.0;
    p.maxTokens = c["max_new_tokens"].get<int64_t>();
    p.eosTokenIds = {eos};
    engine.addRequest("greedy" + std::to_string(i++), prompt(gen, c), p);
  }
  auto outputs = runAll(engine);
  i = 0;
  for (const auto& c : gen["greedy"]) {
    const RequestOutput& out = outputs.at("greedy" + std::to_string(i++));
    SCOPED_TRACE(gen["prompt_texts"][c["prompt"].get<size_t>()].get<std::string>());
    ASSERT_EQ(out.completions.size(), 1u);
    EXPECT_EQ(out.completions[0].tokens, c["generated_ids"].get<std::vector<TokenId>>());
    EXPECT_EQ(out.completions[0].finishReason, c["finish_reason"] == "stop" ? FinishReason::Stop : FinishReason::Length);
  }
}

// Beam search on the CPU backend: tokens exactly, scores to 1e-4.
TEST(DefaultModelTest, BeamSearchMatchesTransformersOnCpu) {
  const auto& model = compiled();
  const auto& gen = model.generate;
  auto runner = cpuRunner(model.artifact);
  Engine engine(*runner);
  int i = 0;
  for (const auto& c : gen["beam"]) {
    SamplingParams p = testing::beamParams(c, gen["eos_token_id"].get<int64_t>());
    engine.addRequest("beam" + std::to_string(i++), prompt(gen, c), p);
  }
  auto outputs = runAll(engine);
  i = 0;
  for (const auto& c : gen["beam"]) {
    const RequestOutput& out = outputs.at("beam" + std::to_string(i++));
    SCOPED_TRACE("beam case " + std::to_string(i - 1));
    ASSERT_EQ(out.completions.size(), c["results"].size());
    for (size_t k = 0; k < c["results"].size(); ++k) {
      const auto& r = c["results"][k];
      EXPECT_EQ(out.completions[k].tokens, r["generated_ids"].get<std::vector<TokenId>>()) << "completion " << k;
      ASSERT_TRUE(out.completions[k].beamScore.has_value());
      EXPECT_NEAR(*out.completions[k].beamScore, r["score"].get<double>(), 1e-4 * std::max(1.0, std::abs(r["score"].get<double>())));
    }
  }
}

// The artifact's tokenizer gives the goldens' prompt ids (with the leading <|endoftext|> its
// post-processor adds) and decodes the generated ids to the goldens' text; text round-trips.
TEST(DefaultModelTest, TokenizerMatchesGoldens) {
  const auto& model = compiled();
  const auto& gen = model.generate;
  const Tokenizer tokenizer = Tokenizer::fromFile(model.path / "tokenizer.json");
  EXPECT_EQ(tokenizer.vocabSize(), static_cast<size_t>(model.artifact.facts().vocabSize));
  EXPECT_EQ(tokenizer.tokenToId("<|endoftext|>"), gen["eos_token_id"].get<int32_t>());
  const auto texts = gen["prompt_texts"].get<std::vector<std::string>>();
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = gen["prompts"][i].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer.encode(texts[i]), ids) << texts[i];
    EXPECT_EQ(tokenizer.decode(ids), texts[i]);
  }
  for (const auto& c : gen["greedy"]) {
    const auto generated = c["generated_ids"].get<std::vector<int32_t>>();
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(tokenizer.decode(generated), text);
    IncrementalDetokenizer stream(tokenizer);
    std::string streamed;
    for (int32_t id : generated) streamed += stream.push(id);
    streamed += stream.finish();
    EXPECT_EQ(streamed, text);
    // Re-encoding the full text gives back text that decodes the same (ids may merge differently).
    const std::string full = texts[c["prompt"].get<size_t>()] + text;
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(full)), full);
  }
}

}  // namespace
}  // namespace pagedc
