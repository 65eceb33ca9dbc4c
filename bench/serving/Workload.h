// Benchmark workloads: requests with prompt and output lengths, sampling parameters and arrival
// times. Synthetic datasets follow the length statistics of the PagedAttention paper's traces
// (ShareGPT: mean 161 prompt / 338 output tokens, long-tailed; Alpaca: 19 / 58); a JSONL file gives
// prompts (text, token ids) or (prompt length, output length) pairs. docs/BENCHMARKS.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/SamplingParams.h"
#include "runtime/SequenceGroup.h"

namespace pagedc {
class Tokenizer;
}

namespace pagedc::bench {

struct WorkloadSpec {
  // "sharegpt-synth", "alpaca-synth", or the path of a .jsonl file.
  std::string dataset = "sharegpt-synth";
  int64_t numRequests = 1000;
  // > 0: as many requests as arrive within this many seconds (numRequests is then ignored).
  double durationSeconds = 0.0;
  // Requests per second; infinity: every request arrives at time 0.
  double rate = 1.0;
  // Shape of the gamma distribution of inter-arrival gaps (mean 1 / rate): 1 is Poisson, below 1
  // burstier, above 1 more regular.
  double burstiness = 1.0;
  uint64_t seed = 0;
  int64_t parallelSamples = 1;  // n > 1: parallel sampling (temperature 1, independent samples)
  int64_t beamWidth = 0;        // > 1: beam search of this width (n = best_of = width, temperature 0)
  // > 0: every prompt starts with the same sequence of this many tokens (a few-shot prefix).
  int64_t sharedPrefixTokens = 0;
  // Prompt + output is kept within this (longer synthetic draws are redrawn, JSONL lines rejected).
  int64_t maxModelLen = 2048;
  // Synthetic prompt token ids are drawn from [0, vocabSize).
  int64_t vocabSize = 32000;
  // JSONL lines with a text prompt and no output length get this many output tokens.
  int64_t defaultOutputLen = 128;
};

struct BenchRequest {
  std::string id;        // "req-<index>"
  double arrival = 0.0;  // seconds after the benchmark's start
  std::vector<TokenId> prompt;
  int64_t outputLen = 0;  // tokens per completion: max_tokens, with EOS ignored
  SamplingParams params;  // maxTokens = outputLen, ignoreEos, n / beam search as the spec says
};

struct Workload {
  std::vector<BenchRequest> requests;  // by arrival
  // One line: the dataset, the distributions drawn from and the realised means, e.g.
  // "sharegpt-synth: prompt lognormal(mu=4.58, sigma=1.0) ... mean 160.2 / 337.5".
  std::string description;
};

// Builds the workload. The lengths, the prompt tokens and the arrival gaps come from three streams
// seeded from spec.seed, so that workloads differing only in rate or burstiness hold the same
// requests, arriving at scaled times. tokenizer: for JSONL text prompts (may be null when there are
// none). Throws Error naming the file, line and field of a bad JSONL line, or the bad spec field.
Workload makeWorkload(const WorkloadSpec& spec, const Tokenizer* tokenizer = nullptr);

// Arrival times of n requests: cumulative gamma(shape = burstiness, mean 1 / rate) gaps from seed,
// the first at its gap (not 0). rate = infinity gives all zeros.
std::vector<double> arrivalTimes(int64_t n, double rate, double burstiness, uint64_t seed);

}  // namespace pagedc::bench
