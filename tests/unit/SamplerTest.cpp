// Sampler (order, filters, seeds, batch invariance, logprobs), SamplingParams validation, StopChecker.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "ir/Error.h"
#include "runtime/Sampler.h"
#include "runtime/SamplingParams.h"
#include "runtime/StopChecker.h"

namespace pagedc {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

SamplingParams greedy() {
  SamplingParams params;
  params.temperature = 0.0;
  return params;
}

SamplingParams sampling(double temperature = 1.0) {
  SamplingParams params;
  params.temperature = temperature;
  return params;
}

// Logits whose softmax is exactly the given probabilities (up to float rounding of the logs).
std::vector<float> logitsFor(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature = 1.0) {
  double maxLogit = kNegInf;
  for (float l : logits) maxLogit = std::max(maxLogit, static_cast<double>(l));
  std::vector<double> probs;
  double sum = 0.0;
  for (float l : logits) {
    probs.push_back(std::exp((l - maxLogit) / temperature));
    sum += probs.back();
  }
  for (double& p : probs) p /= sum;
  return probs;
}

std::vector<int64_t> drawMany(const std::vector<float>& logits, const SamplingParams& params, SamplerRng rng,
                              int count, const TokenHistory& history = {}) {
  Sampler sampler;
  std::vector<int64_t> tokens;
  for (int i = 0; i < count; ++i) tokens.push_back(sampler.sample(logits, params, history, rng).tokenId);
  return tokens;
}

std::vector<double> frequencies(const std::vector<int64_t>& tokens, size_t vocab) {
  std::vector<double> freq(vocab, 0.0);
  for (int64_t t : tokens) freq[static_cast<size_t>(t)] += 1.0 / static_cast<double>(tokens.size());
  return freq;
}

// ---- greedy and temperature ------------------------------------------------------------------

TEST(SamplerGreedy, PicksArgmaxWithTiesToLowestId) {
  Sampler sampler;
  SamplerRng rng = SamplerRng::seeded(1);
  std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 2.5f};
  EXPECT_EQ(sampler.sample(logits, greedy(), {}, rng).tokenId, 1);
  std::vector<float> single = {-5.0f, -1.0f, -3.0f};
  EXPECT_EQ(sampler.sample(single, greedy(), {}, rng).tokenId, 1);
  // Greedy draws nothing from the generator.
  EXPECT_EQ(rng.counter(), 0u);
}

TEST(SamplerDistribution, TemperatureMatchesSoftmaxOver20000Draws) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 1.5f};
  for (double temperature : {0.7, 1.0, 1.8}) {
    const int draws = 20000;
    std::vector<double> freq =
        frequencies(drawMany(logits, sampling(temperature), SamplerRng::seeded(1234), draws), logits.size());
    std::vector<double> expected = softmax(logits, temperature);
    for (size_t i = 0; i < logits.size(); ++i) {
      // Five standard deviations of a binomial proportion: a correct sampler fails this with
      // probability ~6e-7 per token, and the seed makes the test deterministic anyway.
      const double sigma = std::sqrt(expected[i] * (1.0 - expected[i]) / draws);
      EXPECT_NEAR(freq[i], expected[i], 5.0 * sigma) << "token " << i << " temperature " << temperature;
    }
  }
}

TEST(SamplerDistribution, ProbabilitiesAreTemperatureSoftmax) {
  Sampler sampler;
  const std::vector<float> logits = {0.3f, -1.2f, 2.0f};
  SamplingParams params = sampling(0.5);
  std::vector<double> probs = sampler.probabilities(sampler.processLogits(logits, params, {}), params);
  std::vector<double> expected = softmax(logits, 0.5);
  for (size_t i = 0; i < probs.size(); ++i) EXPECT_NEAR(probs[i], expected[i], 1e-15);
}

TEST(SamplerDistribution, TinyTemperatureDoesNotOverflow) {
  Sampler sampler;
  SamplerRng rng = SamplerRng::seeded(3);
  const std::vector<float> logits = {100.0f, 99.0f, -50.0f};
  SampledToken token = sampler.sample(logits, sampling(1e-300), {}, rng);
  EXPECT_EQ(token.tokenId, 0);
}

// ---- top-k, top-p, min-p ----------------------------------------------------------------------

