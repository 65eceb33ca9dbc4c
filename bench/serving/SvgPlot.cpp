#include "bench/serving/SvgPlot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "ir/Error.h"

namespace pagedc::bench {

namespace {

// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
const char* const kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"};
constexpr int kNumColours = 8;

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '"': out += "&quot;"; break;
    case '\'': out += "&apos;"; break;
    default: out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", v);
  return text;
}

// Tick labels: enough digits to tell neighbours apart, no trailing noise.
std::string tickLabel(double v, double step) {
  char text[32];
  int digits = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step)));
  std::snprintf(text, sizeof text, "%.*f", std::min(digits, 6), v);
  return text;
}

// A "nice" step (1, 2 or 5 x 10^k) giving about `target` intervals over [lo, hi].
double niceStep(double lo, double hi, int target = 5) {
  const double raw = (hi - lo) / target;
  if (!(raw > 0)) return 1.0;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * magnitude) return m * magnitude;
  return 10 * magnitude;
}

struct Frame {
  int width, height;
  double left = 70, right = 170, top = 40, bottom = 55;  // margins; the legend sits at the right
  double x0, x1, y0, y1;
  double px(double x) const { return left + (x - x0) / (x1 - x0) * (width - left - right); }
  double py(double y) const { return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom); }
};

void header(std::ostringstream& svg, int width, int height, const std::string& title) {
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << width
      << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << " " << height
      << "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" << escape(title) << "</text>\n";
}

void axes(std::ostringstream& svg, const Frame& f, const std::string& xLabel, const std::string& yLabel, bool xTicks) {
  const double plotRight = f.width - f.right, plotBottom = f.height - f.bottom;
  svg << "<rect x=\"" << num(f.left) << "\" y=\"" << num(f.top) << "\" width=\"" << num(plotRight - f.left) << "\" height=\""
      << num(plotBottom - f.top) << "\" fill=\"none\" stroke=\"#444\"/>\n";
  const double ys = niceStep(f.y0, f.y1);
  for (double y = std::ceil(f.y0 / ys) * ys; y <= f.y1 + ys * 1e-9; y += ys)
    svg << "<line x1=\"" << num(f.left) << "\" x2=\"" << num(plotRight) << "\" y1=\"" << num(f.py(y)) << "\" y2=\"" << num(f.py(y))
        << "\" stroke=\"#ddd\"/>\n<text x=\"" << num(f.left - 6) << "\" y=\"" << num(f.py(y) + 4) << "\" text-anchor=\"end\">"
        << tickLabel(y, ys) << "</text>\n";
  if (xTicks) {
    const double xs = niceStep(f.x0, f.x1);
    for (double x = std::ceil(f.x0 / xs) * xs; x <= f.x1 + xs * 1e-9; x += xs)
      svg << "<line x1=\"" << num(f.px(x)) << "\" x2=\"" << num(f.px(x)) << "\" y1=\"" << num(plotBottom) << "\" y2=\"" << num(plotBottom + 4)
          << "\" stroke=\"#444\"/>\n<text x=\"" << num(f.px(x)) << "\" y=\"" << num(plotBottom + 17) << "\" text-anchor=\"middle\">"
          << tickLabel(x, xs) << "</text>\n";
  }
  svg << "<text x=\"" << num((f.left + plotRight) / 2) << "\" y=\"" << f.height - 12 << "\" text-anchor=\"middle\">" << escape(xLabel)
      << "</text>\n<text transform=\"translate(16," << num((f.top + plotBottom) / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
      << escape(yLabel) << "</text>\n";
}

// Marker shapes cycle with the colours, so series stay apart in greyscale too.
void marker(std::ostringstream& svg, int index, double x, double y, const char* colour) {
  switch (index % 4) {
  case 0: svg << "<circle cx=\"" << num(x) << "\" cy=\"" << num(y) << "\" r=\"3.5\" fill=\"" << colour << "\"/>\n"; break;
  case 1: svg << "<rect x=\"" << num(x - 3.5) << "\" y=\"" << num(y - 3.5) << "\" width=\"7\" height=\"7\" fill=\"" << colour << "\"/>\n"; break;
  case 2:
    svg << "<polygon points=\"" << num(x) << "," << num(y - 4.5) << " " << num(x - 4) << "," << num(y + 3) << " " << num(x + 4) << "," << num(y + 3)
        << "\" fill=\"" << colour << "\"/>\n";
    break;
  default:
    svg << "<polygon points=\"" << num(x) << "," << num(y - 4.5) << " " << num(x + 4.5) << "," << num(y) << " " << num(x) << "," << num(y + 4.5)
        << " " << num(x - 4.5) << "," << num(y) << "\" fill=\"" << colour << "\"/>\n";
  }
}

void legendEntry(std::ostringstream& svg, const Frame& f, int index, const std::string& label, const char* colour, bool line) {
  const double x = f.width - f.right + 12, y = f.top + 10 + 18 * index;
  if (line)
    svg << "<line x1=\"" << num(x) << "\" x2=\"" << num(x + 22) << "\" y1=\"" << num(y) << "\" y2=\"" << num(y) << "\" stroke=\"" << colour
        << "\" stroke-width=\"2\"/>\n";
  else
    svg << "<rect x=\"" << num(x + 4) << "\" y=\"" << num(y - 6) << "\" width=\"12\" height=\"12\" fill=\"" << colour << "\"/>\n";
  svg << "<text x=\"" << num(x + 28) << "\" y=\"" << num(y + 4) << "\">" << escape(label) << "</text>\n";
}

}  // namespace

