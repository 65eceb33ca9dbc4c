// `pagedc inspect`: loads and checks a compiled artifact and summarises it: source, options, op
// counts, parameters, model geometry, and how much a KV cache budget holds.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <iostream>

#include "cli/ByteSize.h"
#include "cli/Commands.h"
#include "cli/DefaultModel.h"
#include "ir/Error.h"
#include "runtime/Artifact.h"
#include "runtime/BlockPool.h"

namespace pagedc::cli {

namespace {
struct InspectOptions {
  std::string artifact;
  std::string kvMemory = "1GiB";
  bool json = false;
  bool noVerify = false;
};

// Sequence lengths whose capacity is reported, as a feel for what the budget means.
constexpr int64_t kSequenceLengths[] = {512, 2048};

struct KvCapacity {
  uint64_t budget = 0;
  int64_t bytesPerToken = 0;
  int64_t blockSize = 0;
  int64_t bytesPerBlock = 0;
  int64_t blocks = 0;
  int64_t tokens = 0;
  std::vector<std::pair<int64_t, int64_t>> sequences;  // (length, how many fit)
};

// Paged allocation: whole blocks only, and a sequence of n tokens holds ceil(n / block) of them.
KvCapacity kvCapacity(const ModelFacts& facts, uint64_t budget) {
  KvCapacity kv;
  kv.budget = budget;
  kv.bytesPerToken = facts.kvBytesPerToken();
  kv.blockSize = facts.blockSize;
  kv.bytesPerBlock = kv.bytesPerToken * kv.blockSize;
  if (kv.bytesPerBlock <= 0) return kv;
  kv.blocks = numBlocksForBudget(static_cast<int64_t>(std::min<uint64_t>(budget, INT64_MAX)), facts);
  kv.tokens = kv.blocks * kv.blockSize;
  for (int64_t length : kSequenceLengths) kv.sequences.emplace_back(length, kv.blocks / ((length + kv.blockSize - 1) / kv.blockSize));
  return kv;
}

int64_t total(const std::map<std::string, int64_t>& counts) {
  int64_t sum = 0;
  for (const auto& [name, count] : counts) sum += count;
  return sum;
}

nlohmann::ordered_json toJson(const Artifact& artifact, const KvCapacity& kv) {
  const ArtifactManifest& m = artifact.manifest;
  nlohmann::ordered_json full = manifestToJson(m);
  nlohmann::ordered_json sequences = nlohmann::ordered_json::object();
  for (const auto& [length, count] : kv.sequences) sequences[std::to_string(length)] = count;
  return {
      {"artifact", artifact.path},
      {"format_version", m.formatVersion},
      {"pagedc_version", m.pagedcVersion},
      {"source", full["source"]},
      {"options", full["options"]},
      {"facts", full["facts"]},
      {"op_counts", {{"before", m.opCountsBefore}, {"after", m.opCountsAfter}, {"total_before", total(m.opCountsBefore)}, {"total_after", total(m.opCountsAfter)}}},
      {"parameters", {{"count", m.parameterCount()}, {"bytes", m.parameterBytes()}, {"tensors", m.weights.size()}}},
      {"kv_cache",
       {{"bytes_per_token", kv.bytesPerToken},
        {"block_size", kv.blockSize},
        {"bytes_per_block", kv.bytesPerBlock},
        {"budget_bytes", kv.budget},
        {"blocks", kv.blocks},
        {"tokens", kv.tokens},
        {"sequences", sequences}}},
      {"inputs", full["inputs"]},
      {"outputs", full["outputs"]},
      {"files", full["files"]},
  };
}

void printText(const Artifact& artifact, const KvCapacity& kv) {
  const ArtifactManifest& m = artifact.manifest;
  const ModelFacts& f = m.facts;
  std::ostream& out = std::cout;
  out << "artifact:   " << artifact.path << " (format " << m.formatVersion << ", pagedc " << m.pagedcVersion << ")\n";
  out << "source:     " << (m.sourcePath.empty() ? "(not recorded)" : m.sourcePath) << "\n";
  if (!m.sourceSha256.empty()) out << "            sha256 " << m.sourceSha256 << "\n";
  out << "options:    block size " << m.options.blockSize << ", dtype " << dtypeName(m.options.dtype) << ", target " << m.options.target << "\n";
  out << "model:      " << f.numLayers << " layers, " << f.numHeads << " heads, " << f.numKvHeads << " kv heads, head dim " << f.headDim
      << ", hidden " << f.hiddenSize << ", vocab " << f.vocabSize << "\n";
  out << "positions:  max " << (f.maxPositions > 0 ? std::to_string(f.maxPositions) : "unbounded") << ", sliding window "
      << (f.slidingWindow > 0 ? std::to_string(f.slidingWindow) : "none");
  if (f.rotary.present) {
    out << ", rotary dim " << f.rotary.rotaryDim << (f.rotary.interleaved ? " interleaved" : " halves");
    if (f.rotary.base > 0) out << " base " << f.rotary.base;
  }
  out << "\n";
  out << "parameters: " << groupDigits(m.parameterCount()) << " in " << m.weights.size() << " tensors, "
      << formatBytes(m.parameterBytes()) << " (" << dtypeName(f.weightDType) << ")\n";
  out << "kv cache:   " << dtypeName(f.kvDType) << ", " << groupDigits(kv.bytesPerToken) << " bytes per token, "
      << groupDigits(kv.bytesPerBlock) << " bytes per block of " << kv.blockSize << " tokens\n";
  out << "kv budget:  " << formatBytes(kv.budget) << " (" << groupDigits(static_cast<int64_t>(kv.budget)) << " bytes): ";
  if (kv.bytesPerBlock <= 0) {
    out << "unknown (the manifest records no KV cache layout)\n";
  } else {
    out << groupDigits(kv.blocks) << " blocks, " << groupDigits(kv.tokens) << " tokens";
    for (const auto& [length, count] : kv.sequences) out << "; " << groupDigits(count) << " sequences of " << length;
    out << "\n";
  }
  if (!f.kernelVariants.empty()) {
    out << "kernels:   ";
    for (const std::string& variant : f.kernelVariants) out << " " << variant;
    out << "\n";
  }
  if (!m.kernels.empty()) {
    // `pagedc compile --target cuda`: cubins per architecture, used before the JIT.
    std::map<int, std::pair<int64_t, uint64_t>> perArch;
    for (const KernelEntry& kernel : m.kernels) {
      perArch[kernel.arch].first += 1;
      perArch[kernel.arch].second += kernel.bytes;
    }
    out << "cuda:       ";
    const char* separator = "";
    for (const auto& [arch, counts] : perArch) {
      out << separator << "sm_" << arch << " " << counts.first << " cubins (" << formatBytes(counts.second) << ")";
      separator = ", ";
    }
    out << "\n";
  }

  std::map<std::string, std::pair<int64_t, int64_t>> rows;
  for (const auto& [op, count] : m.opCountsBefore) rows[op].first = count;
  for (const auto& [op, count] : m.opCountsAfter) rows[op].second = count;
  size_t width = 5;
  for (const auto& [op, counts] : rows) width = std::max(width, op.size());
  out << "ops:\n  " << std::left << std::setw(static_cast<int>(width)) << "op" << std::right << "  before   after\n";
  for (const auto& [op, counts] : rows)
    out << "  " << std::left << std::setw(static_cast<int>(width)) << op << std::right << std::setw(8) << counts.first << std::setw(8)
        << counts.second << "\n";
  out << "  " << std::left << std::setw(static_cast<int>(width)) << "total" << std::right << std::setw(8) << total(m.opCountsBefore)
      << std::setw(8) << total(m.opCountsAfter) << "\n";

  out << "inputs:\n";
  for (const ArtifactValue& value : m.inputs) out << "  " << value.name << ": " << value.type << "\n";
  out << "outputs:\n";
  for (const ArtifactValue& value : m.outputs) out << "  " << value.name << ": " << value.type << "\n";
}

void run(const InspectOptions& options) {
  uint64_t budget = parseByteSize(options.kvMemory, "--kv-memory");
  std::string path = options.artifact.empty() ? defaultArtifactPath(defaultOnnxModel()) : options.artifact;
  Artifact artifact = loadArtifact(path, {.verifyChecksums = !options.noVerify});
  KvCapacity kv = kvCapacity(artifact.facts(), budget);
  if (options.json)
    std::cout << toJson(artifact, kv).dump(2) << "\n";
  else
    printText(artifact, kv);
}
}  // namespace

void addInspectCommand(CLI::App& app) {
  auto options = std::make_shared<InspectOptions>();
  auto* command = app.add_subcommand("inspect", "check a compiled artifact (model.pgc) and summarise it");
  command->add_option("artifact", options->artifact, "the artifact directory (default: what `pagedc compile` writes for the bundled model)");
  command->add_option("--kv-memory", options->kvMemory, "KV cache budget to size: bytes, or with a unit (512MiB, 1GiB, 8GB)")->capture_default_str();
  command->add_flag("--json", options->json, "print the summary as JSON");
  command->add_flag("--no-verify", options->noVerify, "skip the SHA-256 checks (sizes and the weight index are still checked)");
  command->callback([options] { run(*options); });
}

}  // namespace pagedc::cli
