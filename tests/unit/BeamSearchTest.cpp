// Beam search bookkeeping on hand-worked examples of transformers' rules: which candidates finish,
// which continue, the length-normalised scores, and the three early-stopping rules. The engine
// tests check the whole search against transformers' generate() on real models.
#include <gtest/gtest.h>

#include "ir/Error.h"
#include "runtime/BeamSearch.h"

namespace pagedc {
namespace {

constexpr TokenId kEos = 9;

SamplingParams beamParams(int64_t width, int64_t n, EarlyStopping es, double lengthPenalty = 1.0) {
  SamplingParams p;
  p.n = n;
  p.bestOf = width;
  p.useBeamSearch = true;
  p.temperature = 0.0;
  p.earlyStopping = es;
  p.lengthPenalty = lengthPenalty;
  p.eosTokenIds = {kEos};
  return p;
}

struct Beam {
  std::vector<TokenId> output;
  double cum = 0.0;
  std::vector<TokenLogprob> next;
};

std::vector<BeamContinuation> step(BeamSearch& search, const std::vector<Beam>& beams) {
  std::vector<BeamState> states;
  for (const Beam& b : beams) states.push_back({b.output, b.cum, b.next});
  return search.step(states);
}

// Step 1 from the prompt: 1 (-0.1), EOS (-0.2), 2 (-0.5), 3 (-2). The best two are 1 and EOS:
// [EOS] finishes with score -0.2 / 1; 1 and 2 continue.
std::vector<BeamContinuation> firstStep(BeamSearch& search) {
  return step(search, {{{}, 0.0, {{1, -0.1}, {kEos, -0.2}, {2, -0.5}, {3, -2.0}}}});
}

TEST(BeamSearchTest, FirstStepFinishesEosAmongTheBestWidthAndContinuesTheRest) {
  BeamSearch search(beamParams(2, 2, EarlyStopping::Immediate), 10);
  EXPECT_EQ(search.width(), 2);
  EXPECT_EQ(search.candidatesPerBeam(), 4);  // max(2, 1 + one EOS id) * width
  auto next = firstStep(search);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].parent, 0);
  EXPECT_EQ(next[0].token, 1);
  EXPECT_DOUBLE_EQ(next[0].cumLogprob, -0.1);
  EXPECT_EQ(next[1].token, 2);
  EXPECT_DOUBLE_EQ(next[1].cumLogprob, -0.5);
  ASSERT_EQ(search.finished().size(), 1u);
  EXPECT_EQ(search.finished()[0].output, (std::vector<TokenId>{kEos}));
  EXPECT_DOUBLE_EQ(search.finished()[0].score, -0.2);
  EXPECT_EQ(search.finished()[0].reason, FinishReason::Stop);
  EXPECT_FALSE(search.done());
}

TEST(BeamSearchTest, EarlyStoppingTrueEndsWhenWidthHypothesesFinished) {
  BeamSearch search(beamParams(2, 2, EarlyStopping::Immediate), 10);
  auto next = firstStep(search);
  // [1, EOS] = -0.15 (score -0.075 over 2 tokens), [2, 5] = -0.6, [2, EOS] = -0.8, [1, 4] = -1.1.
  next = step(search, {{{1}, next[0].cumLogprob, {{kEos, -0.05}, {4, -1.0}}},
                       {{2}, next[1].cumLogprob, {{5, -0.1}, {kEos, -0.3}}}});
  EXPECT_TRUE(search.done());
  EXPECT_TRUE(next.empty());
  auto results = search.results();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].output, (std::vector<TokenId>{1, kEos}));
  EXPECT_NEAR(results[0].score, -0.075, 1e-15);
  EXPECT_NEAR(results[0].cumLogprob, -0.15, 1e-15);
  EXPECT_EQ(results[1].output, (std::vector<TokenId>{kEos}));
}

