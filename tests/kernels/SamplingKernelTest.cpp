// The sampler's row kernels: softmax_rows against the CPU sampler's formula in double, argmax_rows
// against its greedyToken, and top_k_top_p_filter against the contract in kernel_params.h computed
// by sorting in double (and, on rows without ties, against Sampler::probabilities itself).
//
// Tolerances: softmax probabilities within 64 f32 ulps (expf and the f32 row sum, against double);
// argmax and the filter are exact. Top-p thresholds are chosen halfway between two cumulative
// masses, so the f32 kernel and the double reference cannot fall on different sides.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "OtherKernelsTestSupport.h"
#include "runtime/Sampler.h"
#include "sampling.cuh"

using namespace pagedc;
using namespace pagedc::kerneltest;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---- softmax -------------------------------------------------------------------------------------

// The CPU sampler's distribution: exp((x - max) / T) normalised, in double; greedy for T <= 0.
std::vector<float> referenceSoftmax(const std::vector<float>& row, float temperature) {
  std::vector<double> wide(row.begin(), row.end());
  std::vector<float> out(row.size(), 0.0f);
  if (temperature <= 0) {
    int64_t best = greedyToken(wide);
    if (best >= 0) out[best] = 1.0f;
    return out;
  }
  double max = -kInf;
  for (double v : wide) max = std::max(max, v);
  if (max == -kInf) return out;
  // The maximum's scaled logit is exactly 0 (Sampler::filteredWeights): a +inf logit weighs 1.
  auto scaled = [&](double v) { return v == max ? 0.0 : (v - max) / temperature; };
  double total = 0;
  for (double v : wide) total += std::exp(scaled(v));
  for (size_t i = 0; i < wide.size(); ++i) out[i] = static_cast<float>(std::exp(scaled(wide[i])) / total);
  return out;
}

template <int NUM_THREADS>
void checkSoftmax(const std::vector<std::vector<float>>& rows, const std::vector<float>& temperatures, bool withTemperatures) {
  SCOPED_TRACE("threads=" + std::to_string(NUM_THREADS) + " temperatures=" + std::to_string(withTemperatures));
  const int64_t vocab = static_cast<int64_t>(rows[0].size()), count = static_cast<int64_t>(rows.size());
  std::vector<float> logits;
  for (const auto& row : rows) logits.insert(logits.end(), row.begin(), row.end());
  std::vector<float> first;
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<float> logitBuffer(logits), temperatureBuffer(temperatures), probs(logits.size());
    SoftmaxParams p{probs.get(), logitBuffer.get(), withTemperatures ? temperatureBuffer.get() : nullptr, count, vocab};
    emu::launch(softmax_rows<NUM_THREADS>, emu::Dim3{static_cast<unsigned>(count)}, emu::Dim3{NUM_THREADS}, p, options);
    std::vector<float> got = probs.read();
    for (int64_t r = 0; r < count; ++r) {
      std::vector<float> gotRow(got.begin() + r * vocab, got.begin() + (r + 1) * vocab);
      expectClose<float>(gotRow, referenceSoftmax(rows[r], withTemperatures ? temperatures[r] : 1.0f), {64, 1e-30},
                         "softmax row " + std::to_string(r));
    }
    EXPECT_EQ(logitBuffer.read(), logits) << "the logits are read only";
    if (first.empty())
      first = got;
    else
      expectSameBits(got, first, "probabilities under another schedule");
  }
}

std::vector<std::vector<float>> softmaxRows(std::mt19937& rng, int64_t vocab) {
  std::vector<std::vector<float>> rows;
  for (int r = 0; r < 5; ++r) rows.push_back(randomRounded<float>(rng, vocab, -10, 10));
  rows[1][5] = rows[1][vocab - 1] = -kInf;                    // masked tokens
  std::fill(rows[2].begin(), rows[2].end(), -kInf);          // everything masked: zeros
  rows[3][17] = rows[3][vocab - 2] = 40.0f;                  // tied maxima
  rows[4][100] = kInf;                                       // +inf takes all the probability
  return rows;
}

TEST(SoftmaxRowsKernel, MatchesCpuSamplerDistribution) {
  std::mt19937 rng(1);
  auto rows = softmaxRows(rng, 3001);
  // 0: greedy (one-hot on the lowest-index maximum).
  const std::vector<float> temperatures = {0.7f, 1.0f, 1.3f, 0.0f, 2.5f};
  checkSoftmax<256>(rows, temperatures, true);
  checkSoftmax<64>(rows, temperatures, false);
  checkSoftmax<32>(rows, temperatures, true);
  checkSoftmax<1024>(softmaxRows(rng, 777), temperatures, true);
}

