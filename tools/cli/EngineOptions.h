// The engine flags `pagedc generate` (and later `serve` and `bench`) share, and building the CPU
// runner and engine configuration from them.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/Artifact.h"
#include "runtime/Engine.h"
#include "runtime/cpu/CpuModelRunner.h"

namespace pagedc::cli {

struct EngineOptions {
  // Bytes with a unit, or a fraction (0, 1] of available memory; empty: 4 GiB, capped at what
  // max_num_seqs sequences of max_model_len tokens can use.
  std::string kvCacheMemory;
  std::string swapSpace = "1GiB";
  int64_t maxNumBatchedTokens = 2048;
  int64_t maxNumSeqs = 256;
  int64_t maxModelLen = 0;  // 0: the model's maximum positions (2048 when it has none)
  std::string preemptionMode = "recompute";
  bool noPrefixCaching = false;
  bool chunkedPrefill = true;
  int threads = 0;

  void addTo(CLI::App& command);
};

// The artifact a command runs: the given path, or the bundled model's (compiled in memory when
// `pagedc compile` has not written it yet).
Artifact loadModelForCommand(const std::string& path);

struct LoadedEngine {
  Artifact artifact;
  std::unique_ptr<cpu::CpuModelRunner> runner;
  std::unique_ptr<Engine> engine;
};

// Throws Error naming the flag at fault (an unreadable size, a pool smaller than one block).
// detokenize: for stop strings and streamed text (EngineConfig::detokenize); may be empty.
LoadedEngine buildEngine(Artifact artifact, const EngineOptions& options, Detokenizer detokenize = {});

}  // namespace pagedc::cli