TEST(BeamSearchTest, HeuristicStopsOnlyWhenNoRunningBeamCanWin) {
  // Same first step; at step 2 the best running beam [1, 4] (-0.2, estimated -0.2 / 2) can still
  // beat the worst finished [EOS] (-0.2), so the search goes on where early_stopping=true stops.
  for (EarlyStopping es : {EarlyStopping::Immediate, EarlyStopping::Heuristic}) {
    BeamSearch search(beamParams(2, 2, es), 10);
    auto next = firstStep(search);
    next = step(search, {{{1}, -0.1, {{kEos, -0.05}, {4, -0.1}}}, {{2}, -0.5, {{5, -0.1}, {kEos, -0.3}}}});
    EXPECT_EQ(search.done(), es == EarlyStopping::Immediate);
    if (es == EarlyStopping::Immediate) continue;
    ASSERT_EQ(next.size(), 2u);
    EXPECT_EQ(next[0].token, 4);
    EXPECT_EQ(next[1].token, 5);
    // Step 3: [1, 4, EOS] = -0.21 scores -0.07 and displaces [EOS]; [2, 5, EOS] ranks below
    // (outside the best width), so it is neither finished nor continued. The best running beam
    // [1, 4, 6] (-0.7 / 3) cannot beat -0.075: done.
    next = step(search, {{{1, 4}, -0.2, {{kEos, -0.01}, {6, -0.5}}}, {{2, 5}, -0.6, {{kEos, -1.0}, {7, -1.0}}}});
    EXPECT_TRUE(search.done());
    auto results = search.results();
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(results[0].output, (std::vector<TokenId>{1, 4, kEos}));
    EXPECT_NEAR(results[0].score, -0.07, 1e-15);
    EXPECT_EQ(results[1].output, (std::vector<TokenId>{1, kEos}));
  }
}

TEST(BeamSearchTest, NeverEstimatesAtTheMaximumLengthWithAPositivePenalty) {
  // Step 2's best running beam [2, 5] has -0.6: at the current length (-0.3) it cannot beat the
  // worst finished -0.2, at the maximum length 10 (-0.06) it can.
  for (EarlyStopping es : {EarlyStopping::Heuristic, EarlyStopping::Never}) {
    BeamSearch search(beamParams(2, 1, es), 10);
    firstStep(search);
    step(search, {{{1}, -0.1, {{kEos, -0.05}, {4, -1.0}}}, {{2}, -0.5, {{5, -0.1}, {kEos, -0.3}}}});
    EXPECT_EQ(search.done(), es == EarlyStopping::Heuristic);
    EXPECT_EQ(search.results().size(), 1u);
    EXPECT_EQ(search.results()[0].output, (std::vector<TokenId>{1, kEos}));
  }
}

TEST(BeamSearchTest, MaximumLengthFinishesTheBestWidthCandidates) {
  BeamSearch search(beamParams(2, 2, EarlyStopping::Heuristic), 1);
  auto next = firstStep(search);
  EXPECT_TRUE(next.empty());
  EXPECT_TRUE(search.done());
  auto results = search.results();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].output, (std::vector<TokenId>{1}));
  EXPECT_EQ(results[0].reason, FinishReason::Length);
  EXPECT_EQ(results[1].output, (std::vector<TokenId>{kEos}));
  EXPECT_EQ(results[1].reason, FinishReason::Stop);
}

TEST(BeamSearchTest, LengthPenaltyDividesByGeneratedTokensIncludingEos) {
  BeamSearch search(beamParams(2, 2, EarlyStopping::Immediate, 2.0), 10);
  firstStep(search);
  step(search, {{{1}, -0.1, {{kEos, -0.05}, {4, -1.0}}}, {{2}, -0.5, {{5, -0.1}, {kEos, -0.3}}}});
  auto results = search.results();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_NEAR(results[0].score, -0.15 / 4.0, 1e-15);
  EXPECT_NEAR(results[1].score, -0.2, 1e-15);
}

TEST(BeamSearchTest, MinTokensAndStopTokens) {
  SamplingParams p = beamParams(2, 1, EarlyStopping::Immediate);
  p.minTokens = 1;
  p.stopTokenIds = {11, kEos};
  BeamSearch search(p, 10);
  EXPECT_EQ(search.candidatesPerBeam(), 6);  // (1 + two distinct stop ids) * width
  // Within min_tokens EOS is an ordinary token: it continues.
  auto next = firstStep(search);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[1].token, kEos);
  EXPECT_TRUE(search.finished().empty());
  // A stop token ends a hypothesis like EOS.
  step(search, {{{1}, -0.1, {{11, -0.01}, {4, -1.0}}}, {{kEos}, -0.2, {{5, -0.5}}}});
  ASSERT_EQ(search.finished().size(), 1u);
  EXPECT_EQ(search.finished()[0].output, (std::vector<TokenId>{1, 11}));
  EXPECT_EQ(search.finished()[0].reason, FinishReason::Stop);
}

TEST(BeamSearchTest, Misuse) {
  BeamSearch search(beamParams(2, 2, EarlyStopping::Immediate), 1);
  EXPECT_THROW(search.step({}), Error);
  firstStep(search);
  EXPECT_THROW(firstStep(search), Error);  // done
  EXPECT_THROW(BeamSearch(beamParams(2, 3, EarlyStopping::Immediate), 5), Error);
  EXPECT_THROW(BeamSearch(beamParams(2, 1, EarlyStopping::Immediate), 0), Error);
}

}  // namespace
}  // namespace pagedc
