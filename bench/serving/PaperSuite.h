// `pagedc bench --suite paper`: every experiment of docs/BENCHMARKS.md, the equivalents of the
// PagedAttention paper's Figures 2, 12-16, 18b and 19 on pagedc's engine, and the report itself
// (markdown with the paper's numbers next to ours, SVG figures, the raw results as JSON).
#pragma once

#include <string>

namespace pagedc::bench {

struct PaperSuiteOptions {
  std::string artifactPath;  // the 125M Llama-shaped artifact (scripts/bench/paper_report.sh builds it)
  std::string reportPath = "docs/BENCHMARKS.md";
  std::string figuresDir = "docs/bench";
  std::string costModelPath;  // default: <figuresDir>/cost_model.json
  bool recalibrate = false;
  int threads = 0;
  bool quick = false;  // a smoke run: few requests and rates, no real-execution validation
  // The command line that regenerates the report, quoted in it.
  std::string command = "bash scripts/bench/paper_report.sh";
};

void runPaperSuite(const PaperSuiteOptions& options);

}  // namespace pagedc::bench
