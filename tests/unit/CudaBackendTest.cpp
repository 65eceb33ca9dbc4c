// The CUDA backend (runtime/cuda/): driver loading and device selection on this machine, the op ->
// kernel plan of the bundled model (no GPU needed), and the backend end to end against the CPU
// backend: on the emulated CUDA device (runtime/cuda/EmulatedCudaDriver.h: host memory, kernels
// compiled for the host) everywhere, and on a real GPU when there is one (skipped otherwise, with
// the reason).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "codegen/ArtifactWriter.h"
#include "codegen/CudaKernelProvider.h"
#include "codegen/HostKernelProvider.h"
#include "frontend/OnnxImporter.h"
#include "ir/Error.h"
#include "ir/TextFormat.h"
#include "ir/TypeInference.h"
#include "passes/CompilePipeline.h"
#include "runtime/Engine.h"
#include "runtime/cpu/CpuModelRunner.h"
#include "runtime/cuda/CudaDriver.h"
#include "runtime/cuda/CudaKernelPlan.h"
#include "runtime/cuda/CudaModelRunner.h"
#include "runtime/cuda/DeviceSelection.h"
#include "runtime/cuda/EmulatedCudaDriver.h"

namespace pagedc {
namespace {

namespace fs = std::filesystem;

// models/default/model.onnx compiled as `pagedc compile` does (f32, or another dtype), once per dtype.
struct CompiledDefault {
  fs::path path;
  Artifact artifact;
  explicit CompiledDefault(DType dtype) {
    const std::string onnx = (fs::path(PAGEDC_SOURCE_DIR) / "models" / "default" / "model.onnx").string();
    auto graph = importOnnx(onnx);
    CompileOptions options;
    options.dtype = dtype;
    CompileResult compiled = compileGraph(*graph, options);
    ArtifactContents contents;
    contents.sourceModel = onnx;
    contents.facts = compiled.facts;
    contents.opCountsBefore = compiled.opCountsBefore;
    contents.opCountsAfter = compiled.opCountsAfter;
    path = fs::temp_directory_path() / ("pagedc_cuda_test_" + std::string(dtypeName(dtype)) + "_" + std::to_string(::getpid()) + ".pgc");
    writeArtifact(*graph, contents, path.string());
    artifact = loadArtifact(path.string());
  }
  ~CompiledDefault() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

const CompiledDefault& compiledDefault(DType dtype = DType::F32) {
  static std::map<DType, std::unique_ptr<CompiledDefault>> models;
  auto& model = models[dtype];
  if (!model) model = std::make_unique<CompiledDefault>(dtype);
  return *model;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---- Driver and device selection ------------------------------------------------------------------

TEST(CudaDriverTest, AbsentLibraryIsAClearError) {
  const std::string message = errorOf([] { loadCudaDriver("libpagedc-no-such-driver.so.1"); });
  EXPECT_TRUE(contains(message, "no CUDA driver (libpagedc-no-such-driver.so.1) on this machine")) << message;
  EXPECT_TRUE(contains(message, "--device cpu")) << message;
}

// On this machine: either a usable GPU, or a reason that names what is missing.
TEST(CudaDriverTest, ProbeSaysWhyCudaIsUnavailable) {
  const CudaAvailability cuda = probeCuda();
  if (cuda.available()) {
    EXPECT_GT(cuda.deviceCount, 0);
    EXPECT_TRUE(cuda.reason.empty());
    return;
  }
  EXPECT_EQ(cuda.driver, nullptr);
  EXPECT_TRUE(contains(cuda.reason, "libcuda.so.1")) << cuda.reason;
}

TEST(DeviceSelectionTest, AutoPicksCpuWithoutCudaAndCudaWithIt) {
  const CudaAvailability none{nullptr, 0, "no CUDA driver (libcuda.so.1) on this machine: not found"};
  DeviceChoice choice = selectDevice("auto", none);
  EXPECT_EQ(choice.kind, DeviceKind::Cpu);
  EXPECT_TRUE(choice.automatic);
  EXPECT_EQ(choice.why, none.reason);

  const CudaAvailability gpu{std::make_shared<CudaDriver>(), 1, ""};
  choice = selectDevice("auto", gpu);
  EXPECT_EQ(choice.kind, DeviceKind::Cuda);
  EXPECT_EQ(choice.driver, gpu.driver);
  EXPECT_EQ(selectDevice("cuda", gpu).kind, DeviceKind::Cuda);
  EXPECT_EQ(selectDevice("cpu", gpu).kind, DeviceKind::Cpu);
}

TEST(DeviceSelectionTest, CudaWithoutAGpuNamesWhatIsMissing) {
  const CudaAvailability noDriver{nullptr, 0, "no CUDA driver (libcuda.so.1) on this machine: libcuda.so.1: cannot open shared object file"};
  std::string message = errorOf([&] { selectDevice("cuda", noDriver); });
  EXPECT_TRUE(contains(message, "--device cuda: no CUDA driver (libcuda.so.1)")) << message;
  const CudaAvailability noDevice{nullptr, 0, "the CUDA driver (libcuda.so.1) reports no CUDA device"};
  message = errorOf([&] { selectDevice("cuda", noDevice); });
  EXPECT_TRUE(contains(message, "reports no CUDA device")) << message;
  EXPECT_TRUE(contains(errorOf([] { selectDevice("tpu", CudaAvailability{}); }), "unknown device 'tpu'"));
}

// This machine, as `pagedc generate --device ...` sees it.
TEST(DeviceSelectionTest, ThisMachine) {
  const CudaAvailability cuda = probeCuda();
  if (cuda.available()) {
    EXPECT_EQ(selectDevice("auto").kind, DeviceKind::Cuda);
    EXPECT_EQ(selectDevice("cuda").kind, DeviceKind::Cuda);
    return;
  }
  EXPECT_EQ(selectDevice("auto").kind, DeviceKind::Cpu);
  const std::string message = errorOf([] { selectDevice("cuda"); });
  EXPECT_TRUE(contains(message, "--device cuda: ")) << message;
  EXPECT_TRUE(contains(message, cuda.reason)) << message;
}

// ---- The plan (no GPU needed) ---------------------------------------------------------------------

std::set<std::string> kernelNames(const std::vector<KernelKey>& keys) {
  std::set<std::string> names;
  for (const KernelKey& key : keys) names.insert(key.kernel);
  return names;
}

TEST(CudaKernelPlanTest, DefaultModelNeedsTheExpectedKernels) {
  const Artifact& artifact = compiledDefault().artifact;
  const auto choices = cuda::CudaKernelChoices::forModel(artifact.facts());
  EXPECT_EQ(choices.activation, DType::F32);
  const std::vector<KernelKey> keys = cuda::requiredKernels(*artifact.graph, choices);
  std::vector<std::string> texts;
  for (const KernelKey& key : keys) texts.push_back(key.str());
  SCOPED_TRACE(::testing::PrintToString(texts));
  const std::set<std::string> expected = {"embedding", "rms_norm", "rope", "activation", "strided_copy", "kv_cache_write",
                                          "paged_attention_decode", "paged_attention_reduce", "paged_attention_prefill",
                                          "copy_blocks", "swap_blocks"};
  for (const std::string& name : expected) EXPECT_TRUE(kernelNames(keys).contains(name)) << name;
  EXPECT_FALSE(kernelNames(keys).contains("cast")) << "an f32 model needs no cast";
  // Attention geometry of the default model: head_dim 32, 16-token blocks, 8 heads over 4 kv heads.
  int decodeVariants = 0;
  for (const KernelKey& key : keys) {
    if (key.kernel.starts_with("paged_attention_") && key.kernel != "paged_attention_reduce") {
      EXPECT_EQ(key.param("dtype"), "f32");
      EXPECT_EQ(key.param("cache"), "f32");
      EXPECT_EQ(key.intParam("head_dim"), 32);
      EXPECT_EQ(key.intParam("block"), 16);
      EXPECT_EQ(key.intParam("q_per_kv"), 2);
    }
    if (key.kernel == "paged_attention_decode") {
      ++decodeVariants;
      EXPECT_TRUE(key.intParam("partition") == 0 || key.intParam("partition") == 512) << key.str();
    }
    if (key.kernel == "activation") {
      EXPECT_EQ(key.param("act"), "silu");
    }
  }
  EXPECT_EQ(decodeVariants, 2) << "one-pass and split-K decode";
  // Sorted and unique.
  EXPECT_TRUE(std::ranges::is_sorted(keys));
  EXPECT_EQ(std::ranges::adjacent_find(keys), keys.end());
}

TEST(CudaKernelPlanTest, Bf16ModelRunsInBf16AndCastsTheLogits) {
  const Artifact& artifact = compiledDefault(DType::BF16).artifact;
  const auto choices = cuda::CudaKernelChoices::forModel(artifact.facts());
  EXPECT_EQ(choices.activation, DType::BF16);
  const std::vector<KernelKey> keys = cuda::requiredKernels(*artifact.graph, choices);
  bool cast = false;
  for (const KernelKey& key : keys) {
    if (key.hasParam("dtype")) {
      EXPECT_EQ(key.param("dtype"), "bf16") << key.str();
    }
    if (key.kernel == "cast") {
      cast = true;
      EXPECT_EQ(key.param("in"), "bf16");
      EXPECT_EQ(key.param("out"), "f32");
    }
  }
  EXPECT_TRUE(cast) << "the logits come back as f32";
}

std::unique_ptr<Graph> parsed(const std::string& text) {
  auto graph = parseGraph(text);
  inferTypes(*graph);
  return graph;
}

TEST(CudaKernelPlanTest, UnsupportedOpIsALoadTimeErrorNamingOpNodeAndWhy) {
  auto graph = parsed(R"(graph @g(%x: f32[num_tokens, 8]) {
    %y = Tanh(%x) : f32[num_tokens, 8] loc("/model/act/Tanh")
    return %y
  })");
  std::string message = errorOf([&] { cuda::requiredKernels(*graph, {}); });
  EXPECT_TRUE(contains(message, "Tanh")) << message;
  EXPECT_TRUE(contains(message, "/model/act/Tanh")) << message;
  EXPECT_TRUE(contains(message, "has no CUDA kernel")) << message;
  EXPECT_TRUE(contains(message, "--device cpu")) << message;

  auto dynamicWeight = parsed(R"(graph @g(%x: f32[num_tokens, 8], %w: f32[8, 4]) {
    %y = MatMul(%x, %w) : f32[num_tokens, 4] loc("/model/proj/MatMul")
    return %y
  })");
  message = errorOf([&] { cuda::requiredKernels(*dynamicWeight, {}); });
  EXPECT_TRUE(contains(message, "/model/proj/MatMul")) << message;
  EXPECT_TRUE(contains(message, "static weights only")) << message;
}

// An op the outputs do not need is no error: only what runs is planned.
TEST(CudaKernelPlanTest, UnneededOpsAreNotPlanned) {
  auto graph = parsed(R"(graph @g(%x: f32[num_tokens, 8]) {
    %unused = Tanh(%x) : f32[num_tokens, 8]
    %y = silu(%x) : f32[num_tokens, 8]
    return %y
  })");
  const std::vector<KernelKey> keys = cuda::requiredKernels(*graph, {});
  EXPECT_TRUE(kernelNames(keys).contains("activation"));
}

// ---- End to end: the CUDA runner against the CPU runner -----------------------------------------

// Step plans over a pool of 16-token blocks, built by hand: every path of the runner (prefill,
// decode with and without split-K, CUDA graph warm-up / capture / replay, copy-on-write, swaps).
struct Seq {
  std::string id;
  std::vector<BlockId> blocks;
  int64_t length = 0;  // tokens in the cache
};

ScheduledSequence schedule(Seq& seq, const std::vector<TokenId>& tokens, int64_t blockSize) {
  ScheduledSequence s;
  s.requestId = seq.id;
  s.tokens = tokens;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t position = seq.length + static_cast<int64_t>(i);
    s.positions.push_back(position);
    s.slots.push_back(seq.blocks.at(static_cast<size_t>(position / blockSize)) * blockSize + position % blockSize);
  }
  seq.length += static_cast<int64_t>(tokens.size());
  s.contextLen = seq.length;
  s.blockTable = seq.blocks;
  s.needsLogits = true;
  s.isPrompt = tokens.size() > 1;
  return s;
}

