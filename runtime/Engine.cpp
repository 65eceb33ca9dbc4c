// The engine loop: schedule -> run -> sample (or beam candidates) -> scheduler update -> outputs.
#include "runtime/Engine.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "ir/Error.h"

namespace pagedc {

namespace {

BlockManagerConfig blockConfig(const ModelRunner& runner, const EngineConfig& config) {
  BlockManagerConfig c;
  c.blockSize = runner.facts().blockSize;
  c.numDeviceBlocks = runner.numDeviceBlocks();
  c.numHostBlocks = config.swapSpaceBlocks.value_or(runner.numHostBlocks());
  if (c.numHostBlocks < 0 || c.numHostBlocks > runner.numHostBlocks())
    fail("engine: swapSpaceBlocks must be in [0, ", runner.numHostBlocks(), "] (the runner's host blocks), got ",
         c.numHostBlocks);
  c.enablePrefixCaching = config.enablePrefixCaching;
  c.watermark = config.watermark;
  return c;
}

SchedulerConfig schedulerConfig(const ModelRunner& runner, SchedulerConfig c) {
  const int64_t maxPositions = runner.facts().maxPositions;
  if (c.maxModelLen == 0) c.maxModelLen = maxPositions;
  if (maxPositions > 0 && c.maxModelLen > maxPositions)
    fail("engine: maxModelLen ", c.maxModelLen, " exceeds the model's ", maxPositions, " positions");
  return c;
}

// Whether any logits processing applies to a beam request's logprobs.
bool needsProcessing(const SamplingParams& p) {
  bool stopIds = (!p.ignoreEos && !p.eosTokenIds.empty()) || !p.stopTokenIds.empty();
  return !p.logitBias.empty() || p.repetitionPenalty != 1.0 || p.presencePenalty != 0.0 ||
         p.frequencyPenalty != 0.0 || (p.minTokens > 0 && stopIds);
}

}  // namespace

Engine::Engine(ModelRunner& runner, EngineConfig config)
    : runner_(runner),
      config_(std::move(config)),
      blocks_(blockConfig(runner, config_)),
      scheduler_(schedulerConfig(runner, config_.scheduler), blocks_),
      sampler_(config_.logprobsMode) {}

void Engine::validateRequest(std::span<const TokenId> prompt, const SamplingParams& params) const {
  const int64_t vocab = runner_.facts().vocabSize;
  if (prompt.empty()) fail("prompt must not be empty");
  for (size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] < 0 || prompt[i] >= vocab)
      fail("prompt[", i, "] must be a token id in [0, ", vocab, "), got ", prompt[i]);
  params.validate(vocab);
  if (!params.stop.empty() && !config_.detokenize)
    fail("stop strings need a detokenizer and this engine has none; got stop[0] = \"", params.stop[0], "\"");
  if (params.useBeamSearch && !params.stop.empty()) fail("stop strings are not supported with use_beam_search");
  if (params.useBeamSearch && params.logprobs) fail("logprobs is not supported with use_beam_search");
}

void Engine::addRequest(const RequestId& id, std::vector<TokenId> prompt, const SamplingParams& params) {
  if (requests_.count(id)) fail("request ", id, " already exists");
  validateRequest(prompt, params);

  RequestState r;
  r.params = params;
  r.prompt = prompt;
  r.streamed = !params.useBeamSearch && params.effectiveBestOf() == params.n;
  if (!params.useBeamSearch)
    for (int64_t i = 0; i < params.effectiveBestOf(); ++i) r.rngs.push_back(SamplerRng::forRequest(params, i));
  if (params.promptLogprobs) {
    r.promptLogprobs.resize(prompt.size());
    r.promptLogprobsMissing = static_cast<int64_t>(prompt.size()) - 1;
  }
  scheduler_.addRequest(id, std::move(prompt), params);
  requests_.emplace(id, std::move(r));
}

bool Engine::abort(const RequestId& id) { return scheduler_.abort(id); }

