// The engine loop on compiled fixtures with the reference runner (and, for the golden and
// preemption tests, also the CPU backend), against Hugging Face
// transformers' generate(): greedy and beam search goldens (models/fixtures/<arch>-past/golden/
// greedy.json and generate.json, scripts/fixtures/export_generate_goldens.py), alone, batched, and
// under preemption by recompute and by swap; block sharing of parallel samples and beams; seeded
// sampling independent of the batch; prompt logprobs; stop strings; validation and abort.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "codegen/ArtifactWriter.h"
#include "frontend/OnnxImporter.h"
#include "ir/Error.h"
#include "passes/CompilePipeline.h"
#include "runtime/Engine.h"
#include "GenerateGoldens.h"
#include "runtime/ReferenceModelRunner.h"
#include "runtime/cpu/CpuModelRunner.h"

namespace pagedc {
namespace {

namespace fs = std::filesystem;

// Small blocks so that short prompts span several blocks: sharing and preemption show at once.
constexpr int64_t kBlockSize = 4;

// A fixture compiled in-process, written as an artifact and loaded back (once per process).
struct CompiledFixture {
  std::string arch;
  fs::path artifactPath;
  Artifact artifact;
  nlohmann::json greedy;    // greedy.json
  nlohmann::json generate;  // generate.json
  ~CompiledFixture() {
    std::error_code ignored;
    fs::remove_all(artifactPath, ignored);
  }
};

nlohmann::json readJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return nlohmann::json::parse(in);
}

const CompiledFixture& fixture(const std::string& arch) {
  static std::map<std::string, std::unique_ptr<CompiledFixture>> cache;
  auto& slot = cache[arch];
  if (!slot) {
    fs::path dir = fs::path(PAGEDC_SOURCE_DIR) / "models" / "fixtures" / (arch + "-past");
    auto graph = importOnnx((dir / "model.onnx").string());
    CompileResult compiled = compileGraph(*graph, {.blockSize = kBlockSize});
    ArtifactContents contents;
    contents.options.blockSize = kBlockSize;
    contents.facts = compiled.facts;
    contents.opCountsBefore = compiled.opCountsBefore;
    contents.opCountsAfter = compiled.opCountsAfter;
    fs::path out = fs::temp_directory_path() / ("pagedc_engine_" + arch + "_" + std::to_string(::getpid()) + ".pgc");
    writeArtifact(*graph, contents, out.string());
    slot = std::make_unique<CompiledFixture>();
    slot->arch = arch;
    slot->artifactPath = out;
    slot->artifact = loadArtifact(out.string());
    slot->greedy = readJson(dir / "golden" / "greedy.json");
    slot->generate = readJson(dir / "golden" / "generate.json");
  }
  return *slot;
}

ReferenceModelRunner makeRunner(const CompiledFixture& fx, int64_t deviceBlocks, int64_t hostBlocks = 0) {
  return ReferenceModelRunner(*fx.artifact.graph, fx.artifact.facts(), deviceBlocks, hostBlocks);
}

// The runners the golden and preemption tests run on: the interpreter, and the CPU backend.
enum class Backend { Reference, Cpu };
std::string backendName(Backend backend) { return backend == Backend::Cpu ? "cpu" : "reference"; }

std::unique_ptr<ModelRunner> makeRunnerOn(Backend backend, const CompiledFixture& fx, int64_t deviceBlocks, int64_t hostBlocks = 0) {
  if (backend == Backend::Reference)
    return std::make_unique<ReferenceModelRunner>(*fx.artifact.graph, fx.artifact.facts(), deviceBlocks, hostBlocks);
  cpu::CpuRunnerConfig config;
  config.numDeviceBlocks = deviceBlocks;
  config.numHostBlocks = hostBlocks;
  config.maxNumBatchedTokens = 2048;  // the engine's default budget
  config.maxNumSeqs = 256;
  config.maxModelLen = 256;
  return std::make_unique<cpu::CpuModelRunner>(fx.artifact, config);
}

SamplingParams greedyParams(int64_t maxTokens, int64_t eos) {
  SamplingParams p;
  p.temperature = 0.0;
  p.maxTokens = maxTokens;
  p.eosTokenIds = {eos};
  return p;
}

using testing::beamParams;
using testing::runCollectingText;

// What a request must produce: its completions' tokens (and beam scores), and the finish reason
// of the first completion.
struct Expected {
  std::vector<std::vector<TokenId>> tokens;
  std::vector<double> scores;  // beam search only
  FinishReason reason = FinishReason::Length;
};

struct Case {
  RequestId id;
  std::vector<TokenId> prompt;
  SamplingParams params;
  Expected expected;
};

// Every greedy and beam case of the goldens, as requests.
std::vector<Case> goldenCases(const CompiledFixture& fx, bool greedy, bool beam) {
  std::vector<Case> cases;
  const auto& g = fx.greedy;
  const auto& gen = fx.generate;
  const auto prompts = gen["prompts"].get<std::vector<std::vector<TokenId>>>();
  const int64_t eos = gen["eos_token_id"].get<int64_t>();
  if (greedy) {
    Case c{"greedy.json", g["prompt_ids"].get<std::vector<TokenId>>(),
           greedyParams(g["greedy"]["max_new_tokens"].get<int64_t>(), g["eos_token_id"].get<int64_t>()), {}};
    c.expected.tokens = {g["greedy"]["generated_ids"].get<std::vector<TokenId>>()};
    c.expected.reason = c.expected.tokens[0].back() == g["eos_token_id"].get<int64_t>() ? FinishReason::Stop : FinishReason::Length;
    cases.push_back(c);
    int i = 0;
    for (const auto& j : gen["greedy"]) {
      Case k{"greedy" + std::to_string(i++), prompts[j["prompt"].get<size_t>()],
             greedyParams(j["max_new_tokens"].get<int64_t>(), eos), {}};
      k.expected.tokens = {j["generated_ids"].get<std::vector<TokenId>>()};
      k.expected.reason = j["finish_reason"] == "stop" ? FinishReason::Stop : FinishReason::Length;
      cases.push_back(k);
    }
  }
  if (beam) {
    nlohmann::json b = g["beam"];
    Case c{"beam.json", g["prompt_ids"].get<std::vector<TokenId>>(), beamParams(b, g["eos_token_id"].get<int64_t>()), {}};
    c.expected.tokens = {b["generated_ids"].get<std::vector<TokenId>>()};
    c.expected.reason = FinishReason::None;  // not checked
    cases.push_back(c);
    int i = 0;
    for (const auto& j : gen["beam"]) {
      Case k{"beam" + std::to_string(i++), prompts[j["prompt"].get<size_t>()], beamParams(j, eos), {}};
      for (const auto& r : j["results"]) {
        k.expected.tokens.push_back(r["generated_ids"].get<std::vector<TokenId>>());
        k.expected.scores.push_back(r["score"].get<double>());
      }
      k.expected.reason = FinishReason::None;
      cases.push_back(k);
    }
  }
  return cases;
}

void expectMatches(const Case& c, const RequestOutput& out) {
  SCOPED_TRACE("request " + c.id);
  EXPECT_TRUE(out.finished);
  ASSERT_EQ(out.completions.size(), c.expected.tokens.size());
  for (size_t k = 0; k < c.expected.tokens.size(); ++k) {
    const CompletionOutput& got = out.completions[k];
    EXPECT_EQ(got.index, static_cast<int64_t>(k));
    EXPECT_EQ(got.tokens, c.expected.tokens[k]) << "completion " << k;
    if (k < c.expected.scores.size()) {
      ASSERT_TRUE(got.beamScore.has_value());
      EXPECT_NEAR(*got.beamScore, c.expected.scores[k], 1e-4 * std::max(1.0, std::abs(c.expected.scores[k])))
          << "completion " << k;
    }
  }
  if (c.expected.reason != FinishReason::None) {
    EXPECT_EQ(out.completions[0].finishReason, c.expected.reason);
  }
}

// Runs the engine to the end, checking the block manager after every step.
std::map<RequestId, RequestOutput> runChecked(Engine& engine, int64_t maxSteps = 5000) {
  std::map<RequestId, RequestOutput> all;
  for (int64_t i = 0; engine.hasUnfinished(); ++i) {
    if (i >= maxSteps) {
      ADD_FAILURE() << "not finished after " << maxSteps << " steps";
      break;
    }
    for (const RequestOutput& o : engine.step()) all[o.requestId].append(o);
    engine.blockManager().checkInvariants();
  }
  return all;
}

class EngineGolden : public ::testing::TestWithParam<std::tuple<std::string, Backend>> {};

// (a) Greedy requests, batched together, give transformers' tokens and finish reasons.
TEST_P(EngineGolden, GreedyMatchesTransformers) {
  const auto& fx = fixture(std::get<0>(GetParam()));
  auto runner = makeRunnerOn(std::get<1>(GetParam()), fx, 512);
  Engine engine(*runner);
  auto cases = goldenCases(fx, true, false);
  for (const Case& c : cases) engine.addRequest(c.id, c.prompt, c.params);
  auto outputs = runChecked(engine);
  for (const Case& c : cases) expectMatches(c, outputs.at(c.id));
  EXPECT_EQ(engine.stats().blocks.usedBlocks, 0);
}

// (b) Beam search, batched together: tokens exactly, scores to 1e-4.
TEST_P(EngineGolden, BeamSearchMatchesTransformers) {
  const auto& fx = fixture(std::get<0>(GetParam()));
  auto runner = makeRunnerOn(std::get<1>(GetParam()), fx, 512);
  Engine engine(*runner);
  auto cases = goldenCases(fx, false, true);
  for (const Case& c : cases) engine.addRequest(c.id, c.prompt, c.params);
  auto outputs = runChecked(engine);
  for (const Case& c : cases) expectMatches(c, outputs.at(c.id));
  EXPECT_EQ(engine.stats().blocks.usedBlocks, 0);
}

INSTANTIATE_TEST_SUITE_P(Engine, EngineGolden,
                         ::testing::Combine(::testing::Values("llama", "mistral", "gpt2", "opt"), ::testing::Values(Backend::Reference, Backend::Cpu)),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + backendName(std::get<1>(info.param)); });

