// The serving loop: requests in, one model step at a time, incremental outputs out. Owns the block
// manager, the scheduler and the sampler; drives a ModelRunner. docs/RUNTIME.md ("Engine").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/BlockManager.h"
#include "runtime/ModelRunner.h"
#include "runtime/RequestOutput.h"
#include "runtime/Sampler.h"
#include "runtime/Scheduler.h"
#include "runtime/StopChecker.h"

namespace pagedc {

// One sequence's text as its tokens arrive: push returns the text a token adds. What it returns
// must be final (an incomplete character is held back until a later token completes it), so each
// token costs work proportional to itself, not to the output so far.
class TokenTextStream {
public:
  virtual ~TokenTextStream() = default;
  virtual std::string push(TokenId id) = 0;
  // At the sequence's end: whatever push held back (an incomplete character, as U+FFFD).
  virtual std::string finish() { return {}; }
};

// Makes one stream per sequence (the request's parameters say e.g. whether special tokens are
// skipped). Used for stop strings and text output.
using Detokenizer = std::function<std::unique_ptr<TokenTextStream>(const SamplingParams&)>;

struct EngineConfig {
  SchedulerConfig scheduler;  // maxModelLen 0: the model's maxPositions (when known)
  bool enablePrefixCaching = true;
  // Host blocks used for swapping; unset: every host block the runner has.
  std::optional<int64_t> swapSpaceBlocks;
  double watermark = 0.0;  // BlockManagerConfig::watermark
  LogprobsMode logprobsMode = LogprobsMode::Raw;
  // Optional. Without it, requests with stop strings are rejected and outputs carry no text.
  Detokenizer detokenize;
};

struct EngineStats {
  BlockStats blocks;                 // now
  int64_t peakUsedBlocks = 0;        // most device blocks in use after any schedule()
  int64_t peakUnsharedBlocks = 0;    // most block-table entries: the blocks needed without sharing
  int64_t numSteps = 0;
  int64_t numPreemptions = 0;
  int64_t promptTokensComputed = 0;  // prompt chunks and re-prefills
  int64_t decodeTokensComputed = 0;
  int64_t copyOnWriteBlocks = 0;
  int64_t swappedOutBlocks = 0;
  int64_t swappedInBlocks = 0;
};

class Engine {
public:
  // The block manager is sized from the runner (its pools, facts().blockSize). The runner must
  // outlive the engine.
  explicit Engine(ModelRunner& runner, EngineConfig config = {});

  // Validates (throws Error whose message names the field, e.g. "temperature must be >= 0, got -1",
  // "prompt[2] must be a token id in [0, 256), got 300") and queues the request. A request that
  // can never fit is not an error: the next step() reports it finished as "rejected".
  void addRequest(const RequestId& id, std::vector<TokenId> prompt, const SamplingParams& params);

  // The checks addRequest makes of a prompt and its parameters (all but the id's uniqueness). Reads
  // only the engine's configuration, so other threads may call it while the engine steps.
  void validateRequest(std::span<const TokenId> prompt, const SamplingParams& params) const;

  // One iteration: schedule, run the model, sample, update. Returns an output for every request
  // with news (a token, prompt logprobs, or its end), in plan order, then the aborted and rejected.
  std::vector<RequestOutput> step();

  // Frees the request's blocks now; the next step() reports it finished as "abort". False when the
  // request is unknown or already finished.
  bool abort(const RequestId& id);

  // Requests queued, running, or finished but not yet reported.
  bool hasUnfinished() const { return !requests_.empty(); }

  // Steps until every request is reported finished; returns each request's merged outputs.
  std::map<RequestId, RequestOutput> runToCompletion();

  EngineStats stats() const;
  const BlockManager& blockManager() const { return blocks_; }
  const Scheduler& scheduler() const { return scheduler_; }
  const ModelFacts& facts() const { return runner_.facts(); }

private:
  struct SeqState {
    double cumulativeLogprob = 0.0;
    std::vector<TokenLogprobs> logprobs;  // kept for a non-streamed final output
    std::optional<StopChecker> checker;   // with a detokenizer
    bool checkerDone = false;
    std::unique_ptr<TokenTextStream> text;  // with a detokenizer
    size_t textSent = 0;
  };
  struct RequestState {
    SamplingParams params;
    std::vector<TokenId> prompt;
    std::vector<SamplerRng> rngs;  // per sample index
    bool streamed = false;         // sampling with best_of == n
    std::vector<std::optional<TokenLogprobs>> promptLogprobs;
    int64_t promptLogprobsMissing = 0;
    bool promptLogprobsSent = false;
    std::unordered_map<SeqId, SeqState> seqs;
  };

  std::vector<TokenLogprob> beamCandidates(std::span<const float> row, const SamplingParams& params,
                                           const TokenHistory& history, int64_t count);
  std::string completionText(const RequestState& r, const Completion& c) const;

  ModelRunner& runner_;
  EngineConfig config_;
  BlockManager blocks_;
  Scheduler scheduler_;
  Sampler sampler_;
  std::unordered_map<RequestId, RequestState> requests_;
  int64_t numSteps_ = 0;
  int64_t peakUsedBlocks_ = 0;
  int64_t peakUnsharedBlocks_ = 0;
  int64_t copyOnWriteBlocks_ = 0;
  int64_t swappedOutBlocks_ = 0;
  int64_t swappedInBlocks_ = 0;
  int64_t idleSteps_ = 0;
};

}  // namespace pagedc