// ---- argmax --------------------------------------------------------------------------------------

template <int NUM_THREADS>
void checkArgmax(const std::vector<std::vector<float>>& rows, bool withValues) {
  SCOPED_TRACE("threads=" + std::to_string(NUM_THREADS));
  const int64_t vocab = static_cast<int64_t>(rows[0].size()), count = static_cast<int64_t>(rows.size());
  std::vector<float> logits;
  for (const auto& row : rows) logits.insert(logits.end(), row.begin(), row.end());
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<float> logitBuffer(logits), values(count);
    DeviceArray<i64> indices(count);
    ArgmaxParams p{indices.get(), withValues ? values.get() : nullptr, logitBuffer.get(), count, vocab};
    emu::launch(argmax_rows<NUM_THREADS>, emu::Dim3{static_cast<unsigned>(count)}, emu::Dim3{NUM_THREADS}, p, options);
    std::vector<i64> gotIndex = indices.read();
    std::vector<float> gotValue = values.read();
    for (int64_t r = 0; r < count; ++r) {
      std::vector<double> wide(rows[r].begin(), rows[r].end());
      const int64_t want = greedyToken(wide);
      EXPECT_EQ(gotIndex[r], want) << "row " << r;
      if (withValues) {
        EXPECT_EQ(gotValue[r], want >= 0 ? rows[r][want] : -kInf) << "row " << r;
      }
    }
  }
}

TEST(ArgmaxRowsKernel, LowestIndexAmongEqualMaxima) {
  std::mt19937 rng(2);
  const int64_t vocab = 5000;
  std::vector<std::vector<float>> rows;
  for (int r = 0; r < 7; ++r) rows.push_back(randomRounded<bf16>(rng, vocab, -4, 4));  // bf16 values: many ties
  rows[1][4000] = rows[1][123] = rows[1][3999] = 9.0f;                               // tied maxima in several threads
  rows[2][0] = rows[2][vocab - 1] = 9.0f;
  std::fill(rows[3].begin(), rows[3].end(), -kInf);                                  // all masked: -1
  rows[4][10] = kNaN;                                                                // NaN never wins
  rows[4][11] = 100.0f;
  rows[4][12] = kNaN;
  std::fill(rows[5].begin(), rows[5].end(), 0.5f);                                   // all equal: index 0
  rows[6][vocab - 1] = kInf;
  checkArgmax<256>(rows, true);
  checkArgmax<64>(rows, false);
  checkArgmax<32>(rows, true);
  checkArgmax<1024>(rows, true);
}

// ---- top-k / top-p ------------------------------------------------------------------------------

struct FilterRow {
  std::vector<float> logits;
  int64_t topK = 0;
  float topP = 1.0f;
  float temperature = 1.0f;
};

// The contract (kernel_params.h), in double: keep x >= the k-th largest value; then, over what top-k
// kept, keep x >= the value of the first token (in descending order) where the cumulative
// probability reaches top_p; NaN dropped whenever a filter is on.
std::vector<float> referenceFilter(const FilterRow& row) {
  const int64_t vocab = static_cast<int64_t>(row.logits.size());
  const bool useK = row.topK > 0 && row.topK < vocab;
  const bool useP = row.topP < 1.0f && row.temperature > 0.0f;
  if (!useK && !useP) return row.logits;
  std::vector<float> sorted;
  for (float v : row.logits)
    if (!std::isnan(v)) sorted.push_back(v);
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  float threshold = -kInf;
  if (useK && row.topK <= static_cast<int64_t>(sorted.size())) threshold = sorted[row.topK - 1];  // else every non-NaN stays
  if (useP && sorted[0] > -kInf) {
    auto weight = [&](float v) { return v == sorted[0] ? 1.0 : std::exp((static_cast<double>(v) - sorted[0]) / row.temperature); };
    double total = 0;
    for (float v : sorted)
      if (v >= threshold) total += weight(v);
    double cumulative = 0;
    for (float v : sorted) {
      if (v < threshold) break;
      cumulative += weight(v);
      if (cumulative >= row.topP * total) {
        threshold = std::max(threshold, v);
        break;
      }
    }
  }
  std::vector<float> out = row.logits;
  for (float& v : out)
    if (std::isnan(v) || v < threshold) v = -kInf;
  return out;
}