// (c) 64 mixed requests at once with a pool that forces preemption: every output is its golden.
void runMixedUnderPreemption(PreemptionMode mode, Backend backend) {
  const auto& fx = fixture("llama");
  auto cases = goldenCases(fx, true, true);
  std::vector<Case> greedy, beam;
  for (const Case& c : cases) (c.params.useBeamSearch ? beam : greedy).push_back(c);
  std::vector<Case> mixed;
  for (int i = 0; i < 64; ++i) {
    if (i % 4 == 3) {
      Case c = beam[static_cast<size_t>(i / 4) % beam.size()];
      c.id = "r" + std::to_string(i) + "-" + c.id;
      mixed.push_back(c);
      continue;
    }
    // A greedy golden cut shorter: its prefix, unless it stopped before.
    Case c = greedy[static_cast<size_t>(i) % greedy.size()];
    c.id = "r" + std::to_string(i) + "-" + c.id;
    auto& tokens = c.expected.tokens[0];
    int64_t maxTokens = std::max<int64_t>(1, *c.params.maxTokens - i % 3);
    c.params.maxTokens = maxTokens;
    if (static_cast<int64_t>(tokens.size()) > maxTokens) {
      tokens.resize(static_cast<size_t>(maxTokens));
      c.expected.reason = FinishReason::Length;
    }
    mixed.push_back(c);
  }
  auto runner = makeRunnerOn(backend, fx, 40, 64);
  EngineConfig config;
  config.scheduler.preemptionMode = mode;
  config.scheduler.maxNumBatchedTokens = 256;
  Engine engine(*runner, config);
  for (const Case& c : mixed) engine.addRequest(c.id, c.prompt, c.params);
  auto outputs = runChecked(engine);
  EngineStats st = engine.stats();
  std::cout << "[ mixed " << (mode == PreemptionMode::Swap ? "swap" : "recompute") << " on " << backendName(backend) << " ] steps " << st.numSteps
            << ", preemptions " << st.numPreemptions << ", prompt tokens " << st.promptTokensComputed << ", decode tokens "
            << st.decodeTokensComputed << ", copy-on-write " << st.copyOnWriteBlocks << ", swapped out/in "
            << st.swappedOutBlocks << "/" << st.swappedInBlocks << ", peak blocks " << st.peakUsedBlocks << " of 40\n";
  EXPECT_GT(st.numPreemptions, 0);
  if (mode == PreemptionMode::Swap) {
    EXPECT_GT(st.swappedOutBlocks, 0);
  } else {
    EXPECT_EQ(st.swappedOutBlocks, 0);
  }
  ASSERT_EQ(outputs.size(), mixed.size());
  for (const Case& c : mixed) expectMatches(c, outputs.at(c.id));
  EXPECT_EQ(st.blocks.usedBlocks, 0);
  EXPECT_EQ(st.blocks.hostUsedBlocks, 0);
  EXPECT_EQ(st.blocks.numSequences, 0);
}

