// A benchmark's results as a table for stdout and as JSON.
#pragma once

#include <iosfwd>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bench/serving/ServingBench.h"

namespace pagedc::bench {

// One row per run: label, rate, req/s, tok/s, normalized latency, TTFT and TPOT p50/p90/p99, mean
// batch, KV breakdown, sharing, prefix hits, preemptions.
void printSummaryTable(std::ostream& out, const std::vector<RunSummary>& runs);

nlohmann::json summaryToJson(const RunSummary& s);
// The batch size and KV use over time of a run (for the timeline plot), downsampled to at most
// maxPoints steps.
nlohmann::json timelineToJson(const RunResult& run, size_t maxPoints = 2000);

}  // namespace pagedc::bench