TokenId argmax(std::span<const float> row) { return static_cast<TokenId>(std::ranges::max_element(row) - row.begin()); }

// Runs the same plans on both runners; the CUDA runner's logits must match the CPU's.
void expectSameLogits(ModelRunner& cpu, ModelRunner& cuda, const StepPlan& plan, double tolerance, const std::string& what) {
  SCOPED_TRACE(what);
  const StepLogits expected = cpu.execute(plan);
  std::vector<float> want(expected.data, expected.data + expected.numRows * expected.vocab);
  const StepLogits got = cuda.execute(plan);
  ASSERT_EQ(got.numRows, expected.numRows);
  ASSERT_EQ(got.vocab, expected.vocab);
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got.data[i])) << "row " << i / static_cast<size_t>(got.vocab);
    worst = std::max(worst, std::abs(static_cast<double>(got.data[i]) - want[i]) / std::max(1.0, std::abs(static_cast<double>(want[i]))));
  }
  EXPECT_LE(worst, tolerance);
  if (tolerance > 1e-2) return;  // 16-bit activations may flip near-ties
  for (int64_t r = 0; r < got.numRows; ++r) EXPECT_EQ(argmax(got.row(r)), argmax(std::span<const float>(want.data() + r * got.vocab, got.vocab)));
}