TEST(EngineTest, MixedRequestsUnderRecomputePreemption) { runMixedUnderPreemption(PreemptionMode::Recompute, Backend::Reference); }
TEST(EngineTest, MixedRequestsUnderSwapPreemption) { runMixedUnderPreemption(PreemptionMode::Swap, Backend::Reference); }
TEST(EngineTest, MixedRequestsUnderRecomputePreemptionOnCpuBackend) { runMixedUnderPreemption(PreemptionMode::Recompute, Backend::Cpu); }
TEST(EngineTest, MixedRequestsUnderSwapPreemptionOnCpuBackend) { runMixedUnderPreemption(PreemptionMode::Swap, Backend::Cpu); }

// (d) Parallel samples and beams share the prompt's blocks: fewer blocks than without sharing.
TEST(EngineTest, SharingUsesFewerBlocks) {
  const auto& fx = fixture("llama");
  const auto prompt = fx.generate["prompts"][7].get<std::vector<TokenId>>();  // 17 tokens: 5 blocks
  EngineConfig config;
  config.enablePrefixCaching = false;  // independent requests must not share through the cache
  SamplingParams sampled;
  sampled.temperature = 1.0;
  sampled.seed = 7;
  sampled.maxTokens = 8;
  sampled.ignoreEos = true;

  auto peak = [&](auto&& add) {
    auto runner = makeRunner(fx, 256);
    Engine engine(runner, config);
    add(engine);
    auto outputs = runChecked(engine);
    return std::pair{engine.stats(), outputs};
  };
  auto [shared, sharedOut] = peak([&](Engine& e) {
    SamplingParams p = sampled;
    p.n = 4;
    e.addRequest("n4", prompt, p);
  });
  auto [separate, separateOut] = peak([&](Engine& e) {
    for (int i = 0; i < 4; ++i) e.addRequest("s" + std::to_string(i), prompt, sampled);
  });
  ASSERT_EQ(sharedOut.at("n4").completions.size(), 4u);
  for (const auto& c : sharedOut.at("n4").completions) EXPECT_EQ(c.tokens.size(), 8u);
  // Sample 0 draws from the same stream (seed, index 0) as a lone request with that seed.
  EXPECT_EQ(sharedOut.at("n4").completions[0].tokens, separateOut.at("s0").completions[0].tokens);
  std::cout << "[ sharing ] n=4 sampling: peak " << shared.peakUsedBlocks << " blocks (" << shared.copyOnWriteBlocks
            << " copy-on-write copies) vs " << separate.peakUsedBlocks << " for 4 separate requests\n";
  EXPECT_LT(shared.peakUsedBlocks, separate.peakUsedBlocks);

  // Beam search, width 4: blocks in use against block-table entries (what unshared beams hold).
  SamplingParams beam;
  beam.temperature = 0.0;
  beam.useBeamSearch = true;
  beam.bestOf = 4;
  beam.maxTokens = 8;
  beam.earlyStopping = EarlyStopping::Never;
  auto runner = makeRunner(fx, 256);
  Engine engine(runner, config);
  engine.addRequest("beam", prompt, beam);
  int64_t maxCopies = 0;
  while (engine.hasUnfinished()) {
    engine.step();
    engine.blockManager().checkInvariants();
    maxCopies = std::max(maxCopies, engine.stats().copyOnWriteBlocks);
  }
  EngineStats st = engine.stats();
  std::cout << "[ sharing ] beam width 4: peak " << st.peakUsedBlocks << " blocks vs " << st.peakUnsharedBlocks
            << " unshared, " << st.copyOnWriteBlocks << " copy-on-write copies in " << st.numSteps << " steps\n";
  EXPECT_LT(st.peakUsedBlocks, st.peakUnsharedBlocks);
  // Never a wholesale copy: at most one partly filled block per beam and step.
  EXPECT_LE(st.copyOnWriteBlocks, 4 * st.numSteps);
}