// A top_p halfway between the cumulative probabilities (over distinct values, descending, at the
// row's temperature) before and after the `boundary`-th distinct value, or the nearest earlier one
// whose probability is at least 2e-5: f32 sums over a row are good to about 1e-6 of the total, so a
// nucleus boundary closer than that to top_p is a coin toss between the kernel and the reference.
float topPBetween(const std::vector<float>& logits, float temperature, size_t boundary) {
  std::vector<float> sorted;
  for (float v : logits)
    if (!std::isnan(v) && v > -kInf) sorted.push_back(v);
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  std::vector<double> cumulativeAtGroupEnd;
  double total = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    total += std::exp((static_cast<double>(sorted[i]) - sorted[0]) / temperature);
    if (i + 1 == sorted.size() || sorted[i + 1] != sorted[i]) cumulativeAtGroupEnd.push_back(total);
  }
  boundary = std::min(boundary, cumulativeAtGroupEnd.size() - 1);
  auto before = [&](size_t b) { return b == 0 ? 0.0 : cumulativeAtGroupEnd[b - 1]; };
  while (boundary > 0 && cumulativeAtGroupEnd[boundary] - before(boundary) < 2e-5 * total) --boundary;
  EXPECT_GE(cumulativeAtGroupEnd[boundary] - before(boundary), 2e-5 * total) << "no well separated nucleus boundary";
  return static_cast<float>((before(boundary) + cumulativeAtGroupEnd[boundary]) / 2 / total);
}

template <int NUM_THREADS>
std::vector<std::vector<float>> runFilter(const std::vector<FilterRow>& rows, bool withK, bool withP, bool withTemperatures) {
  const int64_t vocab = static_cast<int64_t>(rows[0].logits.size()), count = static_cast<int64_t>(rows.size());
  std::vector<float> logits, topP, temperatures;
  std::vector<int64_t> topK;
  for (const auto& row : rows) {
    logits.insert(logits.end(), row.logits.begin(), row.logits.end());
    topK.push_back(row.topK);
    topP.push_back(row.topP);
    temperatures.push_back(row.temperature);
  }
  std::vector<float> first;
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<float> logitBuffer(logits), topPBuffer(topP), temperatureBuffer(temperatures);
    DeviceArray<i64> topKBuffer(topK);
    TopKTopPParams p{};
    p.logits = logitBuffer.get();
    p.top_k = withK ? topKBuffer.get() : nullptr;
    p.top_p = withP ? topPBuffer.get() : nullptr;
    p.temperatures = withTemperatures ? temperatureBuffer.get() : nullptr;
    p.rows = count;
    p.vocab = vocab;
    emu::launch(top_k_top_p_filter<NUM_THREADS>, emu::Dim3{static_cast<unsigned>(count)}, emu::Dim3{NUM_THREADS}, p, options);
    std::vector<float> got = logitBuffer.read();
    if (first.empty())
      first = got;
    else
      expectSameBits(got, first, "filtered logits under another schedule");
  }
  std::vector<std::vector<float>> out;
  for (int64_t r = 0; r < count; ++r) out.emplace_back(first.begin() + r * vocab, first.begin() + (r + 1) * vocab);
  return out;
}

template <int NUM_THREADS>
void checkFilter(std::vector<FilterRow> rows, bool withK = true, bool withP = true, bool withTemperatures = true) {
  SCOPED_TRACE("threads=" + std::to_string(NUM_THREADS) + " vocab=" + std::to_string(rows[0].logits.size()));
  auto got = runFilter<NUM_THREADS>(rows, withK, withP, withTemperatures);
  for (size_t r = 0; r < rows.size(); ++r) {
    FilterRow effective = rows[r];
    if (!withK) effective.topK = 0;
    if (!withP) effective.topP = 1.0f;
    if (!withTemperatures) effective.temperature = 1.0f;
    expectSameBits(got[r], referenceFilter(effective), "row " + std::to_string(r) + " (top_k " + std::to_string(effective.topK) +
                                                            ", top_p " + std::to_string(effective.topP) + ", temperature " +
                                                            std::to_string(effective.temperature) + ")");
  }
}

