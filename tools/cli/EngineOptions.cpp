// Engine flags and the engine they configure, on the CPU or CUDA backend.
#include "cli/EngineOptions.h"

#include <unistd.h>

#include <cstdlib>
#include <vector>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>

#include "cli/ByteSize.h"
#include "cli/DefaultModel.h"
#include "codegen/ArtifactWriter.h"
#include "codegen/CudaKernelProvider.h"
#include "codegen/HostKernelProvider.h"
#include "frontend/OnnxImporter.h"
#include "ir/Error.h"
#include "passes/CompilePipeline.h"
#include "runtime/BlockPool.h"
#include "runtime/GenerationDefaults.h"
#include "runtime/cpu/CpuModelRunner.h"
#include "runtime/cuda/CudaModelRunner.h"
#include "runtime/cuda/DeviceSelection.h"
#include "runtime/cuda/EmulatedCudaDriver.h"

namespace pagedc::cli {

namespace {
// MemAvailable from /proc/meminfo, in bytes; 0 when unknown.
uint64_t availableMemory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

// "0.5": a fraction in (0, 1]; nullopt for anything else.
std::optional<double> parseFraction(const std::string& text) {
  try {
    size_t used = 0;
    double fraction = std::stod(text, &used);
    if (used == text.size() && fraction > 0 && fraction <= 1) return fraction;
  } catch (const std::logic_error&) {
  }
  return std::nullopt;
}

// The kernels of the CUDA backend: the one wiring point between the CLI and codegen's kernel
// provider (NVRTC with its disk cache, or the cubins embedded in the artifact).
std::shared_ptr<KernelProvider> cudaKernelProvider(const Artifact& artifact, const DeviceChoice& device) {
  if (device.emulated) return std::make_shared<HostKernelProvider>();
  return std::make_shared<CudaKernelProvider>(CudaKernelBuildOptions{}, EmbeddedKernels::fromArtifact(artifact));
}

// "4GiB" or "0.5" (a fraction of available memory).
uint64_t parseMemory(const std::string& text, const std::string& flag) {
  try {
    size_t used = 0;
    double fraction = std::stod(text, &used);
    if (used == text.size() && fraction > 0 && fraction <= 1) {
      uint64_t available = availableMemory();
      if (available == 0) fail(flag, ": a fraction needs /proc/meminfo's MemAvailable, which is unreadable; give bytes");
      return static_cast<uint64_t>(fraction * static_cast<double>(available));
    }
  } catch (const std::logic_error&) {
  }
  return parseByteSize(text, flag);
}
}  // namespace

void EngineOptions::addTo(CLI::App& command) {
  command.add_option("--kv-cache-memory", kvCacheMemory,
                     "KV cache pool: bytes with a unit (4GiB), or a fraction (0, 1] of available memory (default: 4GiB, at most what "
                     "--max-num-seqs sequences of --max-model-len tokens can use; on CUDA a fraction is of the device memory free "
                     "after loading, and the default 90% of it with the same cap)");
  command.add_option("--swap-space", swapSpace, "host pool for swapped-out KV blocks (preemption by swap)")->capture_default_str();
  command.add_option("--max-num-batched-tokens", maxNumBatchedTokens, "tokens computed per step, prompt chunks and decodes together")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command.add_option("--max-num-seqs", maxNumSeqs, "sequences running at once")->capture_default_str()->check(CLI::PositiveNumber);
  command.add_option("--max-model-len", maxModelLen, "longest prompt + output (default: the model's position table, capped at config.json's max_position_embeddings)")->check(CLI::NonNegativeNumber);
  command.add_option("--preemption-mode", preemptionMode, "when blocks run out: recompute or swap the newest request")
      ->capture_default_str()
      ->check(CLI::IsMember({"recompute", "swap"}));
  command.add_flag("--no-prefix-caching", noPrefixCaching, "do not reuse cached KV blocks of identical prompt prefixes");
  command.add_flag("--chunked-prefill,!--no-chunked-prefill", chunkedPrefill, "split long prompts across steps (default on)");
  command.add_option("--threads", threads, "CPU threads (default: the core count)")->check(CLI::NonNegativeNumber);
  command.add_option("--device", device,
                     "backend: cpu, cuda, auto (CUDA when a GPU and its driver are present, else the CPU), or emulated (the CUDA "
                     "backend on an emulated device: slow, for tests)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda", "auto", "emulated"}));
  command.add_option("--cuda-device", cudaDevice, "which GPU the CUDA backend uses")->capture_default_str()->check(CLI::NonNegativeNumber);
  command.add_flag("--cuda-graphs,!--no-cuda-graphs", cudaGraphs, "replay decode steps as CUDA graphs (default on)");
}

