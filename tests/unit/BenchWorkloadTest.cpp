// Tests of the benchmark's workloads: the synthetic datasets' length statistics, arrivals, the
// independence of the random streams, sampling parameters, JSONL input and its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "bench/serving/Workload.h"
#include "ir/Error.h"

namespace pagedc::bench {
namespace {

double meanOf(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); }

struct Means {
  double prompt = 0, output = 0;
  int64_t longest = 0;
};
Means means(const Workload& w, int64_t prefix = 0) {
  Means m;
  for (const BenchRequest& r : w.requests) {
    m.prompt += static_cast<double>(r.prompt.size()) - static_cast<double>(prefix);
    m.output += static_cast<double>(r.outputLen);
    m.longest = std::max<int64_t>(m.longest, static_cast<int64_t>(r.prompt.size()) + r.outputLen);
  }
  m.prompt /= static_cast<double>(w.requests.size());
  m.output /= static_cast<double>(w.requests.size());
  return m;
}

// 20000 draws: the standard error of a lognormal(sigma 1) mean is about 1.3% of it at this count,
// so the means must land within 4% (3 standard errors) of the paper's.
TEST(BenchWorkloadTest, SyntheticMeansMatchThePaperWithinMaxModelLen) {
  for (auto [dataset, prompt, output] : {std::tuple{"sharegpt-synth", 161.0, 338.0}, std::tuple{"alpaca-synth", 19.0, 58.0}}) {
    WorkloadSpec spec;
    spec.dataset = dataset;
    spec.numRequests = 20000;
    spec.seed = 3;
    Workload w = makeWorkload(spec);
    ASSERT_EQ(w.requests.size(), 20000u);
    Means m = means(w);
    EXPECT_NEAR(m.prompt, prompt, 0.04 * prompt) << dataset;
    EXPECT_NEAR(m.output, output, 0.04 * output) << dataset;
    EXPECT_LE(m.longest, spec.maxModelLen) << dataset;
    EXPECT_NE(w.description.find(dataset), std::string::npos);
  }
  // A tighter context: the means still land (mu is re-fitted to the length filter), all fit.
  WorkloadSpec tight;
  tight.numRequests = 20000;
  tight.maxModelLen = 1024;
  Means m = means(makeWorkload(tight));
  EXPECT_NEAR(m.prompt, 161.0, 0.05 * 161.0);
  EXPECT_NEAR(m.output, 338.0, 0.05 * 338.0);
  EXPECT_LE(m.longest, 1024);
}

TEST(BenchWorkloadTest, SameSeedSameWorkloadAndRateOnlyScalesTimes) {
  WorkloadSpec a;
  a.numRequests = 300;
  a.rate = 2.0;
  a.seed = 11;
  WorkloadSpec b = a;
  b.rate = 8.0;
  Workload wa = makeWorkload(a), wa2 = makeWorkload(a), wb = makeWorkload(b);
  for (size_t i = 0; i < wa.requests.size(); ++i) {
    EXPECT_EQ(wa.requests[i].prompt, wa2.requests[i].prompt);
    EXPECT_EQ(wa.requests[i].arrival, wa2.requests[i].arrival);
    EXPECT_EQ(wa.requests[i].prompt, wb.requests[i].prompt) << "the rate must not change the requests";
    EXPECT_EQ(wa.requests[i].outputLen, wb.requests[i].outputLen);
    EXPECT_NEAR(wb.requests[i].arrival * 4.0, wa.requests[i].arrival, 1e-9 * (1 + wa.requests[i].arrival));
  }
  WorkloadSpec c = a;
  c.seed = 12;
  EXPECT_NE(makeWorkload(c).requests[0].prompt, wa.requests[0].prompt);
}

TEST(BenchWorkloadTest, ArrivalsArePoissonOrGammaWithTheRequestedBurstiness) {
  for (double burstiness : {1.0, 0.25, 4.0}) {
    std::vector<double> t = arrivalTimes(40000, 5.0, burstiness, 9);
    std::vector<double> gaps;
    for (size_t i = 0; i < t.size(); ++i) gaps.push_back(i ? t[i] - t[i - 1] : t[0]);
    const double mean = meanOf(gaps);
    double var = 0;
    for (double g : gaps) var += (g - mean) * (g - mean);
    const double cv = std::sqrt(var / static_cast<double>(gaps.size())) / mean;
    EXPECT_NEAR(mean, 0.2, 0.01) << burstiness;
    EXPECT_NEAR(cv, 1.0 / std::sqrt(burstiness), 0.05 / std::sqrt(burstiness)) << burstiness;
  }
  for (double v : arrivalTimes(5, std::numeric_limits<double>::infinity(), 1.0, 1)) EXPECT_EQ(v, 0.0);
  WorkloadSpec d;
  d.durationSeconds = 100;
  d.rate = 3;
  Workload w = makeWorkload(d);
  EXPECT_NEAR(static_cast<double>(w.requests.size()), 300.0, 60.0);
  for (const BenchRequest& r : w.requests) EXPECT_LE(r.arrival, 100.0);
}

TEST(BenchWorkloadTest, SharedPrefixAndSamplingParameters) {
  WorkloadSpec spec;
  spec.dataset = "alpaca-synth";
  spec.numRequests = 50;
  spec.sharedPrefixTokens = 80;
  spec.parallelSamples = 4;
  spec.vocabSize = 500;
  Workload w = makeWorkload(spec);
  const std::vector<TokenId> prefix(w.requests[0].prompt.begin(), w.requests[0].prompt.begin() + 80);
  for (const BenchRequest& r : w.requests) {
    ASSERT_GT(r.prompt.size(), 80u);
    EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), r.prompt.begin())) << r.id;
    for (TokenId t : r.prompt) EXPECT_LT(t, 500);
    EXPECT_EQ(r.params.n, 4);
    EXPECT_EQ(r.params.maxTokens, r.outputLen);
    EXPECT_TRUE(r.params.ignoreEos);
    EXPECT_NO_THROW(r.params.validate(500));
  }
  spec.parallelSamples = 1;
  spec.beamWidth = 4;
  for (const BenchRequest& r : makeWorkload(spec).requests) {
    EXPECT_TRUE(r.params.useBeamSearch);
    EXPECT_EQ(r.params.effectiveBestOf(), 4);
    EXPECT_NO_THROW(r.params.validate(500));
  }
  spec.parallelSamples = 2;
  EXPECT_THROW(makeWorkload(spec), Error);  // n > 1 with beam search
  WorkloadSpec bad;
  bad.rate = 0;
  EXPECT_THROW(makeWorkload(bad), Error);
  bad = {};
  bad.dataset = "sharegpt";
  EXPECT_THROW(makeWorkload(bad), Error);
}

