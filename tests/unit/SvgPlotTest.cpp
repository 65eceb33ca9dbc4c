// Tests of the SVG plots: well-formed documents carrying every series and label, and errors on bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "bench/serving/SvgPlot.h"
#include "ir/Error.h"

namespace pagedc::bench {
namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Every element opened is closed (self-closing or paired): a cheap well-formedness check.
void expectBalanced(const std::string& svg) {
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_EQ(count(svg, "<svg"), count(svg, "</svg>"));
  EXPECT_EQ(count(svg, "<text"), count(svg, "</text>"));
  const size_t opened = count(svg, "<") - count(svg, "</") - count(svg, "<?");
  EXPECT_EQ(opened, count(svg, "/>") + count(svg, "</")) << "unbalanced elements";
}

TEST(SvgPlotTest, LinePlotDrawsEverySeriesWithEscapedLabelsAndCutsAtYMax) {
  LinePlot p;
  p.title = "latency <paged> & \"orca\"";
  p.xLabel = "rate";
  p.yLabel = "s/token";
  p.series = {{"paged(16)", {1, 2, 3, 4}, {0.1, 0.12, 0.2, 0.5}},
              {"orca-max", {1, 2, 3, 4}, {0.2, 5.0, 50.0, 500.0}},
              {"gap", {1, 2, 3, 4}, {0.1, std::nan(""), 0.3, 0.4}}};
  p.yMax = 1.0;
  std::string svg = renderLinePlot(p);
  expectBalanced(svg);
  EXPECT_NE(svg.find("latency &lt;paged&gt; &amp; &quot;orca&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("<paged>"), std::string::npos);
  for (const char* label : {"paged(16)", "orca-max", "gap"}) EXPECT_NE(svg.find(label), std::string::npos) << label;
  // paged: one line; orca-max: cut after its first point over yMax (two points drawn); gap: the NaN
  // splits it into a lone point and a line of two.
  EXPECT_EQ(count(svg, "<polyline"), 3u);
  // Nothing is drawn above the plot area's top (y = 40).
  std::regex point(R"((\d+\.\d+),(\d+\.\d+) )");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), point); it != std::sregex_iterator(); ++it)
    EXPECT_GE(std::stod((*it)[2]), 40.0 - 1e-9);
}

TEST(SvgPlotTest, StackedBarsAndBadInput) {
  StackedBars b;
  b.title = "KV";
  b.yLabel = "%";
  b.bars = {"paged", "orca-max"};
  b.segments = {"token states", "reservation", "internal", "external"};
  b.values = {{96.0, 0.0, 4.0, 0.0}, {20.0, 13.0, 57.0, 10.0}};
  std::string svg = renderStackedBars(b);
  expectBalanced(svg);
  EXPECT_GE(count(svg, "<rect"), 8u + 4u);  // segments and legend swatches
  EXPECT_NE(svg.find("96.0%"), std::string::npos);
  b.values[1][2] = -1.0;
  EXPECT_THROW(renderStackedBars(b), Error);
  b.values[1] = {1.0, 2.0};
  EXPECT_THROW(renderStackedBars(b), Error);
  LinePlot p;
  p.series = {{"bad", {1, 2}, {1}}};
  EXPECT_THROW(renderLinePlot(p), Error);
}

}  // namespace
}  // namespace pagedc::bench