TEST(SamplerTopK, KeepsExactlyKTokens) {
  Sampler sampler;
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.5f, 1.9f, 0.0f};
  SamplingParams params = sampling();
  params.topK = 3;
  std::vector<double> probs = sampler.probabilities(sampler.processLogits(logits, params, {}), params);
  // Kept: 1, 4, 3, renormalised among themselves.
  std::vector<float> kept = {2.0f, 1.9f, 1.5f};
  std::vector<double> expected = softmax(kept);
  EXPECT_NEAR(probs[1], expected[0], 1e-15);
  EXPECT_NEAR(probs[4], expected[1], 1e-15);
  EXPECT_NEAR(probs[3], expected[2], 1e-15);
  for (size_t i : {0, 2, 5}) EXPECT_EQ(probs[i], 0.0);

  std::vector<double> freq = frequencies(drawMany(logits, params, SamplerRng::seeded(5), 5000), logits.size());
  for (size_t i : {0, 2, 5}) EXPECT_EQ(freq[i], 0.0) << "token " << i << " sampled outside the top 3";
  for (size_t i : {1, 3, 4}) EXPECT_GT(freq[i], 0.0);
}

TEST(SamplerTopK, TiesAtTheBoundaryGoToLowerIds) {
  Sampler sampler;
  const std::vector<float> logits = {1.0f, 2.0f, 2.0f, 2.0f};
  SamplingParams params = sampling();
  params.topK = 2;
  std::vector<double> probs = sampler.probabilities(sampler.processLogits(logits, params, {}), params);
  EXPECT_DOUBLE_EQ(probs[1], 0.5);
  EXPECT_DOUBLE_EQ(probs[2], 0.5);
  EXPECT_EQ(probs[3], 0.0);
  EXPECT_EQ(probs[0], 0.0);
  // Larger than the vocabulary, 0 and -1 all mean off.
  for (int64_t k : {-1, 0, 100}) {
    params.topK = k;
    probs = sampler.probabilities(sampler.processLogits(logits, params, {}), params);
    EXPECT_GT(probs[0], 0.0) << "top_k " << k;
  }
}

TEST(SamplerTopP, KeepsTheSmallestSetReachingP) {
  Sampler sampler;
  // Probabilities by id: 0.15, 0.5, 0.05, 0.2, 0.1 (sorted: 0.5, 0.2, 0.15, 0.1, 0.05).
  const std::vector<float> logits = logitsFor({0.15, 0.5, 0.05, 0.2, 0.1});
  SamplingParams params = sampling();
  struct Case {
    double topP;
    std::vector<double> expected;
  };
  // top_p 0.6: 0.5 < 0.6 so 0.2 is needed too; 0.7 >= 0.6 so nothing more -> {0.5, 0.2} / 0.7.
  // top_p 0.8: 0.5 + 0.2 = 0.7 < 0.8 needs 0.15; 0.85 >= 0.8 -> {0.5, 0.2, 0.15} / 0.85.
  // top_p 0.45: 0.5 alone reaches it.
  for (const Case& c : {Case{0.6, {0.0, 0.5 / 0.7, 0.0, 0.2 / 0.7, 0.0}},
                        Case{0.8, {0.15 / 0.85, 0.5 / 0.85, 0.0, 0.2 / 0.85, 0.0}},
                        Case{0.45, {0.0, 1.0, 0.0, 0.0, 0.0}}}) {
    params.topP = c.topP;
    std::vector<double> probs = sampler.probabilities(sampler.processLogits(logits, params, {}), params);
    for (size_t i = 0; i < probs.size(); ++i)
      EXPECT_NEAR(probs[i], c.expected[i], 1e-6) << "top_p " << c.topP << " token " << i;
    std::vector<double> freq = frequencies(drawMany(logits, params, SamplerRng::seeded(9), 3000), logits.size());
    for (size_t i = 0; i < probs.size(); ++i)
      if (c.expected[i] == 0.0) {
        EXPECT_EQ(freq[i], 0.0) << "top_p " << c.topP << " sampled token " << i;
      }
  }
}

TEST(SamplerTopP, AppliesAfterTopK) {
  Sampler sampler;
  const std::vector<float> logits = logitsFor({0.15, 0.5, 0.05, 0.2, 0.1});
  SamplingParams params = sampling();
  params.topK = 2;   // {0.5, 0.2} renormalised: 0.714, 0.286
  params.topP = 0.7; // 0.714 alone reaches 0.7
  std::vector<double> probs = sampler.probabilities(sampler.processLogits(logits, params, {}), params);
  EXPECT_NEAR(probs[1], 1.0, 1e-12);
  EXPECT_EQ(probs[3], 0.0);
}