// (e) A seeded request samples the same tokens alone, batched with others, in another order.
TEST(EngineTest, SeededSamplingIndependentOfTheBatch) {
  const auto& fx = fixture("gpt2");
  const auto prompts = fx.generate["prompts"].get<std::vector<std::vector<TokenId>>>();
  SamplingParams seeded;
  seeded.temperature = 0.9;
  seeded.topK = 40;
  seeded.topP = 0.95;
  seeded.seed = 1234;
  seeded.n = 2;
  seeded.maxTokens = 10;
  seeded.logprobs = 2;
  auto run = [&](int variant) {
    auto runner = makeRunner(fx, 256);
    Engine engine(runner);
    SamplingParams other;
    other.temperature = 1.0;
    other.maxTokens = 6 + variant;
    if (variant == 1) {
      engine.addRequest("x", prompts[5], seeded);
      for (int i = 0; i < 4; ++i) engine.addRequest("o" + std::to_string(i), prompts[static_cast<size_t>(i * 2)], other);
    } else if (variant == 2) {
      for (int i = 0; i < 3; ++i) engine.addRequest("o" + std::to_string(i), prompts[static_cast<size_t>(9 - i)], other);
      SamplingParams beam;
      beam.temperature = 0.0;
      beam.useBeamSearch = true;
      beam.bestOf = 2;
      beam.maxTokens = 5;
      engine.addRequest("b", prompts[3], beam);
      engine.step();
      engine.addRequest("x", prompts[5], seeded);  // joins a running batch
    } else {
      engine.addRequest("x", prompts[5], seeded);
    }
    return runChecked(engine).at("x");
  };
  RequestOutput alone = run(0), batched = run(1), late = run(2);
  ASSERT_EQ(alone.completions.size(), 2u);
  EXPECT_NE(alone.completions[0].tokens, alone.completions[1].tokens);  // distinct streams per sample
  for (const RequestOutput* other : {&batched, &late}) {
    ASSERT_EQ(other->completions.size(), 2u);
    for (size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(other->completions[k].tokens, alone.completions[k].tokens) << k;
      ASSERT_EQ(other->completions[k].logprobs.size(), alone.completions[k].logprobs.size());
      EXPECT_NEAR(other->completions[k].cumulativeLogprob, alone.completions[k].cumulativeLogprob, 1e-4);
    }
  }
  ASSERT_EQ(alone.completions[0].logprobs.size(), 10u);
  EXPECT_EQ(alone.completions[0].logprobs[0].top.size(), 2u);
}