std::string renderLinePlot(const LinePlot& plot) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const PlotSeries& s : plot.series) {
    if (s.x.size() != s.y.size())
      fail("plot '", plot.title, "': series '", s.label, "' has ", s.x.size(), " x values and ", s.y.size(), " y values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i])) fail("plot '", plot.title, "': series '", s.label, "' has a non-finite x value");
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      if (std::isnan(s.y[i])) continue;
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1;
  if (!std::isfinite(y0)) y0 = 0, y1 = 1;
  if (plot.xMin) x0 = *plot.xMin;
  if (plot.xMax) x1 = *plot.xMax;
  if (plot.yMin) y0 = *plot.yMin;
  if (plot.yMax) y1 = std::min(y1, *plot.yMax);
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  y1 += (y1 - y0) * 0.05;  // headroom so the top point is not on the frame
  Frame f{plot.width, plot.height};
  f.x0 = x0, f.x1 = x1, f.y0 = y0, f.y1 = y1;
  std::ostringstream svg;
  header(svg, plot.width, plot.height, plot.title);
  axes(svg, f, plot.xLabel, plot.yLabel, true);
  const double cut = plot.yMax.value_or(std::numeric_limits<double>::infinity());
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const PlotSeries& s = plot.series[k];
    const char* colour = kColours[k % kNumColours];
    // A polyline per run of plotted points: NaN leaves a gap, and a curve stops at the first point
    // above yMax, drawn at the top edge (the paper cuts exploding latency curves the same way).
    std::vector<std::pair<double, double>> run;
    auto flush = [&] {
      if (run.size() > 1) {
        svg << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\" points=\"";
        for (auto [x, y] : run) svg << num(x) << "," << num(y) << " ";
        svg << "\"/>\n";
      }
      run.clear();
    };
    bool cutOff = false;
    for (size_t i = 0; i < s.x.size() && !cutOff; ++i) {
      if (std::isnan(s.y[i])) {
        flush();
        continue;
      }
      cutOff = s.y[i] > cut;
      const double x = f.px(s.x[i]), y = f.py(std::min(s.y[i], f.y1));
      run.emplace_back(x, y);
      if (plot.markers) marker(svg, static_cast<int>(k), x, y, colour);
    }
    flush();
    legendEntry(svg, f, static_cast<int>(k), s.label, colour, true);
  }
  svg << "</svg>\n";
  return svg.str();
}

std::string renderStackedBars(const StackedBars& plot) {
  double top = 0.0;
  if (plot.values.size() != plot.bars.size())
    fail("plot '", plot.title, "': ", plot.bars.size(), " bars but ", plot.values.size(), " rows of values");
  for (size_t b = 0; b < plot.values.size(); ++b) {
    if (plot.values[b].size() != plot.segments.size())
      fail("plot '", plot.title, "': bar '", plot.bars[b], "' has ", plot.values[b].size(), " values for ", plot.segments.size(), " segments");
    double sum = 0.0;
    for (double v : plot.values[b]) {
      if (!std::isfinite(v) || v < 0) fail("plot '", plot.title, "': bar '", plot.bars[b], "' has a value ", v, " (must be finite and >= 0)");
      sum += v;
    }
    top = std::max(top, sum);
  }
  Frame f{plot.width, plot.height};
  f.x0 = 0, f.x1 = static_cast<double>(std::max<size_t>(plot.bars.size(), 1));
  f.y0 = 0, f.y1 = top > 0 ? top * 1.05 : 1.0;
  std::ostringstream svg;
  header(svg, plot.width, plot.height, plot.title);
  axes(svg, f, "", plot.yLabel, false);
  const double slot = f.px(1) - f.px(0), barWidth = slot * 0.6;
  for (size_t b = 0; b < plot.bars.size(); ++b) {
    const double x = f.px(static_cast<double>(b)) + (slot - barWidth) / 2;
    double base = 0.0;
    for (size_t k = 0; k < plot.segments.size(); ++k) {
      const double v = plot.values[b][k];
      const double yTop = f.py(base + v), yBottom = f.py(base);
      svg << "<rect x=\"" << num(x) << "\" y=\"" << num(yTop) << "\" width=\"" << num(barWidth) << "\" height=\"" << num(yBottom - yTop)
          << "\" fill=\"" << kColours[k % kNumColours] << "\"/>\n";
      if (plot.showPercentLabels && yBottom - yTop >= 14)
        svg << "<text x=\"" << num(x + barWidth / 2) << "\" y=\"" << num((yTop + yBottom) / 2 + 4) << "\" text-anchor=\"middle\" fill=\"white\">"
            << tickLabel(v, 0.1) << "%</text>\n";
      base += v;
    }
    svg << "<text x=\"" << num(x + barWidth / 2) << "\" y=\"" << num(f.height - f.bottom + 17) << "\" text-anchor=\"middle\">"
        << escape(plot.bars[b]) << "</text>\n";
  }
  for (size_t k = 0; k < plot.segments.size(); ++k) legendEntry(svg, f, static_cast<int>(k), plot.segments[k], kColours[k % kNumColours], false);
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace pagedc::bench
