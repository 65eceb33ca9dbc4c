// The engine flags `pagedc generate` and `serve` share, and building the runner (CPU or CUDA,
// --device) and engine configuration from them.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/Artifact.h"
#include "runtime/Engine.h"
#include "runtime/ModelRunner.h"

namespace pagedc::cli {

struct EngineOptions {
  // Bytes with a unit, or a fraction (0, 1] of available memory (CUDA: of the device memory free
  // after loading); empty: 4 GiB (CUDA: 90% of the free device memory), capped at what
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
  std::string device = "auto";  // cpu, cuda, auto or emulated (runtime/cuda/DeviceSelection.h)
  int cudaDevice = 0;           // which GPU
  bool cudaGraphs = true;       // CUDA graphs for decode steps

  void addTo(CLI::App& command);
};

// The artifact a command runs: the given path, or the bundled model's (compiled in memory when
// `pagedc compile` has not written it yet).
Artifact loadModelForCommand(const std::string& path);

struct LoadedEngine {
  Artifact artifact;
  std::unique_ptr<ModelRunner> runner;
  std::string deviceDescription;  // "cpu", or the GPU's name
  std::unique_ptr<Engine> engine;
};

// Throws Error naming the flag at fault (an unreadable size, a pool smaller than one block, --device
// cuda without a usable GPU).
// detokenize: for stop strings and streamed text (EngineConfig::detokenize); may be empty.
LoadedEngine buildEngine(Artifact artifact, const EngineOptions& options, Detokenizer detokenize = {});

}  // namespace pagedc::cli
