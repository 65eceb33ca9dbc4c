// The benchmark's figures as SVG, drawn like the PagedAttention paper's: normalized latency against
// request rate per policy (Figures 12-16), the KV memory breakdown per policy (Figure 2), and the
// number of batched sequences over time.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bench/serving/RateSweep.h"
#include "bench/serving/ServingBench.h"

namespace pagedc::bench {

// One series per label; the y axis is cut at yMax (0: 4x the sweep's lowest latency) as the paper cuts exploding curves.
std::string latencyVsRatePlot(const std::string& title, const std::map<std::string, std::vector<SweepPoint>>& sweeps, double yMax = 0.0);
// One stacked bar per run: token states, reservation, internal, external fragmentation (% of the KV memory in use).
std::string memoryBreakdownPlot(const std::string& title, const std::vector<RunSummary>& runs);
// Sequences per step against time, one series per run.
std::string batchOverTimePlot(const std::string& title, const std::vector<const RunResult*>& runs);

}  // namespace pagedc::bench
