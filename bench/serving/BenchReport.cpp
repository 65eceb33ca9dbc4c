#include "bench/serving/BenchReport.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>

namespace pagedc::bench {

namespace {
std::string fixed(double v, int digits) {
  if (std::isnan(v)) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}
nlohmann::json percentilesJson(const Percentiles& p) {
  auto v = [](double x) { return std::isnan(x) ? nlohmann::json() : nlohmann::json(x); };
  return {{"p50", v(p.p50)}, {"p90", v(p.p90)}, {"p99", v(p.p99)}, {"mean", v(p.mean)}};
}
}  // namespace

void printSummaryTable(std::ostream& out, const std::vector<RunSummary>& runs) {
  char line[512];
  std::snprintf(line, sizeof line, "%-26s %7s %5s %7s %8s %9s %8s %8s %8s %8s %8s %6s %6s %6s %6s %6s %6s %6s %5s\n", "policy", "rate",
                "fail", "req/s", "out tok/s", "norm s/tok", "ttft p50", "ttft p99", "tpot p50", "tpot p90", "tpot p99", "batch", "token%",
                "resv%", "int%", "ext%", "shared", "prefix", "preem");
  out << line;
  for (const RunSummary& s : runs) {
    std::snprintf(line, sizeof line, "%-26s %7s %5lld %7s %8s %9s %8s %8s %8s %8s %8s %6s %6s %6s %6s %6s %6s %6s %5lld\n",
                  s.label.c_str(), std::isinf(s.rate) ? "inf" : fixed(s.rate, 2).c_str(), static_cast<long long>(s.failed),
                  fixed(s.requestsPerSecond, 3).c_str(), fixed(s.outputTokensPerSecond, 1).c_str(), fixed(s.normalizedLatency, 4).c_str(),
                  fixed(s.ttft.p50, 3).c_str(), fixed(s.ttft.p99, 3).c_str(), fixed(s.tpot.p50, 4).c_str(), fixed(s.tpot.p90, 4).c_str(),
                  fixed(s.tpot.p99, 4).c_str(), fixed(s.meanBatchSeqs, 1).c_str(), fixed(100 * s.kvTokenStates, 1).c_str(),
                  fixed(100 * s.kvReservation, 1).c_str(), fixed(100 * s.kvInternal, 1).c_str(), fixed(100 * s.kvExternal, 1).c_str(),
                  fixed(100 * s.sharingSaved, 1).c_str(), fixed(100 * s.prefixHitRate, 1).c_str(), static_cast<long long>(s.preemptions));
    out << line;
  }
}

nlohmann::json summaryToJson(const RunSummary& s) {
  return {{"label", s.label},
          {"rate", std::isinf(s.rate) ? nlohmann::json("inf") : nlohmann::json(s.rate)},
          {"requests", s.numRequests},
          {"completed", s.completed},
          {"failed", s.failed},
          {"seconds", s.seconds},
          {"requests_per_second", s.requestsPerSecond},
          {"output_tokens_per_second", s.outputTokensPerSecond},
          {"total_tokens_per_second", s.totalTokensPerSecond},
          {"normalized_latency", s.normalizedLatency},
          {"mean_latency", s.meanLatency},
          {"ttft", percentilesJson(s.ttft)},
          {"tpot", percentilesJson(s.tpot)},
          {"itl", percentilesJson(s.itl)},
          {"mean_batch_seqs", s.meanBatchSeqs},
          {"max_batch_seqs", s.maxBatchSeqs},
          {"kv", {{"token_states", s.kvTokenStates}, {"reservation", s.kvReservation}, {"internal_fragmentation", s.kvInternal},
                  {"external_fragmentation", s.kvExternal}, {"used_fraction_of_budget", s.kvUsedFraction}}},
          {"sharing_saved", s.sharingSaved},
          {"prefix_hit_rate", s.prefixHitRate},
          {"preemptions", s.preemptions},
          {"swapped_blocks", s.swappedBlocks},
          {"prompt_tokens_computed", s.promptTokensComputed},
          {"measured_over_modelled_step", {{"prompt_steps", std::isnan(s.stepRatioPrompt) ? nlohmann::json() : nlohmann::json(s.stepRatioPrompt)},
                                           {"decode_steps", std::isnan(s.stepRatioDecode) ? nlohmann::json() : nlohmann::json(s.stepRatioDecode)}}}};
}

nlohmann::json timelineToJson(const RunResult& run, size_t maxPoints) {
  nlohmann::json t = {{"time", nlohmann::json::array()}, {"batch_seqs", nlohmann::json::array()}, {"kv_used", nlohmann::json::array()}};
  const size_t stride = std::max<size_t>(1, (run.steps.size() + maxPoints - 1) / std::max<size_t>(maxPoints, 1));
  for (size_t i = 0; i < run.steps.size(); i += stride) {
    const StepRecord& s = run.steps[i];
    t["time"].push_back(s.end);
    t["batch_seqs"].push_back(s.numSeqs);
    t["kv_used"].push_back(s.kv.capacitySlots > 0 ? 1.0 - static_cast<double>(s.kv.freeSlots) / static_cast<double>(s.kv.capacitySlots) : 0.0);
  }
  return t;
}

}  // namespace pagedc::bench