std::filesystem::path writeTemp(const std::string& name, const std::string& text) {
  auto path = std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()) + ".jsonl");
  std::ofstream(path) << text;
  return path;
}

TEST(BenchWorkloadTest, JsonlLinesOfEachFormAndBadLines) {
  auto path = writeTemp("bench-ok", R"({"prompt_len": 5, "output_len": 7}

{"prompt_token_ids": [1, 2, 3]}
{"prompt_token_ids": [4, 5], "output_len": 2}
)");
  WorkloadSpec spec;
  spec.dataset = path.string();
  spec.numRequests = 0;  // every line
  spec.defaultOutputLen = 9;
  Workload w = makeWorkload(spec);
  ASSERT_EQ(w.requests.size(), 3u);
  EXPECT_EQ(w.requests[0].prompt.size(), 5u);
  EXPECT_EQ(w.requests[0].outputLen, 7);
  EXPECT_EQ(w.requests[1].prompt, (std::vector<TokenId>{1, 2, 3}));
  EXPECT_EQ(w.requests[1].outputLen, 9);
  EXPECT_EQ(w.requests[2].outputLen, 2);
  spec.numRequests = 7;  // cycles
  EXPECT_EQ(makeWorkload(spec).requests[4].prompt, (std::vector<TokenId>{1, 2, 3}));  // line 2 again
  std::filesystem::remove(path);

  for (auto [text, needle] : {std::pair<std::string, std::string>{"{\"prompt_len\": 3}\n{\"output_len\": 4}\n", ":2: needs"},
                              {"{\"prompt_len\": -1}\n", "'prompt_len' must be a positive integer"},
                              {"not json\n", ":1: not JSON"},
                              {"{\"prompt\": \"hello\"}\n", "tokenizer"},
                              {"{\"prompt_token_ids\": [1, 99999]}\n", "token id"},
                              {"{\"prompt_len\": 2000, \"output_len\": 100}\n", "max_model_len"}}) {
    auto bad = writeTemp("bench-bad", text);
    WorkloadSpec s;
    s.dataset = bad.string();
    try {
      makeWorkload(s);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    std::filesystem::remove(bad);
  }
}

}  // namespace
}  // namespace pagedc::bench