std::vector<TokenLogprob> Engine::beamCandidates(std::span<const float> row, const SamplingParams& params,
                                                 const TokenHistory& history, int64_t count) {
  // transformers' beam scores: log_softmax of the raw logits, then the logits processors.
  std::vector<double> logprobs(row.begin(), row.end());
  double maxLogit = -INFINITY;
  for (double x : logprobs) {
    if (std::isnan(x)) fail("engine: the model produced NaN logits");
    maxLogit = std::max(maxLogit, x);
  }
  if (!std::isfinite(maxLogit)) fail("engine: the logits row's largest entry is ", maxLogit);
  double sum = 0.0;
  for (double x : logprobs) sum += std::exp(x - maxLogit);
  const double logSum = std::log(sum);
  for (double& x : logprobs) x = (x - maxLogit) - logSum;
  if (needsProcessing(params)) {
    std::vector<float> narrow(logprobs.begin(), logprobs.end());
    logprobs = sampler_.processLogits(narrow, params, history);
  }
  std::vector<int64_t> ids(logprobs.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
  const size_t keep = std::min(ids.size(), static_cast<size_t>(count));
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end(), [&](int64_t a, int64_t b) {
    return logprobs[static_cast<size_t>(a)] != logprobs[static_cast<size_t>(b)]
               ? logprobs[static_cast<size_t>(a)] > logprobs[static_cast<size_t>(b)]
               : a < b;
  });
  std::vector<TokenLogprob> top;
  for (size_t i = 0; i < keep; ++i) {
    double lp = logprobs[static_cast<size_t>(ids[i])];
    if (std::isfinite(lp)) top.push_back({ids[i], lp});
  }
  return top;
}

std::string Engine::completionText(const RequestState& r, const Completion& c) const {
  if (!config_.detokenize) return {};
  if (c.seq) {
    auto it = r.seqs.find(*c.seq);
    if (it != r.seqs.end() && it->second.checker) return it->second.checker->text();
  }
  // Beam hypotheses: an ending EOS or stop token's text is left out, as StopChecker does.
  std::span<const TokenId> tokens = c.output;
  if (c.reason == FinishReason::Stop && !tokens.empty() && !r.params.includeStopStrInOutput)
    tokens = tokens.first(tokens.size() - 1);
  std::unique_ptr<TokenTextStream> stream = config_.detokenize(r.params);
  std::string text;
  for (TokenId t : tokens) text += stream->push(t);
  return text + stream->finish();
}