TEST(SamplerMinP, DropsTokensBelowMinPTimesTheTopProbability) {
  Sampler sampler;
  const std::vector<float> logits = logitsFor({0.15, 0.5, 0.05, 0.2, 0.1});
  SamplingParams params = sampling();
  params.minP = 0.25;  // threshold 0.25 * 0.5 = 0.125: keeps 0.5, 0.2, 0.15
  std::vector<double> probs = sampler.probabilities(sampler.processLogits(logits, params, {}), params);
  const std::vector<double> expected = {0.15 / 0.85, 0.5 / 0.85, 0.0, 0.2 / 0.85, 0.0};
  for (size_t i = 0; i < probs.size(); ++i) EXPECT_NEAR(probs[i], expected[i], 1e-6) << "token " << i;
  std::vector<double> freq = frequencies(drawMany(logits, params, SamplerRng::seeded(10), 3000), logits.size());
  EXPECT_EQ(freq[2], 0.0);
  EXPECT_EQ(freq[4], 0.0);
}

// ---- logit processing -------------------------------------------------------------------------

TEST(SamplerPenalties, RepetitionDividesPositiveAndMultipliesNegativeLogits) {
  Sampler sampler;
  const std::vector<float> logits = {2.0f, -2.0f, 1.0f, 0.5f, -1.0f};
  const std::vector<int64_t> prompt = {0, 0};
  const std::vector<int64_t> output = {1, 1, 1};
  SamplingParams params = sampling();
  params.repetitionPenalty = 2.0;
  // Seen tokens 0 (prompt) and 1 (output) are penalised once each, however often they occur.
  std::vector<double> processed = sampler.processLogits(logits, params, {prompt, output});
  EXPECT_EQ(processed, (std::vector<double>{1.0, -4.0, 1.0, 0.5, -1.0}));
  // A second call starts clean (scratch state does not leak between calls).
  processed = sampler.processLogits(logits, params, {});
  EXPECT_EQ(processed, (std::vector<double>{2.0, -2.0, 1.0, 0.5, -1.0}));
}

TEST(SamplerPenalties, PresenceAndFrequencyCountGeneratedTokensOnly) {
  Sampler sampler;
  const std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  const std::vector<int64_t> prompt = {1, 1, 3};
  const std::vector<int64_t> output = {0, 2, 2, 2};
  SamplingParams params = sampling();
  params.presencePenalty = 0.5;
  params.frequencyPenalty = 0.25;
  std::vector<double> processed = sampler.processLogits(logits, params, {prompt, output});
  // Token 0: 1 - (0.5 + 0.25*1) = 0.25; token 2: 1 - (0.5 + 0.25*3) = -0.25; 1 and 3 are prompt only.
  EXPECT_EQ(processed, (std::vector<double>{0.25, 1.0, -0.25, 1.0}));
  // Negative penalties encourage repetition.
  params.presencePenalty = -1.0;
  params.frequencyPenalty = 0.0;
  processed = sampler.processLogits(logits, params, {prompt, output});
  EXPECT_EQ(processed, (std::vector<double>{2.0, 1.0, 2.0, 1.0}));
}

TEST(SamplerPenalties, AppliedInVllmOrder) {
  Sampler sampler;
  const std::vector<float> logits = {1.0f, 3.0f};
  const std::vector<int64_t> output = {0};
  SamplingParams params = sampling();
  params.logitBias = {{0, 1.0}};  // 1 + 1 = 2 first,
  params.repetitionPenalty = 2.0; // then 2 / 2 = 1,
  params.frequencyPenalty = 0.5;  // then 1 - 0.5 = 0.5.
  EXPECT_EQ(sampler.processLogits(logits, params, {{}, output}), (std::vector<double>{0.5, 3.0}));
}

TEST(SamplerLogitBias, ForcesAndBansTokens) {
  const std::vector<float> logits = {3.0f, 1.0f, 2.0f, 0.0f, 2.5f};
  SamplingParams params = sampling();
  params.logitBias = {{3, 100.0}};
  for (int64_t token : drawMany(logits, params, SamplerRng::seeded(11), 1000)) EXPECT_EQ(token, 3);
  params.logitBias = {{0, -100.0}, {2, -100.0}, {3, -100.0}, {4, -100.0}};
  for (int64_t token : drawMany(logits, params, SamplerRng::seeded(12), 1000)) EXPECT_EQ(token, 1);
  Sampler sampler;
  SamplerRng rng = SamplerRng::seeded(1);
  params = greedy();
  params.logitBias = {{1, 2.5}};  // 1 + 2.5 = 3.5 beats 3
  EXPECT_EQ(sampler.sample(logits, params, {}, rng).tokenId, 1);
}