struct Backends {
  std::shared_ptr<const CudaDriver> driver;
  std::shared_ptr<KernelProvider> kernels;
  cuda::GemmLibraryFactory gemm;
};

void runAgainstCpu(const Backends& backends, DType dtype, double tolerance) {
  const Artifact& artifact = compiledDefault(dtype).artifact;
  const ModelFacts& facts = artifact.facts();
  const int64_t blockSize = facts.blockSize;
  cpu::CpuRunnerConfig cpuConfig;
  cpuConfig.numDeviceBlocks = 64;
  cpuConfig.numHostBlocks = 4;
  cpuConfig.maxNumBatchedTokens = 64;
  cpuConfig.maxNumSeqs = 8;
  cpuConfig.maxModelLen = 512;
  cpu::CpuModelRunner cpu(artifact, cpuConfig);
  cuda::CudaRunnerConfig config;
  config.numDeviceBlocks = 64;
  config.numHostBlocks = 4;
  config.maxNumBatchedTokens = 64;
  config.maxNumSeqs = 8;
  config.maxModelLen = 512;
  // Split-K from 17 keys on: short contexts exercise the partitioned decode and the reduction.
  cuda::CudaKernelChoices choices = cuda::CudaKernelChoices::forModel(facts);
  choices.partitionSize = 16;
  config.kernelChoices = choices;
  cuda::CudaModelRunner gpu(artifact, config, backends.driver, backends.kernels, backends.gemm);

  // d's table has more blocks than its context uses, more than a graph step's table width (the
  // context bucket of 256 keys: 16 blocks).
  Seq a{"a", {0}, 0}, b{"b", {1, 2, 3}, 0}, d{"d", {}, 0};
  for (BlockId block = 10; block < 28; ++block) d.blocks.push_back(block);
  std::vector<TokenId> promptA = {5, 17, 99, 3, 250}, promptB;
  for (int i = 0; i < 20; ++i) promptB.push_back(static_cast<TokenId>((i * 37 + 11) % facts.vocabSize));
  StepPlan prefill;
  prefill.seqs = {schedule(a, promptA, blockSize), schedule(b, promptB, blockSize), schedule(d, {8, 9, 10}, blockSize)};
  expectSameLogits(cpu, gpu, prefill, tolerance, "prefill of two prompts");

  // Decode: the first step of a bucket runs plainly, the second is captured, the rest replay.
  TokenId nextA = 7, nextB = 9, nextD = 11;
  for (int step = 0; step < 4; ++step) {
    StepPlan decode;
    decode.seqs = {schedule(a, {nextA}, blockSize), schedule(b, {nextB}, blockSize), schedule(d, {nextD}, blockSize)};
    const StepLogits logits = cpu.execute(decode);
    // The CUDA runner runs the same plan (the tokens fed next come from the CPU's logits).
    const StepLogits got = gpu.execute(decode);
    ASSERT_EQ(got.numRows, 3);
    nextA = argmax(logits.row(0));
    nextB = argmax(logits.row(1));
    nextD = argmax(logits.row(2));
    for (int64_t r = 0; r < 3; ++r) {
      double worst = 0;
      const std::span<const float> want = logits.row(r);
      for (int64_t v = 0; v < got.vocab; ++v)
        worst = std::max(worst, std::abs(static_cast<double>(got.row(r)[static_cast<size_t>(v)]) - want[static_cast<size_t>(v)]) /
                                    std::max(1.0, std::abs(static_cast<double>(want[static_cast<size_t>(v)]))));
      EXPECT_LE(worst, tolerance) << "decode step " << step << ", row " << r;
    }
  }
  if (config.cudaGraphs) {
    EXPECT_EQ(gpu.stats().graphCaptures, 1) << "one bucket (4 rows for 3 sequences, contexts up to 256)";
    EXPECT_GE(gpu.stats().graphReplays, 2);
  }

  // A mixed step (a prompt chunk and decodes): decode and prefill kernels together, no graph.
  Seq c{"c", {4}, 0};
  StepPlan mixed;
  mixed.seqs = {schedule(a, {nextA}, blockSize), schedule(c, {1, 2, 3, 4, 5, 6}, blockSize), schedule(b, {nextB}, blockSize)};
  expectSameLogits(cpu, gpu, mixed, tolerance, "mixed prefill and decode");

  // Copy-on-write: a's block copied to block 5, then a fork decodes from the copy.
  Seq fork{"fork", {5}, a.length};
  StepPlan cow;
  cow.copies = {{0, 5}};
  cow.seqs = {schedule(fork, {42}, blockSize)};
  expectSameLogits(cpu, gpu, cow, tolerance, "copy-on-write then decode from the copy");

  // Swap the fork's block out to host block 1 and back in to device block 6, then decode from it.
  StepPlan out;
  out.swapOut = {{5, 1}};
  cpu.execute(out);
  gpu.execute(out);
  Seq back{"back", {6}, fork.length};
  StepPlan in;
  in.swapIn = {{1, 6}};
  in.seqs = {schedule(back, {43}, blockSize)};
  expectSameLogits(cpu, gpu, in, tolerance, "swap out, swap in, decode");
}

