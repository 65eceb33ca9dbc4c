#include "bench/serving/BenchMetrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace pagedc::bench {

namespace {

// numpy.percentile's default ("linear"): position q * (n - 1) between the order statistics.
double interpolated(const std::vector<double>& sorted, double q) {
  double pos = q * static_cast<double>(sorted.size() - 1);
  auto lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

}  // namespace

Percentiles percentiles(std::vector<double> values) {
  std::erase_if(values, [](double v) { return std::isnan(v); });
  Percentiles p;
  if (values.empty()) return p;
  std::ranges::sort(values);
  p.p50 = interpolated(values, 0.50);
  p.p90 = interpolated(values, 0.90);
  p.p99 = interpolated(values, 0.99);
  p.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  return p;
}

}  // namespace pagedc::bench