Artifact loadModelForCommand(const std::string& path) {
  if (!path.empty()) return loadArtifact(path);
  const std::string onnx = defaultOnnxModel();
  const std::string compiled = defaultArtifactPath(onnx);
  if (std::filesystem::exists(std::filesystem::path(compiled) / "manifest.json")) return loadArtifact(compiled);
  // Nothing compiled yet: compile the bundled model into a temporary artifact, as `pagedc compile` would.
  std::cerr << "pagedc: compiling the bundled model " << onnx << " (run `pagedc compile` to keep it)\n";
  auto graph = importOnnx(onnx);
  CompileOptions compileOptions;
  CompileResult result = compileGraph(*graph, compileOptions);
  ArtifactContents contents;
  contents.sourceModel = onnx;
  contents.facts = result.facts;
  contents.opCountsBefore = result.opCountsBefore;
  contents.opCountsAfter = result.opCountsAfter;
  auto dir = std::filesystem::temp_directory_path() / ("pagedc-default-" + std::to_string(::getpid()) + ".pgc");
  writeArtifact(*graph, contents, dir.string());
  Artifact artifact = loadArtifact(dir.string());
  // The weights stay mapped once loaded, but the tokenizer and configuration files are read from
  // the directory later (serve, generate): it goes when the process exits.
  static std::vector<std::filesystem::path> temporaries;
  if (temporaries.empty()) std::atexit([] {
      std::error_code ignored;
      for (const auto& path : temporaries) std::filesystem::remove_all(path, ignored);
    });
  temporaries.push_back(dir);
  return artifact;
}

namespace {

// The CUDA runner for `artifact`, configured from the engine flags. --kv-cache-memory: bytes, or a
// fraction of the device memory free after loading; empty: 90% of it, at most what max_num_seqs
// sequences of max_model_len tokens can use.
std::unique_ptr<cuda::CudaModelRunner> buildCudaRunner(const Artifact& artifact, const EngineOptions& options, const DeviceChoice& device,
                                                       int64_t maxModelLen, int64_t numHostBlocks) {
  const ModelFacts& facts = artifact.facts();
  if (artifact.manifest.options.target != "cpu" && artifact.manifest.options.target != "cuda")
    fail("artifact '", artifact.path, "' is compiled for target '", artifact.manifest.options.target, "'; the CUDA backend runs the cpu and cuda targets");
  cuda::CudaRunnerConfig config;
  config.device = options.cudaDevice;
  config.maxNumBatchedTokens = options.maxNumBatchedTokens;
  config.maxNumSeqs = options.maxNumSeqs;
  config.maxModelLen = maxModelLen;
  config.numHostBlocks = numHostBlocks;
  config.cudaGraphs = options.cudaGraphs;
  if (options.kvCacheMemory.empty()) {
    config.kvMemoryFraction = 0.9;
    config.maxAutoBlocks = options.maxNumSeqs * ((maxModelLen + facts.blockSize - 1) / facts.blockSize);
  } else if (auto fraction = parseFraction(options.kvCacheMemory)) {
    config.kvMemoryFraction = *fraction;
  } else {
    const uint64_t kvBytes = parseByteSize(options.kvCacheMemory, "--kv-cache-memory");
    config.numDeviceBlocks = numBlocksForBudget(static_cast<int64_t>(std::min<uint64_t>(kvBytes, INT64_MAX)), facts);
    if (config.numDeviceBlocks < 1)
      fail("--kv-cache-memory ", options.kvCacheMemory, " holds no KV block; one block takes ",
           formatBytes(static_cast<uint64_t>(facts.kvBytesPerToken() * facts.blockSize)));
  }
  cuda::GemmLibraryFactory gemm = loadCublasLt;
  if (device.emulated) gemm = [](std::shared_ptr<const CudaDriver>) { return makeEmulatedGemmLibrary(); };
  return std::make_unique<cuda::CudaModelRunner>(artifact, config, device.driver, cudaKernelProvider(artifact, device), std::move(gemm));
}

}  // namespace

