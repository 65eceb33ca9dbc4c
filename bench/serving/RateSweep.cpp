#include "bench/serving/RateSweep.h"

#include <algorithm>

namespace pagedc::bench {

double sustainedRate(const std::vector<SweepPoint>& points, double slo) {
  if (points.empty()) return 0.0;
  for (size_t i = 0; i < points.size(); ++i) {
    const double latency = points[i].summary.normalizedLatency;
    if (latency <= slo && points[i].summary.completed > 0) continue;
    if (i == 0) return 0.0;
    const SweepPoint& under = points[i - 1];
    const double l0 = under.summary.normalizedLatency;
    const double t = (slo - l0) / (latency - l0);
    return under.rate + std::clamp(t, 0.0, 1.0) * (points[i].rate - under.rate);
  }
  return points.back().rate;
}

bool sustainedRateIsLowerBound(const std::vector<SweepPoint>& points, double slo) {
  return std::ranges::all_of(points, [&](const SweepPoint& p) { return p.summary.normalizedLatency <= slo && p.summary.completed > 0; });
}

std::vector<SweepPoint> sweepRates(const std::vector<double>& rates, const std::function<RunSummary(double)>& runAt, double slo,
                                   double stopFactor) {
  std::vector<double> sorted = rates;
  std::ranges::sort(sorted);
  std::vector<SweepPoint> points;
  int over = 0;
  for (double rate : sorted) {
    RunSummary s = runAt(rate);
    s.rate = rate;
    points.push_back({rate, s});
    if (s.normalizedLatency > slo * stopFactor && ++over >= 2) break;
  }
  return points;
}

}  // namespace pagedc::bench