// The emulated device (host memory, the kernels compiled for the host) runs the same backend code
// a GPU runs: plans, launches, block operations, graph capture and replay.
TEST(CudaBackendEmulatedTest, DefaultModelMatchesTheCpuBackend) {
  std::shared_ptr<KernelProvider> kernels;
  try {
    kernels = std::make_shared<HostKernelProvider>();
  } catch (const Error& e) {
    GTEST_SKIP() << "no host compiler for the emulated kernels: " << e.what();
  }
  Backends backends{makeEmulatedCudaDriver(), kernels, [](std::shared_ptr<const CudaDriver>) { return makeEmulatedGemmLibrary(); }};
  runAgainstCpu(backends, DType::F32, 2e-3);
}

// bf16 artifacts run in bf16 on the device (weights and activations), the CPU in f32 on the same
// bf16 weights: 8 mantissa bits per activation.
TEST(CudaBackendEmulatedTest, Bf16DefaultModelMatchesTheCpuBackend) {
  std::shared_ptr<KernelProvider> kernels;
  try {
    kernels = std::make_shared<HostKernelProvider>();
  } catch (const Error& e) {
    GTEST_SKIP() << "no host compiler for the emulated kernels: " << e.what();
  }
  Backends backends{makeEmulatedCudaDriver(), kernels, [](std::shared_ptr<const CudaDriver>) { return makeEmulatedGemmLibrary(); }};
  runAgainstCpu(backends, DType::BF16, 0.15);
}