LoadedEngine buildEngine(Artifact artifact, const EngineOptions& options, Detokenizer detokenize) {
  const ModelFacts& facts = artifact.facts();
  const DeviceChoice device = selectDevice(options.device);
  const int64_t bytesPerBlock = facts.kvBytesPerToken() * facts.blockSize;
  cpu::CpuRunnerConfig config;
  // Default context: the position table's rows, but no more than the trained context config.json
  // names (a rotary table can be longer than what the model has learnt to use).
  int64_t modelLen = facts.maxPositions > 0 ? facts.maxPositions : 2048;
  if (auto trained = readGenerationDefaults(artifact.path).maxPositionEmbeddings) modelLen = std::min(modelLen, *trained);
  config.maxModelLen = options.maxModelLen > 0 ? options.maxModelLen : modelLen;
  config.numHostBlocks = numBlocksForBudget(static_cast<int64_t>(std::min<uint64_t>(parseByteSize(options.swapSpace, "--swap-space"), INT64_MAX)), facts);
  config.maxNumBatchedTokens = options.maxNumBatchedTokens;
  config.maxNumSeqs = options.maxNumSeqs;
  config.threads = options.threads;

  LoadedEngine loaded{std::move(artifact), nullptr, "cpu", nullptr};
  if (device.kind == DeviceKind::Cuda) {
    try {
      auto runner = buildCudaRunner(loaded.artifact, options, device, config.maxModelLen, config.numHostBlocks);
      loaded.deviceDescription = runner->device().describe();
      std::cerr << "pagedc: CUDA backend on " << loaded.deviceDescription << ": " << runner->numDeviceBlocks() << " KV blocks, "
                << runner->gemmLibraryName() << "\n";
      loaded.runner = std::move(runner);
    } catch (const Error& error) {
      if (!device.automatic) fail("--device ", options.device, ": ", error.what());
      std::cerr << "pagedc: note: --device auto: not using the GPU: " << error.what() << "; running on the CPU\n";
    }
  }
  if (!loaded.runner) {
    if (loaded.artifact.manifest.options.target != "cpu")
      fail("artifact '", loaded.artifact.path, "' is compiled for target '", loaded.artifact.manifest.options.target,
           "'; this build runs the cpu target (compile with --target cpu)");
    if (options.kvCacheMemory.empty()) {
      // The pool is zeroed at start (its pages faulted in), so a default larger than any schedule
      // can fill would only cost start-up time.
      const int64_t usable = options.maxNumSeqs * ((config.maxModelLen + facts.blockSize - 1) / facts.blockSize);
      config.numDeviceBlocks = std::min(numBlocksForBudget(int64_t{4} << 30, facts), usable);
    } else {
      const uint64_t kvBytes = parseMemory(options.kvCacheMemory, "--kv-cache-memory");
      config.numDeviceBlocks = numBlocksForBudget(static_cast<int64_t>(std::min<uint64_t>(kvBytes, INT64_MAX)), facts);
    }
    if (config.numDeviceBlocks < 1)
      fail("--kv-cache-memory ", options.kvCacheMemory, " holds no KV block; one block takes ", formatBytes(static_cast<uint64_t>(bytesPerBlock)));
    auto runner = std::make_unique<cpu::CpuModelRunner>(loaded.artifact, config);
    // Ops without a CPU kernel still run (through their reference implementations) but slowly and
    // allocating: say which, so a slow model is explained.
    std::map<std::string, int> fallbacks;
    for (const std::string& op : runner->planSummary().fallbackOps) ++fallbacks[op];
    if (!fallbacks.empty()) {
      std::cerr << "pagedc: note: ops without a CPU kernel run through the reference implementation:";
      for (const auto& [op, count] : fallbacks) std::cerr << " " << op << " x" << count;
      std::cerr << "\n";
    }
    loaded.runner = std::move(runner);
  }
  EngineConfig engineConfig;
  engineConfig.scheduler.maxNumBatchedTokens = options.maxNumBatchedTokens;
  engineConfig.scheduler.maxNumSeqs = options.maxNumSeqs;
  engineConfig.scheduler.maxModelLen = config.maxModelLen;
  engineConfig.scheduler.enableChunkedPrefill = options.chunkedPrefill;
  engineConfig.scheduler.preemptionMode = options.preemptionMode == "swap" ? PreemptionMode::Swap : PreemptionMode::Recompute;
  engineConfig.enablePrefixCaching = !options.noPrefixCaching;
  engineConfig.detokenize = std::move(detokenize);
  loaded.engine = std::make_unique<Engine>(*loaded.runner, engineConfig);
  return loaded;
}

}  // namespace pagedc::cli