// Prompt logprobs are the logprobs greedy decoding gave the same tokens as outputs.
TEST(EngineTest, PromptLogprobsMatchTheGeneratedTokensLogprobs) {
  const auto& fx = fixture("opt");
  const auto prompt = fx.generate["prompts"][4].get<std::vector<TokenId>>();
  auto runner = makeRunner(fx, 256);
  EngineConfig config;
  config.scheduler.enableChunkedPrefill = true;
  config.scheduler.maxNumBatchedTokens = 5;  // the prompt logprobs come in chunks
  Engine engine(runner, config);
  SamplingParams first;
  first.temperature = 0.0;
  first.maxTokens = 6;
  first.logprobs = 0;
  engine.addRequest("gen", prompt, first);
  auto generated = runChecked(engine).at("gen").completions.at(0);
  ASSERT_EQ(generated.tokens.size(), 6u);
  std::vector<TokenId> extended = prompt;
  extended.insert(extended.end(), generated.tokens.begin(), generated.tokens.end() - 1);
  SamplingParams second;
  second.maxTokens = 1;
  second.promptLogprobs = 3;
  engine.addRequest("score", extended, second);
  auto scored = runChecked(engine).at("score");
  ASSERT_EQ(scored.promptLogprobs.size(), extended.size());
  EXPECT_FALSE(scored.promptLogprobs[0].has_value());
  for (size_t i = 1; i < extended.size(); ++i) {
    ASSERT_TRUE(scored.promptLogprobs[i].has_value()) << i;
    EXPECT_EQ(scored.promptLogprobs[i]->top.size(), 3u);
  }
  for (size_t k = 0; k + 1 < generated.tokens.size(); ++k) {
    const auto& lp = scored.promptLogprobs[prompt.size() + k];
    ASSERT_TRUE(lp.has_value());
    EXPECT_NEAR(lp->logprob, generated.logprobs[k].logprob, 1e-4) << k;
    EXPECT_EQ(lp->rank, 1) << k;  // greedy: the most likely token
  }
}