// Greedy generation through the engine (prefill, decode steps replayed as CUDA graphs, padding to
// the batch buckets as requests finish) gives transformers' tokens, as the CPU backend does.
TEST(CudaBackendEmulatedTest, GreedyGenerationMatchesTransformers) {
  std::shared_ptr<KernelProvider> kernels;
  try {
    kernels = std::make_shared<HostKernelProvider>();
  } catch (const Error& e) {
    GTEST_SKIP() << "no host compiler for the emulated kernels: " << e.what();
  }
  std::ifstream in(fs::path(PAGEDC_SOURCE_DIR) / "models" / "default" / "golden" / "generate.json");
  const nlohmann::json gen = nlohmann::json::parse(in);
  const Artifact& artifact = compiledDefault().artifact;
  cuda::CudaRunnerConfig config;
  config.numDeviceBlocks = 64;
  config.maxModelLen = 256;
  config.maxNumSeqs = 8;
  config.maxNumBatchedTokens = 256;
  cuda::CudaModelRunner runner(artifact, config, makeEmulatedCudaDriver(), kernels,
                               [](std::shared_ptr<const CudaDriver>) { return makeEmulatedGemmLibrary(); });
  EngineConfig engineConfig;
  engineConfig.scheduler.maxNumSeqs = 8;
  engineConfig.scheduler.maxNumBatchedTokens = 256;
  engineConfig.scheduler.maxModelLen = 256;
  Engine engine(runner, engineConfig);
  const int64_t eos = gen["eos_token_id"].get<int64_t>();
  for (size_t i = 0; i < gen["greedy"].size(); ++i) {
    const auto& c = gen["greedy"][i];
    SamplingParams p;
    p.temperature = 0.0;
    p.maxTokens = c["max_new_tokens"].get<int64_t>();
    p.eosTokenIds = {eos};
    engine.addRequest("greedy" + std::to_string(i), gen["prompts"][c["prompt"].get<size_t>()].get<std::vector<TokenId>>(), p);
  }
  std::map<RequestId, RequestOutput> outputs;
  for (int steps = 0; engine.hasUnfinished() && steps < 2000; ++steps)
    for (const RequestOutput& o : engine.step()) outputs[o.requestId].append(o);
  for (size_t i = 0; i < gen["greedy"].size(); ++i) {
    const auto& c = gen["greedy"][i];
    const RequestOutput& out = outputs.at("greedy" + std::to_string(i));
    ASSERT_EQ(out.completions.size(), 1u);
    EXPECT_EQ(out.completions[0].tokens, c["generated_ids"].get<std::vector<TokenId>>()) << "prompt " << c["prompt"];
  }
  EXPECT_GT(runner.stats().graphReplays, 0) << "decode steps should replay CUDA graphs";
}

