// Beam search over one request's beams, step by step, with Hugging Face transformers' semantics
// (transformers 5.x `GenerationMixin._beam_search`). Pure bookkeeping on scores and token ids: the
// scheduler maps the running beams onto sequences (fork / free) and the engine supplies each beam's
// most likely next tokens. docs/RUNTIME.md ("Beam search") explains the rules.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/FinishReason.h"
#include "runtime/PrefixCache.h"
#include "runtime/Sampler.h"
#include "runtime/SamplingParams.h"

namespace pagedc {

// One running beam at a step: what it generated, its cumulative logprob, and its candidates for the
// next token (log_softmax of the raw logits, after any logits processing), in any order.
struct BeamState {
  std::span<const TokenId> output;
  double cumLogprob = 0.0;
  std::span<const TokenLogprob> next;
};

// A running beam of the next step: beams[parent].output + token.
struct BeamContinuation {
  int64_t parent = 0;
  TokenId token = 0;
  double cumLogprob = 0.0;
};

// A finished hypothesis. score = cumLogprob / generated ^ length_penalty, where generated counts
// the hypothesis' tokens including its EOS (transformers: cur_len + 1 - decoder_prompt_len).
struct BeamHypothesis {
  std::vector<TokenId> output;
  double cumLogprob = 0.0;
  double score = 0.0;
  FinishReason reason = FinishReason::Length;  // Stop: ended by an EOS or stop token
};

class BeamSearch {
public:
  // The width is params.effectiveBestOf() (num_beams), the result params.n hypotheses
  // (num_return_sequences). maxNewTokens bounds the generated length (transformers' max_length
  // minus the prompt). EOS ids (unless ignore_eos) and stop_token_ids end a hypothesis once more
  // than min_tokens are generated.
  BeamSearch(const SamplingParams& params, int64_t maxNewTokens);

  int64_t width() const { return width_; }
  // Candidates each beam must offer (its most likely tokens): transformers keeps
  // max(2, 1 + number of EOS ids) * width candidates over all beams, so that width of them can
  // continue even if every beam's best continuation ends.
  int64_t candidatesPerBeam() const { return numCandidates_; }

  // One step over the running beams (all with the same output length; one beam at the first
  // step): the new running beams, best first (at most width). Finished hypotheses are collected.
  // Throws Error when called after done().
  std::vector<BeamContinuation> step(std::span<const BeamState> beams);

  bool done() const { return done_; }
  // The finished hypotheses, best first (at most width).
  const std::vector<BeamHypothesis>& finished() const { return finished_; }
  // The best n hypotheses, best first.
  std::vector<BeamHypothesis> results() const;

private:
  bool isStop(TokenId token) const;
  void addHypothesis(BeamHypothesis hyp);

  int64_t width_;
  int64_t numReturn_;
  int64_t numCandidates_;
  int64_t maxNewTokens_;
  int64_t minTokens_;
  double lengthPenalty_;
  EarlyStopping earlyStopping_;
  std::vector<TokenId> stopTokens_;
  std::vector<BeamHypothesis> finished_;
  // transformers' is_early_stop_heuristic_unsatisfied: cleared for good once no running beam can
  // beat the worst of width finished hypotheses.
  bool improvementPossible_ = true;
  bool done_ = false;
};

}  // namespace pagedc