TEST(SamplerMinTokens, MasksEosAndStopTokensUntilReached) {
  Sampler sampler;
  SamplerRng rng = SamplerRng::seeded(1);
  const std::vector<float> logits = {5.0f, 4.0f, 1.0f, 0.0f};
  SamplingParams params = greedy();
  params.eosTokenIds = {0};
  params.stopTokenIds = {1};
  params.minTokens = 2;
  const std::vector<int64_t> one = {3};
  const std::vector<int64_t> two = {3, 3};
  EXPECT_EQ(sampler.sample(logits, params, {{}, one}, rng).tokenId, 2);
  std::vector<double> processed = sampler.processLogits(logits, params, {{}, one});
  EXPECT_EQ(processed[0], kNegInf);
  EXPECT_EQ(processed[1], kNegInf);
  EXPECT_EQ(sampler.sample(logits, params, {{}, two}, rng).tokenId, 0);
  // With ignore_eos, EOS is an ordinary token: not masked; stop tokens still are.
  params.ignoreEos = true;
  EXPECT_EQ(sampler.sample(logits, params, {{}, one}, rng).tokenId, 0);
  params.eosTokenIds = {};
  params.logitBias = {{0, -100.0}};
  EXPECT_EQ(sampler.sample(logits, params, {{}, one}, rng).tokenId, 2);
  // Sampling never picks a masked token either.
  params = sampling();
  params.eosTokenIds = {0};
  params.minTokens = 1;
  for (int64_t token : drawMany(logits, params, SamplerRng::seeded(2), 2000)) EXPECT_NE(token, 0);
}

TEST(SamplerErrors, RejectsNanLogitsAndFullyMaskedRows) {
  Sampler sampler;
  SamplerRng rng = SamplerRng::seeded(1);
  const std::vector<float> nan = {1.0f, NAN};
  EXPECT_THROW(sampler.sample(nan, sampling(), {}, rng), Error);
  const std::vector<float> logits = {1.0f, 2.0f};
  SamplingParams params = greedy();
  params.eosTokenIds = {0, 1};
  params.minTokens = 1;
  try {
    sampler.sample(logits, params, {}, rng);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "sampler: every token is masked (all logits are -inf)");
  }
  const std::vector<int64_t> bad = {7};
  EXPECT_THROW(sampler.sample(logits, sampling(), {bad, {}}, rng), Error);
}

// ---- seeds and batch invariance ---------------------------------------------------------------

std::vector<float> flatLogits(size_t vocab) {
  std::vector<float> logits;
  for (size_t i = 0; i < vocab; ++i) logits.push_back(static_cast<float>(std::sin(static_cast<double>(i)) * 0.5));
  return logits;
}

TEST(SamplerSeed, SameSeedSameDrawsDifferentSeedDifferentDraws) {
  const std::vector<float> logits = flatLogits(50);
  const SamplingParams params = sampling(0.9);
  std::vector<int64_t> a = drawMany(logits, params, SamplerRng::seeded(42), 100);
  std::vector<int64_t> b = drawMany(logits, params, SamplerRng::seeded(42), 100);
  std::vector<int64_t> c = drawMany(logits, params, SamplerRng::seeded(43), 100);
  std::vector<int64_t> d = drawMany(logits, params, SamplerRng::seeded(42, 1), 100);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);  // the n samples of one seeded request differ
  EXPECT_NE(drawMany(logits, params, SamplerRng::unseeded(), 100),
            drawMany(logits, params, SamplerRng::unseeded(), 100));
  SamplingParams seeded = params;
  seeded.seed = 42;
  EXPECT_EQ(drawMany(logits, params, SamplerRng::forRequest(seeded), 100), a);
}

