// Prefill and decode throughput of the CPU backend on a compiled artifact, at several batch sizes,
// next to the memory-bandwidth bound of decoding (every step reads every weight once).
//
// Drives CpuModelRunner with plans built here (no scheduler or sampler), so the figures are the
// model's: prefill = prompt tokens per second with steps of up to --max-batched-tokens tokens;
// decode = sequences x steps per second with every sequence decoding one token per step.
//   bench_runtime_throughput ARTIFACT [--batch 1,16,64,256] [--prompt-len 128] [--decode-steps 32]
//                            [--bandwidth GBPS] [--threads N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "ir/Error.h"
#include "runtime/Artifact.h"
#include "runtime/cpu/CpuModelRunner.h"

using namespace pagedc;

namespace {
std::vector<int64_t> parseList(const std::string& text) {
  std::vector<int64_t> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) values.push_back(std::stoll(item));
  return values;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s ARTIFACT [--batch 1,16,64,256] [--prompt-len 128] [--decode-steps 32] [--bandwidth GBPS] [--threads N]\n", argv[0]);
    return 2;
  }
  std::string path = argv[1];
  std::vector<int64_t> batches = {1, 16, 64, 256};
  int64_t promptLen = 128, decodeSteps = 32, maxBatched = 2048;
  double bandwidth = 0;
  int threads = 0;
  bool profile = false;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--batch") batches = parseList(value);
    else if (flag == "--prompt-len") promptLen = std::stoll(value);
    else if (flag == "--decode-steps") decodeSteps = std::stoll(value);
    else if (flag == "--bandwidth") bandwidth = std::stod(value);
    else if (flag == "--threads") threads = std::stoi(value);
    else if (flag == "--max-batched-tokens") maxBatched = std::stoll(value);
    else if (flag == "--profile") profile = value == "1";
    else fail("unknown flag ", flag);
  }
  Artifact artifact = loadArtifact(path, {.verifyChecksums = false});
  const ModelFacts& facts = artifact.facts();
  const auto weightBytes = static_cast<int64_t>(artifact.weightsFile->size());
  std::printf("artifact %s: %lld layers, hidden %lld, vocab %lld, weights %s, %.1f MB; block size %lld; prompt %lld, %lld decode steps\n",
              path.c_str(), static_cast<long long>(facts.numLayers), static_cast<long long>(facts.hiddenSize),
              static_cast<long long>(facts.vocabSize), std::string(dtypeName(facts.weightDType)).c_str(), weightBytes / 1e6,
              static_cast<long long>(facts.blockSize), static_cast<long long>(promptLen), static_cast<long long>(decodeSteps));
  std::printf("%6s | %14s | %14s | %12s | %s\n", "batch", "prefill tok/s", "decode tok/s", "ms/decode", "decode vs bandwidth bound");
  for (int64_t batch : batches) {
    const int64_t blockSize = facts.blockSize;
    const int64_t blocksPerSeq = (promptLen + decodeSteps + blockSize - 1) / blockSize;
    cpu::CpuRunnerConfig config;
    config.numDeviceBlocks = batch * blocksPerSeq;
    config.maxNumBatchedTokens = std::max(maxBatched, batch);
    config.maxNumSeqs = batch;
    config.maxModelLen = promptLen + decodeSteps;
    config.threads = threads;
    cpu::CpuModelRunner runner(artifact, config);
    // A decode step reads every GEMM weight once (the embedding table only for its rows).
    const double bytesPerStep = static_cast<double>(runner.planSummary().packedWeightBytes);
    std::vector<std::vector<BlockId>> tables(static_cast<size_t>(batch));
    for (int64_t s = 0; s < batch; ++s)
      for (int64_t b = 0; b < blocksPerSeq; ++b) tables[static_cast<size_t>(s)].push_back(s * blocksPerSeq + b);
    auto scheduled = [&](int64_t s, int64_t begin, int64_t count) {
      ScheduledSequence seq;
      seq.requestId = std::to_string(s);
      seq.seq = s;
      for (int64_t p = begin; p < begin + count; ++p) {
        seq.tokens.push_back((s * 7919 + p * 104729) % facts.vocabSize);
        seq.positions.push_back(p);
        seq.slots.push_back(tables[static_cast<size_t>(s)][static_cast<size_t>(p / blockSize)] * blockSize + p % blockSize);
      }
      seq.contextLen = begin + count;
      seq.blockTable = tables[static_cast<size_t>(s)];
      seq.needsLogits = begin + count >= promptLen;
      return seq;
    };
    // Prefill: whole prompts packed into steps of at most maxBatched tokens (one prompt may span
    // steps). Run twice and timed the second time: the first pass faults in the KV pool's pages
    // and creates the GEMM primitives, one-time costs a server pays at warm-up.
    StepPlan plan;
    auto prefill = [&] {
      int64_t inStep = 0;
      plan.seqs.clear();
      for (int64_t s = 0; s < batch; ++s) {
        int64_t done = 0;
        while (done < promptLen) {
          int64_t take = std::min(promptLen - done, config.maxNumBatchedTokens - inStep);
          plan.seqs.push_back(scheduled(s, done, take));
          done += take;
          inStep += take;
          if (inStep == config.maxNumBatchedTokens) {
            runner.execute(plan);
            plan.seqs.clear();
            inStep = 0;
          }
        }
      }
      if (!plan.seqs.empty()) runner.execute(plan);
    };
    prefill();
    if (profile) runner.executor().setProfiling(false);
    double start = now();
    prefill();
    const double prefillSeconds = now() - start;
    if (profile) runner.executor().setProfiling(true);
    // Decode: every sequence one token per step.
    start = now();
    for (int64_t step = 0; step < decodeSteps; ++step) {
      plan.seqs.clear();
      for (int64_t s = 0; s < batch; ++s) plan.seqs.push_back(scheduled(s, promptLen + step, 1));
      runner.execute(plan);
    }
    const double decodeSeconds = now() - start;
    const double decodeRate = static_cast<double>(batch * decodeSteps) / decodeSeconds;
    const double stepMs = decodeSeconds / static_cast<double>(decodeSteps) * 1e3;
    std::string bound = "-";
    if (bandwidth > 0) {
      const double boundStepsPerSecond = bandwidth * 1e9 / bytesPerStep;
      char text[128];
      std::snprintf(text, sizeof text, "%.1f MB/step: bound %.1f steps/s, achieved %.0f%%", bytesPerStep / 1e6, boundStepsPerSecond,
                    100.0 * (1e3 / stepMs) / boundStepsPerSecond);
      bound = text;
    }
    std::printf("%6lld | %14.1f | %14.1f | %12.2f | %s\n", static_cast<long long>(batch),
                static_cast<double>(batch * promptLen) / prefillSeconds, decodeRate, stepMs, bound.c_str());
    if (profile)
      for (const auto& [op, seconds] : runner.executor().profileSeconds())
        std::printf("    %-28s %8.3f ms per decode step\n", op.c_str(), seconds / static_cast<double>(decodeSteps) * 1e3);
    std::fflush(stdout);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_runtime_throughput: %s\n", e.what());
  return 1;
}
