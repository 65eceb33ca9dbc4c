// What a benchmark run records (per request, per step) and the summary it reduces to: throughput,
// normalized latency, TTFT / TPOT / inter-token percentiles, batch sizes, the KV budget's breakdown.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "runtime/Scheduler.h"

namespace pagedc::bench {

inline constexpr double kNotSeen = std::numeric_limits<double>::quiet_NaN();

// One request as the benchmark saw it; times in seconds from the benchmark's start.
struct RequestRecord {
  std::string id;
  double arrival = 0.0;
  double firstToken = kNotSeen;  // when its first output token was available
  double finish = kNotSeen;      // when its last output token (or its failure) was reported
  int64_t promptTokens = 0;
  int64_t expectedOutputTokens = 0;  // per completion, what was asked for
  int64_t outputTokens = 0;          // generated, over all completions
  // Gaps between consecutive output tokens (chunks) of the first completion, seconds.
  std::vector<double> interTokenGaps;
  bool ok = false;
  std::string error;  // why not ok
};

// One engine step (in-process runs): when it ended, how long it took, what it computed, and the
// KV budget after it.
struct StepRecord {
  double end = 0.0;
  double seconds = 0.0;
  int64_t numSeqs = 0;
  int64_t numTokens = 0;
  int64_t numRunningSeqs = 0;  // sequences of running groups after the step
  int64_t numWaiting = 0;
  KvUsage kv;
  int64_t usedBlocks = 0;
  int64_t unsharedBlocks = 0;  // block-table entries: the blocks without sharing
  // Real execution with a cost model at hand: what the model predicts for this step (to check it).
  double predictedSeconds = kNotSeen;
  bool hasPrompt = false;  // the step computed prompt tokens
};

struct Percentiles {
  double p50 = kNotSeen, p90 = kNotSeen, p99 = kNotSeen, mean = kNotSeen;
};
// Linear interpolation between order statistics (numpy's default); NaN entries are skipped; all NaN
// when values has none.
Percentiles percentiles(std::vector<double> values);

}  // namespace pagedc::bench
