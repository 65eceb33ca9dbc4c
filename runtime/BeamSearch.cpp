// Beam search bookkeeping, following transformers 5.x `_beam_search` step for step:
// _get_top_k_continuations, _get_running_beams_for_next_iteration, _update_finished_beams,
// _check_early_stop_heuristic and _beam_search_has_unfinished_sequences.
#include "runtime/BeamSearch.h"

#include <algorithm>
#include <cmath>

#include "ir/Error.h"

namespace pagedc {

BeamSearch::BeamSearch(const SamplingParams& params, int64_t maxNewTokens)
    : width_(params.effectiveBestOf()),
      numReturn_(params.n),
      maxNewTokens_(maxNewTokens),
      minTokens_(params.minTokens),
      lengthPenalty_(params.lengthPenalty),
      earlyStopping_(params.earlyStopping) {
  if (width_ < 1) fail("beam search: width (best_of) must be >= 1, got ", width_);
  if (numReturn_ < 1 || numReturn_ > width_) fail("beam search: n must be in [1, ", width_, "], got ", numReturn_);
  if (maxNewTokens_ < 1) fail("beam search: the generation bound must be >= 1 token, got ", maxNewTokens_);
  if (!params.ignoreEos) stopTokens_ = params.eosTokenIds;
  stopTokens_.insert(stopTokens_.end(), params.stopTokenIds.begin(), params.stopTokenIds.end());
  std::ranges::sort(stopTokens_);
  stopTokens_.erase(std::unique(stopTokens_.begin(), stopTokens_.end()), stopTokens_.end());
  numCandidates_ = std::max<int64_t>(2, 1 + static_cast<int64_t>(stopTokens_.size())) * width_;
}

bool BeamSearch::isStop(TokenId token) const { return std::ranges::binary_search(stopTokens_, token); }

void BeamSearch::addHypothesis(BeamHypothesis hyp) {
  // Kept best first; an equal score does not displace an earlier hypothesis.
  auto at = std::ranges::upper_bound(finished_, hyp.score, std::greater<>{}, &BeamHypothesis::score);
  finished_.insert(at, std::move(hyp));
  if (static_cast<int64_t>(finished_.size()) > width_) finished_.pop_back();
}

std::vector<BeamContinuation> BeamSearch::step(std::span<const BeamState> beams) {
  if (done_) fail("beam search: step() after the search is done");
  if (beams.empty()) fail("beam search: step() without beams");
  if (static_cast<int64_t>(beams.size()) > width_)
    fail("beam search: ", beams.size(), " running beams for a width of ", width_);
  const size_t generated = beams[0].output.size();
  for (const BeamState& b : beams)
    if (b.output.size() != generated) fail("beam search: beams of different lengths (", generated, " and ", b.output.size(), ")");
  const auto newLength = static_cast<int64_t>(generated) + 1;

  // Top candidates over all beams by cumulative logprob; ties go to the lower beam, then the lower
  // token id (the flattened index order of transformers' topk over num_beams * vocab).
  struct Candidate {
    double score;
    int64_t parent;
    TokenId token;
  };
  std::vector<Candidate> candidates;
  for (size_t b = 0; b < beams.size(); ++b)
    for (const TokenLogprob& t : beams[b].next)
      if (std::isfinite(t.logprob)) candidates.push_back({beams[b].cumLogprob + t.logprob, static_cast<int64_t>(b), t.tokenId});
  auto better = [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.parent != b.parent) return a.parent < b.parent;
    return a.token < b.token;
  };
  const size_t keep = std::min(candidates.size(), static_cast<size_t>(numCandidates_));
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(keep), candidates.end(), better);
  candidates.resize(keep);
  if (candidates.empty()) fail("beam search: no candidate token with a finite logprob");

  const bool atMaxLength = newLength >= maxNewTokens_;
  auto ends = [&](const Candidate& c) { return atMaxLength || (isStop(c.token) && newLength > minTokens_); };

  // Finished hypotheses: only the best `width` candidates may finish (the others are a reserve so
  // that width beams can continue), and none once the search is full with early_stopping = true
  // or once no improvement is possible.
  const bool full = static_cast<int64_t>(finished_.size()) == width_;
  if (improvementPossible_ && !(earlyStopping_ == EarlyStopping::Immediate && full)) {
    const size_t top = std::min(candidates.size(), static_cast<size_t>(width_));
    for (size_t i = 0; i < top; ++i) {
      const Candidate& c = candidates[i];
      if (!ends(c)) continue;
      BeamHypothesis hyp;
      const BeamState& parent = beams[static_cast<size_t>(c.parent)];
      hyp.output.assign(parent.output.begin(), parent.output.end());
      hyp.output.push_back(c.token);
      hyp.cumLogprob = c.score;
      hyp.score = c.score / std::pow(static_cast<double>(newLength), lengthPenalty_);
      hyp.reason = isStop(c.token) && newLength > minTokens_ ? FinishReason::Stop : FinishReason::Length;
      addHypothesis(std::move(hyp));
    }
  }

  // The running beams: the best candidates that do not end.
  std::vector<BeamContinuation> running;
  for (const Candidate& c : candidates) {
    if (static_cast<int64_t>(running.size()) == width_) break;
    if (!ends(c)) running.push_back({c.parent, c.token, c.score});
  }

  // Can a running beam still beat the worst of width finished hypotheses? transformers estimates
  // the best reachable score at the current length, or at the maximum length for "never" with a
  // positive length penalty; until width hypotheses exist the answer is yes.
  if (improvementPossible_ && static_cast<int64_t>(finished_.size()) == width_ && !running.empty()) {
    const double length = earlyStopping_ == EarlyStopping::Never && lengthPenalty_ > 0.0
                              ? static_cast<double>(maxNewTokens_)
                              : static_cast<double>(newLength);
    const double bestPossible = running.front().cumLogprob / std::pow(length, lengthPenalty_);
    improvementPossible_ = bestPossible > finished_.back().score;
  }
  const bool allFinished = static_cast<int64_t>(finished_.size()) == width_;
  done_ = !improvementPossible_ || (earlyStopping_ == EarlyStopping::Immediate && allFinished) || running.empty();
  if (done_) running.clear();
  return running;
}

std::vector<BeamHypothesis> BeamSearch::results() const {
  const size_t count = std::min(finished_.size(), static_cast<size_t>(numReturn_));
  return {finished_.begin(), finished_.begin() + static_cast<std::ptrdiff_t>(count)};
}

}  // namespace pagedc