TEST(SamplerSeed, GeneratorBitsArePinned) {
  // The stream is part of the reproducibility contract: a seed must give these numbers on every
  // platform and in every future build.
  SamplerRng rng = SamplerRng::seeded(0);
  EXPECT_EQ(rng.nextBits(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(rng.nextBits(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(rng.counter(), 2u);
  SamplerRng uniform = SamplerRng::seeded(7);
  for (int i = 0; i < 1000; ++i) {
    double u = uniform.nextUniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ASSERT_EQ(u, std::ldexp(std::floor(std::ldexp(u, 53)), -53));  // a multiple of 2^-53
  }
}

struct SimulatedSequence {
  std::vector<float> logits;
  SamplingParams params;
  std::vector<int64_t> prompt;
  std::vector<int64_t> output;
  SamplerRng rng;
};

std::vector<SimulatedSequence> makeSequences() {
  std::vector<SimulatedSequence> sequences;
  SamplingParams a = sampling(0.8);
  a.seed = 7;
  a.topK = 10;
  a.logprobs = 3;
  SamplingParams b = sampling(1.2);
  b.seed = 8;
  b.topP = 0.9;
  b.repetitionPenalty = 1.3;
  b.frequencyPenalty = 0.4;
  SamplingParams c = greedy();
  c.presencePenalty = 0.7;
  c.logprobs = 2;
  SamplingParams d = sampling(1.0);
  d.seed = 9;
  d.minP = 0.1;
  d.minTokens = 5;
  d.eosTokenIds = {0};
  int index = 0;
  for (const SamplingParams& params : {a, b, c, d}) {
    std::vector<float> logits = flatLogits(64);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] += static_cast<float>((i * (index + 3)) % 7) * 0.3f;
    sequences.push_back({logits, params, {1, 2, 3}, {}, SamplerRng::forRequest(params)});
    ++index;
  }
  return sequences;
}

// Runs `steps` decoding steps; each step the logits shift with the last token so that the history
// matters. batched: every sequence in one sampleBatch call (in `order`), else one sample() each.
std::vector<std::vector<SampledToken>> simulate(std::vector<SimulatedSequence> sequences,
                                                const std::vector<size_t>& order,
                                                bool batched, int steps) {
  Sampler sampler;
  std::vector<std::vector<SampledToken>> results(sequences.size());
  for (int step = 0; step < steps; ++step) {
    std::vector<SequenceToSample> batch;
    for (size_t i : order)
      batch.push_back({sequences[i].logits, &sequences[i].params, {sequences[i].prompt, sequences[i].output},
                       &sequences[i].rng});
    std::vector<SampledToken> tokens;
    if (batched) {
      tokens = sampler.sampleBatch(batch);
    } else {
      Sampler alone;  // a fresh sampler too: scratch buffers must not carry anything over
      for (const SequenceToSample& row : batch)
        tokens.push_back(alone.sample(row.logits, *row.params, row.history, *row.rng));
    }
    for (size_t k = 0; k < order.size(); ++k) {
      SimulatedSequence& sequence = sequences[order[k]];
      sequence.output.push_back(tokens[k].tokenId);
      sequence.logits[static_cast<size_t>(tokens[k].tokenId)] -= 0.25f;
      results[order[k]].push_back(tokens[k]);
    }
  }
  return results;
}

void expectSameTokens(const std::vector<SampledToken>& a, const std::vector<SampledToken>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].tokenId, b[i].tokenId) << "step " << i;
    ASSERT_EQ(a[i].logprobs.has_value(), b[i].logprobs.has_value());
    if (!a[i].logprobs) continue;
    // Bitwise: EXPECT_EQ on doubles, not NEAR.
    EXPECT_EQ(a[i].logprobs->logprob, b[i].logprobs->logprob);
    ASSERT_EQ(a[i].logprobs->top.size(), b[i].logprobs->top.size());
    for (size_t j = 0; j < a[i].logprobs->top.size(); ++j) {
      EXPECT_EQ(a[i].logprobs->top[j].tokenId, b[i].logprobs->top[j].tokenId);
      EXPECT_EQ(a[i].logprobs->top[j].logprob, b[i].logprobs->top[j].logprob);
    }
  }
}

TEST(SamplerBatch, EachSequenceDrawsTheSameAloneOrInAnyBatch) {
  const std::vector<SimulatedSequence> sequences = makeSequences();
  const int steps = 100;
  for (size_t s = 0; s < sequences.size(); ++s) {
    if (!sequences[s].params.seed && !sequences[s].params.isGreedy()) continue;
    // Alone: a batch of one.
    std::vector<std::vector<SampledToken>> alone = simulate(sequences, {s}, false, steps);
    std::vector<std::vector<SampledToken>> batched = simulate(sequences, {0, 1, 2, 3}, true, steps);
    std::vector<std::vector<SampledToken>> reordered = simulate(sequences, {3, 1, 0, 2}, true, steps);
    SCOPED_TRACE("sequence " + std::to_string(s));
    expectSameTokens(alone[s], batched[s]);
    expectSameTokens(alone[s], reordered[s]);
  }
}

// ---- logprobs ---------------------------------------------------------------------------------