std::vector<RequestOutput> Engine::step() {
  StepPlan plan = scheduler_.schedule();
  ++numSteps_;
  {
    BlockStats st = blocks_.stats();
    peakUsedBlocks_ = std::max(peakUsedBlocks_, st.usedBlocks);
    peakUnsharedBlocks_ = std::max(peakUnsharedBlocks_, st.unsharedBlocks);
  }
  copyOnWriteBlocks_ += static_cast<int64_t>(plan.copies.size());
  swappedOutBlocks_ += static_cast<int64_t>(plan.swapOut.size());
  swappedInBlocks_ += static_cast<int64_t>(plan.swapIn.size());

  std::vector<RequestId> order;
  std::unordered_map<RequestId, RequestOutput> outputs;
  auto outputOf = [&](const RequestId& id) -> RequestOutput& {
    auto [it, inserted] = outputs.try_emplace(id);
    if (inserted) {
      it->second.requestId = id;
      order.push_back(id);
    }
    return it->second;
  };

  // What each sampled sequence got this step, for the streamed outputs.
  struct Sampled {
    RequestId request;
    SeqId seq = 0;
    int64_t sampleIndex = 0;
    TokenId token = 0;
    std::optional<TokenLogprobs> logprobs;
    std::optional<std::string> stopString;
  };
  std::vector<Sampled> sampled;
  std::unordered_set<RequestId> touched;
  StepSamples samples;
  const bool anything = !plan.seqs.empty() || !plan.swapOut.empty() || !plan.swapIn.empty() || !plan.copies.empty();
  if (anything) {
    StepLogits logits = runner_.execute(plan);
    if (logits.numRows != plan.numLogits())
      fail("engine: the runner returned ", logits.numRows, " logits rows for a plan that needs ", plan.numLogits());
    int64_t row = 0;
    for (const ScheduledSequence& s : plan.seqs) {
      RequestState& r = requests_.at(s.requestId);
      const SequenceGroup* g = scheduler_.find(s.requestId);
      if (!g) fail("engine: request ", s.requestId, " is scheduled but unknown to the scheduler");
      const int64_t rows = s.allLogits ? static_cast<int64_t>(s.tokens.size()) : (s.needsLogits ? 1 : 0);
      if (rows > 0) touched.insert(s.requestId);
      if (s.allLogits && r.params.promptLogprobs) {
        for (size_t i = 0; i < s.tokens.size(); ++i) {
          // Row i predicts the token after position i: a prompt token's logprob.
          auto next = static_cast<size_t>(s.positions[i] + 1);
          if (next >= r.prompt.size()) continue;
          if (!r.promptLogprobs[next]) --r.promptLogprobsMissing;
          r.promptLogprobs[next] = computeLogprobs(logits.row(row + static_cast<int64_t>(i)), r.prompt[next], *r.params.promptLogprobs);
        }
      }
      if (s.needsLogits) {
        std::span<const float> last = logits.row(row + rows - 1);
        for (SeqId q : s.sampleSeqs) {
          const Sequence* seq = g->find(q);
          if (!seq) fail("engine: request ", s.requestId, " has no sequence ", q);
          TokenHistory history{r.prompt, seq->output};
          if (g->beam) {
            samples.beams.push_back({q, beamCandidates(last, r.params, history, g->beam->candidatesPerBeam())});
            continue;
          }
          SampledToken t = sampler_.sample(last, r.params, history, r.rngs[static_cast<size_t>(seq->sampleIndex)]);
          // Cumulative logprobs sum what is reported (raw logprobs unless LogprobsMode::Processed).
          double logprob = t.logprobs ? t.logprobs->logprob : computeLogprobs(last, t.tokenId, 0).logprob;
          SeqState& ss = r.seqs[q];
          ss.cumulativeLogprob += logprob;
          if (t.logprobs) ss.logprobs.push_back(*t.logprobs);
          Sampled entry{s.requestId, q, seq->sampleIndex, t.tokenId, t.logprobs, std::nullopt};
          bool stop = false;
          if (config_.detokenize) {
            if (!ss.checker) ss.checker.emplace(r.params);
            if (!ss.text) {
              // A sequence forked from another (parallel sampling) starts with its parent's output.
              ss.text = config_.detokenize(r.params);
              for (TokenId earlier : seq->output) ss.text->push(earlier);
            }
            std::string newText = ss.text->push(t.tokenId);
            if (!ss.checkerDone) {
              StopDecision d = ss.checker->onToken(t.tokenId, static_cast<int64_t>(seq->output.size()) + 1, newText);
              ss.checkerDone = d.reason != FinishReason::None;
              if (d.stopString) {
                stop = true;
                entry.stopString = d.stopString;
              }
            }
          }
          samples.tokens.push_back({q, t.tokenId, logprob, stop});
          sampled.push_back(std::move(entry));
        }
      }
      row += rows;
    }
  }
  StepResult result = scheduler_.onStepDone(samples);

  std::unordered_map<SeqId, FinishReason> seqFinished;
  for (const FinishedSequence& f : result.finishedSequences) seqFinished[f.seq] = f.reason;
  for (const Sampled& e : sampled) {
    RequestState& r = requests_.at(e.request);
    SeqState& ss = r.seqs[e.seq];
    // A sequence that ended on an incomplete character (max_tokens mid-way through it) ends with
    // what the detokenizer held back, as decoding the whole output would; a stop string's cut
    // already ended the text.
    if (ss.text && !e.stopString && seqFinished.count(e.seq)) ss.checker->appendFinalText(ss.text->finish());
    if (!r.streamed) continue;
    CompletionOutput c;
    c.index = e.sampleIndex;
    c.tokens = {e.token};
    if (e.logprobs) c.logprobs = {*e.logprobs};
    c.cumulativeLogprob = ss.cumulativeLogprob;
    auto fin = seqFinished.find(e.seq);
    if (fin != seqFinished.end()) c.finishReason = fin->second;
    c.stopString = e.stopString;
    if (ss.checker) {
      const std::string& text = ss.checker->text();
      size_t upTo = c.finishReason != FinishReason::None ? text.size() : std::min(text.size(), ss.checker->streamableLength());
      if (upTo > ss.textSent) c.text = text.substr(ss.textSent, upTo - ss.textSent);
      ss.textSent = std::max(ss.textSent, upTo);
    }
    outputOf(e.request).completions.push_back(std::move(c));
  }
  for (const RequestId& id : touched) {
    RequestState& r = requests_.at(id);
    if (r.params.promptLogprobs && !r.promptLogprobsSent && r.promptLogprobsMissing == 0) {
      outputOf(id).promptLogprobs = r.promptLogprobs;
      r.promptLogprobsSent = true;
    }
  }
  for (const FinishedRequest& f : result.finished) {
    RequestState& r = requests_.at(f.requestId);
    RequestOutput& out = outputOf(f.requestId);
    out.finished = true;
    if (!r.streamed) {
      for (const Completion& c : f.completions) {
        CompletionOutput o;
        o.index = c.index;
        o.tokens = c.output;
        o.cumulativeLogprob = c.cumulativeLogprob;
        o.beamScore = c.beamScore;
        o.finishReason = c.reason;
        if (c.seq) {
          auto it = r.seqs.find(*c.seq);
          if (it != r.seqs.end()) o.logprobs = it->second.logprobs;
        }
        o.text = completionText(r, c);
        out.completions.push_back(std::move(o));
      }
    }
    requests_.erase(f.requestId);
  }
  for (const FinishedRequest& f : scheduler_.takeDropped()) {
    auto it = requests_.find(f.requestId);
    if (it == requests_.end()) continue;
    RequestOutput& out = outputOf(f.requestId);
    out.finished = true;
    out.message = f.message;
    for (const Completion& c : f.completions) {
      // Completions that ended before are reported already; the others end with the request.
      if (c.index >= it->second.params.n || c.reason != f.reason) continue;
      CompletionOutput o;
      o.index = c.index;
      o.finishReason = f.reason;
      o.cumulativeLogprob = c.cumulativeLogprob;
      out.completions.push_back(std::move(o));
    }
    requests_.erase(it);
  }
  idleSteps_ = anything || !order.empty() ? 0 : idleSteps_ + 1;

  std::vector<RequestOutput> list;
  list.reserve(order.size());
  for (const RequestId& id : order) list.push_back(std::move(outputs.at(id)));
  return list;
}

std::map<RequestId, RequestOutput> Engine::runToCompletion() {
  std::map<RequestId, RequestOutput> all;
  while (hasUnfinished()) {
    for (const RequestOutput& o : step()) all[o.requestId].append(o);
    if (idleSteps_ > 1000) fail("engine: no progress in 1000 steps with ", requests_.size(), " requests unfinished");
  }
  return all;
}

EngineStats Engine::stats() const {
  EngineStats s;
  s.blocks = blocks_.stats();
  s.peakUsedBlocks = peakUsedBlocks_;
  s.peakUnsharedBlocks = peakUnsharedBlocks_;
  s.numSteps = numSteps_;
  s.numPreemptions = scheduler_.numPreemptions();
  s.promptTokensComputed = scheduler_.numPromptTokensScheduled();
  s.decodeTokensComputed = scheduler_.numDecodeTokensScheduled();
  s.copyOnWriteBlocks = copyOnWriteBlocks_;
  s.swappedOutBlocks = swappedOutBlocks_;
  s.swappedInBlocks = swappedInBlocks_;
  return s;
}

}  // namespace pagedc