// Distinct logits (no ties): a shuffled ramp with some noise.
std::vector<float> distinctLogits(std::mt19937& rng, int64_t vocab, float scale) {
  std::vector<float> out(vocab);
  std::iota(out.begin(), out.end(), 0.0f);
  std::shuffle(out.begin(), out.end(), rng);
  for (float& v : out) v = (v - static_cast<float>(vocab) / 2) * scale;
  return out;
}

TEST(TopKTopPFilterKernel, TopKAlone) {
  std::mt19937 rng(3);
  const int64_t vocab = 1000;
  std::vector<FilterRow> rows;
  for (int64_t k : {1, 2, 50, 999, 1000, 0, -1, 5000}) rows.push_back({distinctLogits(rng, vocab, 0.01f), k});
  checkFilter<256>(rows);
  checkFilter<64>(rows);
  checkFilter<32>(rows);
  checkFilter<1024>(rows);
}

TEST(TopKTopPFilterKernel, TopPAloneAndCombinedWithTemperature) {
  std::mt19937 rng(4);
  const int64_t vocab = 1500;
  std::vector<FilterRow> rows;
  for (size_t boundary : {0, 1, 7, 100, 1400}) {
    FilterRow row{randomRounded<float>(rng, vocab, -6, 6), 0, 1.0f, 1.0f};
    row.topP = topPBetween(row.logits, row.temperature, boundary);
    rows.push_back(row);
  }
  // Temperature changes the nucleus; top-k first, then top-p renormalised over the k kept.
  FilterRow hot{randomRounded<float>(rng, vocab, -6, 6), 0, 1.0f, 0.5f};
  hot.topP = topPBetween(hot.logits, hot.temperature, 20);
  rows.push_back(hot);
  FilterRow both{randomRounded<float>(rng, vocab, -6, 6), 40, 0.5f, 1.7f};
  {
    std::vector<float> sorted = both.logits;
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    std::vector<float> kept(sorted.begin(), sorted.begin() + both.topK);
    both.topP = topPBetween(kept, both.temperature, 11);
  }
  rows.push_back(both);
  FilterRow greedy{randomRounded<float>(rng, vocab, -6, 6), 3, 0.2f, 0.0f};  // temperature 0: top-p off, top-k on
  rows.push_back(greedy);
  checkFilter<256>(rows);
  checkFilter<1024>(rows, true, false, true);  // top_p null: top-k only
  // Leaving out top_k or the temperatures moves the nuclei off the chosen midpoints, so those
  // variants run on the rows they do not change.
  std::vector<FilterRow> withoutK, unitTemperature;
  for (const auto& row : rows) {
    if (row.topK == 0) withoutK.push_back(row);
    if (row.temperature == 1.0f) unitTemperature.push_back(row);
  }
  checkFilter<128>(withoutK, false, true, true);
  checkFilter<512>(unitTemperature, true, true, false);
}

TEST(TopKTopPFilterKernel, TiesAtTheThresholdAreKept) {
  std::mt19937 rng(5);
  const int64_t vocab = 2000;
  std::vector<FilterRow> rows;
  // bf16-rounded logits have many equal values.
  for (int64_t k : {3, 10, 64, 1999}) rows.push_back({randomRounded<bf16>(rng, vocab, -3, 3), k});
  // The 3rd and 4th largest tie: top-k 3 keeps 4 tokens.
  FilterRow tie{randomRounded<float>(rng, vocab, -3, 3), 3};
  tie.logits[10] = 9;
  tie.logits[20] = 8;
  tie.logits[30] = 7;
  tie.logits[1500] = 7;
  rows.push_back(tie);
  // Top-p whose last kept token has ties.
  FilterRow nucleus{randomRounded<bf16>(rng, vocab, -3, 3), 0, 1.0f, 1.0f};
  nucleus.topP = topPBetween(nucleus.logits, 1.0f, 30);
  rows.push_back(nucleus);
  checkFilter<256>(rows);
  checkFilter<1024>(rows);
  auto got = runFilter<256>({tie}, true, false, false)[0];
  EXPECT_EQ(std::count_if(got.begin(), got.end(), [](float v) { return v > -kInf; }), 4);
}

