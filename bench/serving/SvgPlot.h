// Plots for benchmark reports as standalone SVG text: line charts (latency against request rate,
// batch size over time) and stacked bars (the KV memory breakdown), drawn like the PagedAttention
// paper's figures. No plotting library: SVG is text, and the report must be reproducible anywhere
// pagedc builds.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pagedc::bench {

struct PlotSeries {
  std::string label;
  std::vector<double> x, y;  // same length; NaN y values leave a gap
};

struct LinePlot {
  std::string title;
  std::string xLabel, yLabel;
  std::vector<PlotSeries> series;
  std::optional<double> yMax;  // clip (the paper cuts latency curves off where they explode)
  std::optional<double> xMin, xMax, yMin;
  bool markers = true;
  int width = 640, height = 400;
};

struct StackedBars {
  std::string title;
  std::string yLabel;
  std::vector<std::string> bars;                // one bar per entry, left to right
  std::vector<std::string> segments;            // stacked bottom to top, one colour each
  std::vector<std::vector<double>> values;      // values[bar][segment]
  bool showPercentLabels = true;                // write each segment's value (when tall enough)
  int width = 640, height = 400;
};

// Escapes text; chooses "nice" axis ticks; a legend box. Throws Error when series lengths differ or
// a stacked value is negative or not finite.
std::string renderLinePlot(const LinePlot& plot);
std::string renderStackedBars(const StackedBars& plot);

}  // namespace pagedc::bench