// A detokenizer that spells token t as "<t>".
struct SpellingStream final : TokenTextStream {
  std::string push(TokenId t) override { return "<" + std::to_string(t) + ">"; }
};
std::unique_ptr<TokenTextStream> spell(const SamplingParams&) { return std::make_unique<SpellingStream>(); }

TEST(EngineTest, StopStringsNeedADetokenizerAndCutTheText) {
  const auto& fx = fixture("llama");
  const auto& g = fx.generate["greedy"][1];  // 24 tokens, no EOS
  const auto prompt = fx.generate["prompts"][g["prompt"].get<size_t>()].get<std::vector<TokenId>>();
  const auto golden = g["generated_ids"].get<std::vector<TokenId>>();
  SamplingParams p = greedyParams(24, 1);
  p.stop = {"<" + std::to_string(golden[3]) + "><" + std::to_string(golden[4]) + ">"};
  {
    auto runner = makeRunner(fx, 64);
    Engine plain(runner);
    try {
      plain.addRequest("s", prompt, p);
      ADD_FAILURE() << "stop strings accepted without a detokenizer";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("stop"), std::string::npos) << e.what();
    }
  }
  auto runner = makeRunner(fx, 64);
  EngineConfig config;
  config.detokenize = spell;
  Engine engine(runner, config);
  engine.addRequest("s", prompt, p);
  std::string streamed;
  std::map<RequestId, RequestOutput> all = runCollectingText(engine, streamed);
  const auto& c = all.at("s").completions.at(0);
  // The first occurrence of golden[3] golden[4] may come earlier than index 3 in the golden.
  size_t end = 0;
  for (size_t i = 1; i < golden.size(); ++i)
    if (golden[i - 1] == golden[3] && golden[i] == golden[4]) {
      end = i + 1;
      break;
    }
  ASSERT_GT(end, 0u);
  EXPECT_EQ(c.tokens, std::vector<TokenId>(golden.begin(), golden.begin() + static_cast<std::ptrdiff_t>(end)));
  EXPECT_EQ(c.finishReason, FinishReason::Stop);
  ASSERT_TRUE(c.stopString.has_value());
  EXPECT_EQ(*c.stopString, p.stop[0]);
  std::string expected;
  for (size_t i = 0; i + 2 < end; ++i) expected += "<" + std::to_string(golden[i]) + ">";
  EXPECT_EQ(c.text, expected);
  EXPECT_EQ(streamed, c.text);
}

// A detokenizer that holds every token back until the end (as an incomplete character is held).
struct HoldingStream final : TokenTextStream {
  std::string held;
  std::string push(TokenId t) override {
    held += "<" + std::to_string(t) + ">";
    return {};
  }
  std::string finish() override { return std::exchange(held, {}); }
};