TEST(TopKTopPFilterKernel, MaskedAndNanLogits) {
  std::mt19937 rng(6);
  const int64_t vocab = 700;
  std::vector<FilterRow> rows;
  FilterRow masked{randomRounded<float>(rng, vocab, -2, 2), 650, 1.0f, 1.0f};
  for (int64_t i = 0; i < vocab; i += 7) masked.logits[i] = -kInf;  // k beyond the finite tokens: -inf ones stay -inf
  rows.push_back(masked);
  FilterRow nan{randomRounded<float>(rng, vocab, -2, 2), 5, 1.0f, 1.0f};
  nan.logits[3] = kNaN;
  nan.logits[400] = kNaN;
  rows.push_back(nan);
  FilterRow nanWideK{randomRounded<float>(rng, vocab, -2, 2), vocab - 1, 1.0f, 1.0f};  // k above the non-NaN count
  nanWideK.logits[7] = kNaN;
  nanWideK.logits[8] = kNaN;
  rows.push_back(nanWideK);
  FilterRow nanNucleus{randomRounded<float>(rng, vocab, -2, 2), 0, 1.0f, 1.0f};  // top-p alone: NaN dropped too
  nanNucleus.logits[0] = kNaN;
  nanNucleus.logits[100] = kNaN;
  nanNucleus.topP = topPBetween(nanNucleus.logits, 1.0f, 40);
  rows.push_back(nanNucleus);
  FilterRow allMasked{std::vector<float>(vocab, -kInf), 3, 0.5f, 1.0f};  // nothing to keep: unchanged
  rows.push_back(allMasked);
  FilterRow signedZeros{std::vector<float>(vocab, -1.0f), 2, 1.0f, 1.0f};  // -0 and +0 are one value
  signedZeros.logits[5] = -0.0f;
  signedZeros.logits[9] = 0.0f;
  signedZeros.logits[77] = 0.0f;
  rows.push_back(signedZeros);
  FilterRow nucleusWithMasked{randomRounded<float>(rng, vocab, -2, 2), 0, 1.0f, 0.8f};
  for (int64_t i = 1; i < vocab; i += 3) nucleusWithMasked.logits[i] = -kInf;
  nucleusWithMasked.topP = topPBetween(nucleusWithMasked.logits, 0.8f, 50);
  rows.push_back(nucleusWithMasked);
  checkFilter<128>(rows);
}

// Without ties the contract and the CPU sampler agree: the kept tokens are those with non-zero
// probability in Sampler::probabilities.
TEST(TopKTopPFilterKernel, AgreesWithCpuSamplerWithoutTies) {
  std::mt19937 rng(7);
  const int64_t vocab = 2500;
  std::vector<FilterRow> rows = {{distinctLogits(rng, vocab, 0.004f), 100, 1.0f, 1.0f},
                                 {distinctLogits(rng, vocab, 0.004f), 0, 1.0f, 0.6f},
                                 {distinctLogits(rng, vocab, 0.004f), 300, 1.0f, 1.2f}};
  rows[1].topP = topPBetween(rows[1].logits, rows[1].temperature, 250);
  {
    std::vector<float> sorted = rows[2].logits;
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    rows[2].topP = topPBetween(std::vector<float>(sorted.begin(), sorted.begin() + rows[2].topK), rows[2].temperature, 120);
  }
  auto got = runFilter<256>(rows, true, true, true);
  Sampler sampler;
  for (size_t r = 0; r < rows.size(); ++r) {
    SamplingParams params;
    params.temperature = rows[r].temperature;
    params.topK = rows[r].topK;
    params.topP = rows[r].topP;
    std::vector<double> wide(rows[r].logits.begin(), rows[r].logits.end());
    std::vector<double> probabilities = sampler.probabilities(wide, params);
    int64_t kept = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      EXPECT_EQ(got[r][i] > -kInf, probabilities[i] > 0) << "row " << r << " token " << i;
      kept += got[r][i] > -kInf;
    }
    EXPECT_GT(kept, 1) << "row " << r;
    EXPECT_LT(kept, vocab) << "row " << r;
  }
}

TEST(TopKTopPFilterKernel, LargeVocabulary) {
  // 256k entries per row with static shared memory only.
  std::mt19937 rng(8);
  const int64_t vocab = 256 * 1024;
  std::vector<FilterRow> rows = {{randomRounded<bf16>(rng, vocab, -8, 8), 40, 1.0f, 1.0f}, {randomRounded<float>(rng, vocab, -8, 8), 0, 1.0f, 0.9f}};
  rows[1].topP = topPBetween(rows[1].logits, rows[1].temperature, 5000);
  checkFilter<1024>(rows);
}

}  // namespace