TEST(SamplerLogprobs, EqualLogSoftmaxOfTheRawLogits) {
  Sampler sampler;
  SamplerRng rng = SamplerRng::seeded(1);
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, -1.0f};
  SamplingParams params = greedy();
  params.logprobs = 2;
  SampledToken token = sampler.sample(logits, params, {}, rng);
  ASSERT_TRUE(token.logprobs);
  // log(e^1 + e^3 + e^2 + e^-1), computed by hand around the max 3.
  const double lse = 3.0 + std::log(std::exp(-2.0) + 1.0 + std::exp(-1.0) + std::exp(-4.0));
  EXPECT_EQ(token.tokenId, 1);
  EXPECT_NEAR(token.logprobs->logprob, 3.0 - lse, 1e-14);
  EXPECT_EQ(token.logprobs->rank, 1);
  ASSERT_EQ(token.logprobs->top.size(), 2u);
  EXPECT_EQ(token.logprobs->top[0].tokenId, 1);
  EXPECT_NEAR(token.logprobs->top[0].logprob, 3.0 - lse, 1e-14);
  EXPECT_EQ(token.logprobs->top[1].tokenId, 2);
  EXPECT_NEAR(token.logprobs->top[1].logprob, 2.0 - lse, 1e-14);

  // Raw mode ignores temperature, bias and filters: the same numbers for a forced token.
  params = sampling(0.3);
  params.logprobs = 0;
  params.logitBias = {{3, 100.0}};
  token = sampler.sample(logits, params, {}, rng);
  EXPECT_EQ(token.tokenId, 3);
  EXPECT_NEAR(token.logprobs->logprob, -1.0 - lse, 1e-14);
  EXPECT_EQ(token.logprobs->rank, 4);
  EXPECT_TRUE(token.logprobs->top.empty());
}

TEST(SamplerLogprobs, ProcessedModeDescribesTheSampledDistribution) {
  Sampler sampler(LogprobsMode::Processed);
  SamplerRng rng = SamplerRng::seeded(1);
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, -1.0f};
  SamplingParams params = sampling(0.5);
  params.topK = 2;
  params.logprobs = 3;
  SampledToken token = sampler.sample(logits, params, {}, rng);
  // log_softmax over {3, 2} / 0.5 = {6, 4} (differences from the max: 0, -2).
  const double lse = std::log(1.0 + std::exp(-2.0));
  const double expected = token.tokenId == 1 ? -lse : -2.0 - lse;
  EXPECT_NEAR(token.logprobs->logprob, expected, 1e-14);
  ASSERT_EQ(token.logprobs->top.size(), 3u);
  EXPECT_EQ(token.logprobs->top[2].logprob, kNegInf);  // filtered by top-k
  EXPECT_EQ(token.logprobs->top[2].tokenId, 0);
}

TEST(SamplerLogprobs, PromptLogprobsHelper) {
  const std::vector<float> logits = {0.0f, 0.0f, 0.0f, 0.0f};
  TokenLogprobs lp = computeLogprobs(std::span<const float>(logits), 2, 20);
  EXPECT_NEAR(lp.logprob, -std::log(4.0), 1e-15);
  EXPECT_EQ(lp.rank, 4);  // vLLM's rank counts ties
  ASSERT_EQ(lp.top.size(), 4u);  // clamped to the vocabulary
  EXPECT_EQ(lp.top[0].tokenId, 0);
  EXPECT_EQ(lp.top[3].tokenId, 3);
}

// ---- validation -------------------------------------------------------------------------------

