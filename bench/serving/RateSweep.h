// Runs a setup at several request rates and finds the highest rate it sustains: the paper's Figure
// 12 reading, where normalized latency stays flat until the system saturates and then explodes.
#pragma once

#include <functional>
#include <vector>

#include "bench/serving/ServingBench.h"

namespace pagedc::bench {

struct SweepPoint {
  double rate = 0.0;
  RunSummary summary;
};

// The highest rate whose normalized latency is at most slo (seconds per output token), interpolated
// linearly between the last rate under it and the first over it. 0 when even the lowest rate is
// over; the highest rate swept (a lower bound) when none is. Points must be sorted by rate.
double sustainedRate(const std::vector<SweepPoint>& points, double slo);
// Whether sustainedRate's answer is only a lower bound (no point exceeded slo).
bool sustainedRateIsLowerBound(const std::vector<SweepPoint>& points, double slo);

// Runs the rates in increasing order; stops after the first two rates over slo * stopFactor (their
// latencies only grow from there).
std::vector<SweepPoint> sweepRates(const std::vector<double>& rates, const std::function<RunSummary(double)>& runAt, double slo,
                                   double stopFactor = 4.0);

}  // namespace pagedc::bench
