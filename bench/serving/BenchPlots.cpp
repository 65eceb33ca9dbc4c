#include "bench/serving/BenchPlots.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "bench/serving/SvgPlot.h"

namespace pagedc::bench {

std::string latencyVsRatePlot(const std::string& title, const std::map<std::string, std::vector<SweepPoint>>& sweeps, double yMax) {
  LinePlot plot;
  plot.title = title;
  plot.xLabel = "request rate (req/s)";
  plot.yLabel = "normalized latency (s/token)";
  double lowest = std::numeric_limits<double>::infinity();
  for (const auto& [label, points] : sweeps) {
    PlotSeries s;
    s.label = label;
    for (const SweepPoint& p : points) {
      s.x.push_back(p.rate);
      s.y.push_back(p.summary.completed > 0 ? p.summary.normalizedLatency : std::numeric_limits<double>::quiet_NaN());
      if (p.summary.completed > 0) lowest = std::min(lowest, p.summary.normalizedLatency);
    }
    plot.series.push_back(std::move(s));
  }
  if (yMax > 0) plot.yMax = yMax;
  else if (std::isfinite(lowest)) plot.yMax = 4.0 * lowest;
  plot.yMin = 0.0;
  plot.xMin = 0.0;
  return renderLinePlot(plot);
}

std::string memoryBreakdownPlot(const std::string& title, const std::vector<RunSummary>& runs) {
  StackedBars bars;
  bars.title = title;
  bars.yLabel = "KV memory in use (%)";
  bars.segments = {"token states", "reservation", "internal fragmentation", "external fragmentation"};
  for (const RunSummary& r : runs) {
    bars.bars.push_back(r.label);
    bars.values.push_back({100 * r.kvTokenStates, 100 * r.kvReservation, 100 * r.kvInternal, 100 * r.kvExternal});
  }
  return renderStackedBars(bars);
}

std::string batchOverTimePlot(const std::string& title, const std::vector<const RunResult*>& runs) {
  LinePlot plot;
  plot.title = title;
  plot.xLabel = "time (s)";
  plot.yLabel = "sequences per step";
  plot.markers = false;
  plot.yMin = 0.0;
  for (const RunResult* run : runs) {
    PlotSeries s;
    s.label = run->setup.label();
    const size_t stride = std::max<size_t>(1, run->steps.size() / 1500);
    for (size_t i = 0; i < run->steps.size(); i += stride) {
      s.x.push_back(run->steps[i].end);
      s.y.push_back(static_cast<double>(run->steps[i].numSeqs));
    }
    plot.series.push_back(std::move(s));
  }
  return renderLinePlot(plot);
}

}  // namespace pagedc::bench