void expectInvalid(const std::function<void(SamplingParams&)>& change, const std::string& message,
                   int64_t vocabSize = 100) {
  SamplingParams params;
  change(params);
  try {
    params.validate(vocabSize);
    ADD_FAILURE() << "expected: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(SamplingParamsValidate, DefaultsAndGoodValuesPass) {
  SamplingParams params;
  EXPECT_NO_THROW(params.validate(100));
  params.n = 3;
  params.bestOf = 5;
  params.temperature = 1.5;
  params.topK = 0;
  params.topP = 0.5;
  params.minP = 1.0;
  params.repetitionPenalty = 0.5;
  params.presencePenalty = -2.0;
  params.frequencyPenalty = 2.0;
  params.logitBias = {{0, -100.0}, {99, 100.0}};
  params.seed = -5;
  params.stopTokenIds = {99};
  params.eosTokenIds = {2};
  params.stop = {"\n\n"};
  params.maxTokens = std::nullopt;
  params.minTokens = 1000;
  params.logprobs = 20;
  params.promptLogprobs = 0;
  EXPECT_NO_THROW(params.validate(100));
  SamplingParams beam = greedy();
  beam.useBeamSearch = true;
  beam.bestOf = 4;
  beam.lengthPenalty = 0.8;
  beam.earlyStopping = EarlyStopping::Never;
  EXPECT_NO_THROW(beam.validate(100));
}

TEST(SamplingParamsValidate, EachBadFieldIsNamed) {
  expectInvalid([](SamplingParams& p) { p.n = 0; }, "n must be >= 1, got 0");
  expectInvalid([](SamplingParams& p) { p.n = 3; p.bestOf = 2; }, "best_of must be >= n (3), got 2");
  expectInvalid([](SamplingParams& p) { p.temperature = -1; }, "temperature must be >= 0, got -1");
  expectInvalid([](SamplingParams& p) { p.temperature = NAN; }, "temperature must be a finite number, got nan");
  expectInvalid([](SamplingParams& p) { p.temperature = INFINITY; }, "temperature must be a finite number, got inf");
  expectInvalid([](SamplingParams& p) { p.topP = 0; }, "top_p must be in (0, 1], got 0");
  expectInvalid([](SamplingParams& p) { p.topP = 1.5; }, "top_p must be in (0, 1], got 1.5");
  expectInvalid([](SamplingParams& p) { p.topK = -2; }, "top_k must be -1 or 0 (off) or >= 1, got -2");
  expectInvalid([](SamplingParams& p) { p.minP = -0.1; }, "min_p must be in [0, 1], got -0.1");
  expectInvalid([](SamplingParams& p) { p.minP = 2; }, "min_p must be in [0, 1], got 2");
  expectInvalid([](SamplingParams& p) { p.repetitionPenalty = 0; }, "repetition_penalty must be > 0, got 0");
  expectInvalid([](SamplingParams& p) { p.presencePenalty = 2.5; }, "presence_penalty must be in [-2, 2], got 2.5");
  expectInvalid([](SamplingParams& p) { p.frequencyPenalty = -3; }, "frequency_penalty must be in [-2, 2], got -3");
  expectInvalid([](SamplingParams& p) { p.frequencyPenalty = NAN; },
                "frequency_penalty must be a finite number, got nan");
  expectInvalid([](SamplingParams& p) { p.logitBias = {{100, 1.0}}; },
                "logit_bias key must be a token id in [0, 100), got 100");
  expectInvalid([](SamplingParams& p) { p.logitBias = {{-1, 1.0}}; },
                "logit_bias key must be a token id in [0, 100), got -1");
  expectInvalid([](SamplingParams& p) { p.logitBias = {{5, 150.0}}; }, "logit_bias[5] must be in [-100, 100], got 150");
  expectInvalid([](SamplingParams& p) { p.maxTokens = 0; }, "max_tokens must be >= 1, got 0");
  expectInvalid([](SamplingParams& p) { p.minTokens = -1; }, "min_tokens must be >= 0, got -1");
  expectInvalid([](SamplingParams& p) { p.minTokens = 20; }, "min_tokens must be <= max_tokens (16), got 20");
  expectInvalid([](SamplingParams& p) { p.logprobs = 21; }, "logprobs must be in [0, 20], got 21");
  expectInvalid([](SamplingParams& p) { p.logprobs = -1; }, "logprobs must be in [0, 20], got -1");
  expectInvalid([](SamplingParams& p) { p.promptLogprobs = 50; }, "prompt_logprobs must be in [0, 20], got 50");
  expectInvalid([](SamplingParams& p) { p.stop = {"a", ""}; }, "stop[1] must not be an empty string");
  expectInvalid([](SamplingParams& p) { p.stopTokenIds = {3, 100}; },
                "stop_token_ids[1] must be a token id in [0, 100), got 100");
  expectInvalid([](SamplingParams& p) { p.eosTokenIds = {-4}; },
                "eos_token_ids[0] must be a token id in [0, 100), got -4");
  expectInvalid([](SamplingParams& p) { p.temperature = 0; p.n = 2; },
                "n must be 1 when using greedy sampling (temperature 0), got 2");
  expectInvalid([](SamplingParams& p) { p.temperature = 0; p.bestOf = 3; },
                "best_of must be 1 when using greedy sampling (temperature 0), got 3");
  expectInvalid([](SamplingParams& p) { p.lengthPenalty = 0.5; },
                "length_penalty must be 1 when not using beam search, got 0.5");
  expectInvalid([](SamplingParams& p) { p.earlyStopping = EarlyStopping::Immediate; },
                "early_stopping must be false when not using beam search");
  expectInvalid([](SamplingParams& p) { p.useBeamSearch = true; p.temperature = 0; },
                "best_of (or n when best_of is unset) must be > 1 when using beam search, got 1");
  expectInvalid([](SamplingParams& p) { p.useBeamSearch = true; p.bestOf = 2; },
                "temperature must be 0 when using beam search, got 1");
  expectInvalid([](SamplingParams& p) { p.useBeamSearch = true; p.bestOf = 2; p.temperature = 0; p.topP = 0.9; },
                "top_p must be 1 when using beam search, got 0.9");
  expectInvalid([](SamplingParams& p) { p.useBeamSearch = true; p.bestOf = 2; p.temperature = 0; p.topK = 5; },
                "top_k must be -1 when using beam search, got 5");
  expectInvalid([](SamplingParams&) {}, "the model's vocabulary size must be positive, got 0", 0);
}

// ---- stop conditions --------------------------------------------------------------------------

TEST(SamplerStopChecker, EosStopsAndItsTextIsDropped) {
  SamplingParams params;
  params.eosTokenIds = {2};
  StopChecker checker(params);
  EXPECT_EQ(checker.onToken(5, 1, "Hello").reason, FinishReason::None);
  StopDecision decision = checker.onToken(2, 2, "</s>");
  EXPECT_EQ(decision.reason, FinishReason::Stop);
  EXPECT_FALSE(decision.stopTokenId);
  EXPECT_EQ(checker.text(), "Hello");
  EXPECT_THROW(checker.onToken(5, 3, "x"), Error);

  params.ignoreEos = true;
  StopChecker ignoring(params);
  EXPECT_EQ(ignoring.onToken(2, 1, "</s>").reason, FinishReason::None);
}

TEST(SamplerStopChecker, StopStringSpanningTokensCutsTheOutput) {
  SamplingParams params;
  params.stop = {"STOP", "\n\n"};
  StopChecker checker(params);
  EXPECT_EQ(checker.onToken(1, 1, "abc S").reason, FinishReason::None);
  EXPECT_EQ(checker.streamableLength(), 2u);  // "ab": the last 3 bytes could start "STOP"
  EXPECT_EQ(checker.onToken(1, 2, "TO").reason, FinishReason::None);
  StopDecision decision = checker.onToken(1, 3, "Pxyz");
  EXPECT_EQ(decision.reason, FinishReason::Stop);
  EXPECT_EQ(decision.stopString, "STOP");
  EXPECT_EQ(checker.text(), "abc ");
  EXPECT_EQ(checker.streamableLength(), 4u);

  params.includeStopStrInOutput = true;
  StopChecker including(params);
  including.onToken(1, 1, "x\n");
  EXPECT_EQ(including.onToken(1, 2, "\ny").stopString, "\n\n");
  EXPECT_EQ(including.text(), "x\n\n");
}

TEST(SamplerStopChecker, StopTokensMaxTokensAndMinTokens) {
  SamplingParams params;
  params.stopTokenIds = {7};
  params.stop = {"end"};
  params.maxTokens = 4;
  params.minTokens = 2;
  StopChecker checker(params);
  // Before min_tokens nothing stops, not even a stop string or token.
  EXPECT_EQ(checker.onToken(7, 1, "the end").reason, FinishReason::None);
  EXPECT_EQ(checker.onToken(3, 2, "!").reason, FinishReason::None);
  EXPECT_EQ(checker.onToken(3, 3, "?").reason, FinishReason::None);
  StopDecision decision = checker.onToken(3, 4, ".");
  EXPECT_EQ(decision.reason, FinishReason::Length);
  EXPECT_EQ(checker.text(), "the end!?.");

  StopChecker stopping(params);
  stopping.onToken(3, 1, "a");
  decision = stopping.onToken(7, 2, "<stop>");
  EXPECT_EQ(decision.reason, FinishReason::Stop);
  EXPECT_EQ(decision.stopTokenId, 7);
  EXPECT_EQ(stopping.text(), "a");
}

TEST(SamplerStopChecker, StreamingNeverSplitsUtf8) {
  SamplingParams params;
  params.stop = {"xy"};
  StopChecker checker(params);
  checker.onToken(1, 1, "a\xC3\xA9");  // "aé": holding back one byte would split é
  EXPECT_EQ(checker.streamableLength(), 1u);
}

}  // namespace
}  // namespace pagedc