TEST(CudaBackendEmulatedTest, MissingKernelProviderIsAClearError) {
  const Artifact& artifact = compiledDefault().artifact;
  cuda::CudaRunnerConfig config;
  config.numDeviceBlocks = 8;
  config.maxModelLen = 64;
  const std::string message = errorOf([&] {
    cuda::CudaModelRunner runner(artifact, config, makeEmulatedCudaDriver(), nullptr,
                                 [](std::shared_ptr<const CudaDriver>) { return makeEmulatedGemmLibrary(); });
  });
  EXPECT_TRUE(contains(message, "kernel provider")) << message;
}

// A real GPU: the same comparison through the real driver and cuBLASLt.
TEST(CudaBackendGpuTest, DefaultModelMatchesTheCpuBackend) {
  const CudaAvailability cuda = probeCuda();
  if (!cuda.available()) GTEST_SKIP() << "needs a GPU: " << cuda.reason;
  Backends backends{cuda.driver, std::make_shared<CudaKernelProvider>(), loadCublasLt};
  runAgainstCpu(backends, DType::F32, 2e-3);
}

TEST(CudaBackendGpuTest, Bf16DefaultModelMatchesTheCpuBackend) {
  const CudaAvailability cuda = probeCuda();
  if (!cuda.available()) GTEST_SKIP() << "needs a GPU: " << cuda.reason;
  Backends backends{cuda.driver, std::make_shared<CudaKernelProvider>(), loadCublasLt};
  // bf16 activations against the CPU's f32 arithmetic on bf16 weights: 8 mantissa bits.
  runAgainstCpu(backends, DType::BF16, 0.15);
}

}  // namespace
}  // namespace pagedc
