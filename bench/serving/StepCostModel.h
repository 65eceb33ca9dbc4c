// How long one engine step takes on a backend, as a function of what the step computes: fitted to
// measurements of the real runner (calibrateStepCost) so that a simulated benchmark run advances a
// virtual clock by what the real backend would have spent. The scheduler, block manager, sampler and
// engine still run for real; only the model's arithmetic is replaced by its measured cost.
// docs/BENCHMARKS.md ("Execution: real and simulated").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runtime/ModelRunner.h"
#include "runtime/Scheduler.h"

namespace pagedc::bench {

// The features of a step plan its cost depends on.
struct StepShape {
  int64_t numTokens = 0;         // tokens computed (GEMM rows)
  int64_t numLogits = 0;         // logits rows (LM head rows)
  int64_t decodeContext = 0;     // keys read by single-token sequences: the sum of their context lengths
  int64_t prefillAttention = 0;  // (query, key) pairs of multi-token sequences: causal, over their prior context too
  int64_t copiedBlocks = 0;      // swap-out, swap-in and copy-on-write blocks

  static StepShape of(const StepPlan& plan);
};

// seconds = G(numTokens) + H(numLogits) + a * decodeContext + p * prefillAttention + b * copiedBlocks,
// with G and H piecewise linear between knots (powers of two up to the largest step measured), H(1) = 0 (G carries one logits row),
// fitted by least squares on relative error.
class StepCostModel {
public:
  struct Sample {
    StepShape shape;
    double seconds = 0.0;
  };

  // Throws Error when the samples cannot determine the parameters (too few, or a knot never covered).
  static StepCostModel fit(const std::vector<Sample>& samples, int64_t maxTokens);

  double seconds(const StepShape& shape) const;

  // The fit's relative errors over its own samples (|predicted - measured| / measured).
  double medianRelativeError() const { return medianError_; }
  double maxRelativeError() const { return maxError_; }
  const std::vector<Sample>& samples() const { return samples_; }
  // Per-unit costs, for the report: seconds per decode key, per prefill pair, per copied block.
  double secondsPerDecodeKey() const { return a_; }
  double secondsPerPrefillPair() const { return p_; }
  double secondsPerCopiedBlock() const { return b_; }
  // The engine's host work per logits row at the model's real vocabulary (sampling, the sampled
  // token's logprob), measured apart from the runner; added per row by seconds(). The simulated
  // runner's own small vocabulary keeps the benchmark's host time low, so this restores the real cost.
  double secondsPerSampledRow() const { return sampling_; }
  void setSecondsPerSampledRow(double seconds) { sampling_ = seconds; }
  // Block copies are measured apart (a step with copies against the same step without), not fitted:
  // their share of a step is too small for a least-squares fit to resolve next to the step's noise.
  void setSecondsPerCopiedBlock(double seconds) { b_ = seconds; }

  nlohmann::json toJson() const;
  // Throws Error naming the missing or bad field.
  static StepCostModel fromJson(const nlohmann::json& j);

  // What it was measured on ("125M llama, bf16 weights, bf16 KV, 2 threads, 2026-11-22").
  std::string description;

private:
  std::vector<int64_t> knots_, hKnots_;
  std::vector<double> g_, h_;
  double a_ = 0.0, p_ = 0.0, b_ = 0.0, sampling_ = 0.0;
  double medianError_ = 0.0, maxError_ = 0.0;
  std::vector<Sample> samples_;
};

struct CalibrationOptions {
  int64_t maxTokens = 2048;  // the largest step (the scheduler's maxNumBatchedTokens)
  int64_t maxSeqs = 256;     // the largest decode batch
  int64_t maxModelLen = 2048;  // the longest context (the runner's block tables must hold it)
  int repetitions = 3;       // the median of this many timed runs per shape, after one warm-up
  bool verbose = false;      // one line per measured shape on stderr
};

// The engine's greedy sampling of one row of `vocab` logits (sample, then the token's logprob for
// the cumulative logprob), median of many runs.
double measureSamplingSeconds(int64_t vocab);

// Times the runner on a grid of step shapes (decode batches of short and long contexts, prompts of
// every knot size, chunked prompts over prior context, several prompts per step, block swaps) and
// fits the model. The runner needs room for maxSeqs sequences of the longest context: at least
// 32768 tokens of device blocks and 64 host blocks. Its KV contents are overwritten.
StepCostModel calibrateStepCost(ModelRunner& runner, const CalibrationOptions& options);

}  // namespace pagedc::bench
