// Engine flags and the CPU engine they configure.
#include "cli/EngineOptions.h"

#include <unistd.h>

#include <cstdlib>
#include <vector>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "cli/ByteSize.h"
#include "cli/DefaultModel.h"
#include "codegen/ArtifactWriter.h"
#include "frontend/OnnxImporter.h"
#include "ir/Error.h"
#include "passes/CompilePipeline.h"
#include "runtime/BlockPool.h"
#include "runtime/GenerationDefaults.h"

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
                     "--max-num-seqs sequences of --max-model-len tokens can use)");
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

LoadedEngine buildEngine(Artifact artifact, const EngineOptions& options, Detokenizer detokenize) {
  const ModelFacts& facts = artifact.facts();
  if (artifact.manifest.options.target != "cpu")
    fail("artifact '", artifact.path, "' is compiled for target '", artifact.manifest.options.target,
         "'; this build runs the cpu target (compile with --target cpu)");
  const int64_t bytesPerBlock = facts.kvBytesPerToken() * facts.blockSize;
  cpu::CpuRunnerConfig config;
  // Default context: the position table's rows, but no more than the trained context config.json
  // names (a rotary table can be longer than what the model has learnt to use).
  int64_t modelLen = facts.maxPositions > 0 ? facts.maxPositions : 2048;
  if (auto trained = readGenerationDefaults(artifact.path).maxPositionEmbeddings) modelLen = std::min(modelLen, *trained);
  config.maxModelLen = options.maxModelLen > 0 ? options.maxModelLen : modelLen;
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
  config.numHostBlocks = numBlocksForBudget(static_cast<int64_t>(std::min<uint64_t>(parseByteSize(options.swapSpace, "--swap-space"), INT64_MAX)), facts);
  config.maxNumBatchedTokens = options.maxNumBatchedTokens;
  config.maxNumSeqs = options.maxNumSeqs;
  config.threads = options.threads;

  LoadedEngine loaded{std::move(artifact), nullptr, nullptr};
  loaded.runner = std::make_unique<cpu::CpuModelRunner>(loaded.artifact, config);
  // Ops without a CPU kernel still run (through their reference implementations) but slowly and
  // allocating: say which, so a slow model is explained.
  std::map<std::string, int> fallbacks;
  for (const std::string& op : loaded.runner->planSummary().fallbackOps) ++fallbacks[op];
  if (!fallbacks.empty()) {
    std::cerr << "pagedc: note: ops without a CPU kernel run through the reference implementation:";
    for (const auto& [op, count] : fallbacks) std::cerr << " " << op << " x" << count;
    std::cerr << "\n";
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