TEST(EngineTest, TextHeldBackByTheDetokenizerComesOutAtTheEnd) {
  const auto& fx = fixture("llama");
  auto runner = makeRunner(fx, 64);
  EngineConfig config;
  config.detokenize = [](const SamplingParams&) -> std::unique_ptr<TokenTextStream> { return std::make_unique<HoldingStream>(); };
  Engine engine(runner, config);
  SamplingParams p = greedyParams(3, -1);
  p.eosTokenIds.clear();
  p.n = 1;
  engine.addRequest("h", {1, 2, 3}, p);
  std::string streamed;
  std::map<RequestId, RequestOutput> all = runCollectingText(engine, streamed);
  const auto& c = all.at("h").completions.at(0);
  ASSERT_EQ(c.tokens.size(), 3u);
  std::string expected;
  for (TokenId t : c.tokens) expected += "<" + std::to_string(t) + ">";
  EXPECT_EQ(c.text, expected);
  EXPECT_EQ(streamed, expected);
}

// (f) Bad input names the field; nothing is queued.
TEST(EngineTest, InvalidRequestsNameTheField) {
  const auto& fx = fixture("llama");
  auto runner = makeRunner(fx, 64);
  Engine engine(runner);
  auto expectError = [&](const std::vector<TokenId>& prompt, const SamplingParams& p, const std::string& field) {
    try {
      engine.addRequest("bad", prompt, p);
      ADD_FAILURE() << "accepted; expected an error naming " << field;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  SamplingParams ok;
  ok.maxTokens = 4;
  expectError({}, ok, "prompt");
  expectError({1, 256}, ok, "prompt[1]");
  SamplingParams p = ok;
  p.temperature = -1;
  expectError({1, 2}, p, "temperature");
  p = ok;
  p.n = 3;
  p.bestOf = 2;
  expectError({1, 2}, p, "best_of");
  p = ok;
  p.maxTokens = 0;
  expectError({1, 2}, p, "max_tokens");
  p = ok;
  p.stopTokenIds = {999};
  expectError({1, 2}, p, "stop_token_ids[0]");
  p = ok;
  p.useBeamSearch = true;
  p.bestOf = 2;
  p.temperature = 0;
  p.logprobs = 1;
  expectError({1, 2}, p, "logprobs");
  EXPECT_FALSE(engine.hasUnfinished());
  engine.addRequest("good", {1, 2}, ok);
  EXPECT_THROW(engine.addRequest("good", {1, 2}, ok), Error);
  EXPECT_EQ(runChecked(engine).at("good").completions.at(0).tokens.size(), 4u);
}

// (f) Abort mid-run frees every block of the group; the others finish; the aborted are reported.
TEST(EngineTest, AbortMidRunFreesBlocks) {
  const auto& fx = fixture("mistral");
  const auto prompts = fx.generate["prompts"].get<std::vector<std::vector<TokenId>>>();
  auto runner = makeRunner(fx, 128, 32);
  Engine engine(runner);
  SamplingParams sample;
  sample.n = 3;
  sample.seed = 3;
  sample.maxTokens = 12;
  sample.ignoreEos = true;
  SamplingParams beam;
  beam.temperature = 0.0;
  beam.useBeamSearch = true;
  beam.bestOf = 3;
  beam.maxTokens = 12;
  beam.earlyStopping = EarlyStopping::Never;
  engine.addRequest("sample", prompts[8], sample);
  engine.addRequest("beam", prompts[9], beam);
  engine.addRequest("greedy", prompts[10], greedyParams(12, 0));
  std::map<RequestId, RequestOutput> all;
  for (int i = 0; i < 4; ++i)
    for (const RequestOutput& o : engine.step()) all[o.requestId].append(o);
  const int64_t before = engine.stats().blocks.usedBlocks;
  EXPECT_TRUE(engine.abort("sample"));
  EXPECT_TRUE(engine.abort("beam"));
  EXPECT_FALSE(engine.abort("nope"));
  engine.blockManager().checkInvariants();
  EXPECT_LT(engine.stats().blocks.usedBlocks, before);
  EXPECT_EQ(engine.stats().blocks.numSequences, 1);  // greedy's
  for (auto& [id, o] : runChecked(engine)) all[id].append(o);
  EXPECT_TRUE(all.at("sample").finished);
  ASSERT_EQ(all.at("sample").completions.size(), 3u);
  for (const auto& c : all.at("sample").completions) {
    EXPECT_EQ(c.finishReason, FinishReason::Aborted);
    EXPECT_EQ(c.tokens.size(), 4u);  // what was streamed before the abort
  }
  EXPECT_EQ(all.at("beam").completions.at(0).finishReason, FinishReason::Aborted);
  EXPECT_EQ(all.at("greedy").completions.at(0).tokens.size(), 12u);
  EXPECT_EQ(engine.stats().blocks.usedBlocks, 0);
  EXPECT_EQ(engine.stats().blocks.numSequences, 0);
  EXPECT_FALSE(engine.abort("greedy"));
}

// The runner can own a loaded artifact; a request too large for its pool is rejected, not looped.
TEST(EngineTest, OwnedArtifactAndRejection) {
  const auto& fx = fixture("opt");
  ReferenceModelRunner runner(loadArtifact(fx.artifactPath.string()), 8, 0);
  EXPECT_EQ(runner.facts().blockSize, kBlockSize);
  Engine engine(runner);
  const auto prompts = fx.generate["prompts"].get<std::vector<std::vector<TokenId>>>();
  engine.addRequest("huge", prompts[11], greedyParams(4, 0));  // 40 tokens > 8 blocks of 4
  engine.addRequest("small", prompts[2], greedyParams(4, 0));
  auto all = engine.runToCompletion();
  EXPECT_FALSE(engine.hasUnfinished());
  EXPECT_EQ(all.at("huge").completions.at(0).finishReason, FinishReason::Rejected);
  EXPECT_NE(all.at("huge").message.find("KV cache blocks"), std::string::npos) << all.at("huge").message;
  EXPECT_EQ(all.at("small").completions.at(0).tokens.size(), 4u);
}

// A bf16 compile keeps its KV caches in bf16 (swap copies included) and still decodes the
// golden's greedy tokens at first (bf16 weights move the logits by about 1e-2).
TEST(EngineTest, ReferenceRunnerKeepsBf16Caches) {
  fs::path dir = fs::path(PAGEDC_SOURCE_DIR) / "models" / "fixtures" / "llama-past";
  auto graph = importOnnx((dir / "model.onnx").string());
  CompileResult compiled = compileGraph(*graph, {.blockSize = kBlockSize, .dtype = DType::BF16});
  ASSERT_EQ(compiled.facts.kvDType, DType::BF16);
  ReferenceModelRunner runner(*graph, compiled.facts, 12, 16);
  EXPECT_EQ(runner.cache(false, 0, false).dtype(), DType::BF16);
  EngineConfig config;
  config.scheduler.preemptionMode = PreemptionMode::Swap;
  Engine engine(runner, config);
  const auto& fx = fixture("llama");
  const auto golden = fx.greedy["greedy"]["generated_ids"].get<std::vector<TokenId>>();
  const auto prompt = fx.greedy["prompt_ids"].get<std::vector<TokenId>>();
  for (int i = 0; i < 3; ++i) engine.addRequest("g" + std::to_string(i), prompt, greedyParams(12, 2));
  auto all = runChecked(engine);
  EXPECT_GT(engine.stats().swappedOutBlocks, 0);
  for (int i = 0; i < 3; ++i) {
    const auto& tokens = all.at("g" + std::to_string(i)).completions.at(0).tokens;
    ASSERT_EQ(tokens.size(), 12u);
    EXPECT_EQ(std::vector<TokenId>(tokens.begin(), tokens.begin() + 3), std::vector<TokenId>(golden.begin(), golden.begin() + 3));
    EXPECT_EQ(tokens, all.at("g0").completions.at(0).tokens);  // swapped or not, the same
  }
  EXPECT_EQ(runner.cache(true, 1, true).dtype(), DType::BF16);
}

}  // namespace
}  // namespace pagedc
