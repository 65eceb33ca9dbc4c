#include "bench/serving/ServingBench.h"

#include <chrono>
#include <cmath>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "bench/serving/SimulatedModelRunner.h"
#include "ir/Error.h"
#include "runtime/cpu/CpuModelRunner.h"

namespace pagedc::bench {

std::string EngineSetup::label() const {
  std::ostringstream out;
  out << kvPolicyName(policy);
  if (policy == KvPolicy::Paged) out << "(" << blockSize << ")";
  if (preemption == PreemptionMode::Swap) out << "+swap";
  if (policy == KvPolicy::Paged && !prefixCaching) out << "-prefix-cache";
  return out.str();
}

RealCpuBackend::RealCpuBackend(const Artifact& artifact, int threads, const StepCostModel* predictor)
    : artifact_(artifact), threads_(threads), predictor_(predictor) {}

std::unique_ptr<ModelRunner> RealCpuBackend::makeRunner(const EngineSetup& setup, int64_t deviceBlocks, int64_t hostBlocks) {
  if (setup.blockSize != artifact_.facts().blockSize)
    fail("bench: real execution runs the artifact's block size ", artifact_.facts().blockSize, ", not ", setup.blockSize,
         " (recompile with --block-size ", setup.blockSize, ", or use --execution simulated)");
  cpu::CpuRunnerConfig config;
  config.numDeviceBlocks = deviceBlocks;
  config.numHostBlocks = hostBlocks;
  config.maxNumBatchedTokens = std::max(setup.maxNumBatchedTokens, setup.maxNumSeqs);
  config.maxNumSeqs = setup.maxNumSeqs;
  config.maxModelLen = setup.maxModelLen;
  config.threads = threads_;
  return std::make_unique<cpu::CpuModelRunner>(artifact_, config);
}

std::string RealCpuBackend::describe() const {
  std::ostringstream out;
  const ModelFacts& f = artifact_.facts();
  out << "real CPU execution: " << f.numLayers << " layers, hidden " << f.hiddenSize << ", vocab " << f.vocabSize << ", "
      << dtypeName(f.weightDType) << " weights, " << dtypeName(f.kvDType) << " KV (" << f.kvBytesPerToken() << " B/token), block size "
      << f.blockSize;
  return out.str();
}

SimulatedBackend::SimulatedBackend(const ModelFacts& modelled, StepCostModel cost, int64_t vocabSize)
    : facts_(modelled), cost_(std::move(cost)) {
  facts_.vocabSize = vocabSize;
}

std::unique_ptr<ModelRunner> SimulatedBackend::makeRunner(const EngineSetup& setup, int64_t deviceBlocks, int64_t hostBlocks) {
  ModelFacts facts = facts_;
  facts.blockSize = setup.blockSize;
  facts.maxPositions = setup.maxModelLen;
  return std::make_unique<SimulatedModelRunner>(facts, deviceBlocks, hostBlocks, cost_);
}

double SimulatedBackend::lastStepSeconds(const ModelRunner& runner) const {
  return static_cast<const SimulatedModelRunner&>(runner).lastStepSeconds();
}

std::string SimulatedBackend::describe() const {
  std::ostringstream out;
  out << "simulated execution (engine, scheduler and block manager real; model step times from the cost model: " << cost_.description
      << "; fit median error " << cost_.medianRelativeError() * 100 << "%)";
  return out.str();
}

namespace {

// Counts what each step ran, for the step records; forwards everything.
class ObservedRunner final : public ModelRunner {
public:
  explicit ObservedRunner(ModelRunner& inner) : inner_(inner) {}
  const ModelFacts& facts() const override { return inner_.facts(); }
  int64_t numDeviceBlocks() const override { return inner_.numDeviceBlocks(); }
  int64_t numHostBlocks() const override { return inner_.numHostBlocks(); }
  StepLogits execute(const StepPlan& plan) override {
    ++executions;
    lastSeqs = static_cast<int64_t>(plan.seqs.size());
    lastTokens = plan.numTokens();
    lastShape = StepShape::of(plan);
    return inner_.execute(plan);
  }
  int64_t executions = 0, lastSeqs = 0, lastTokens = 0;
  StepShape lastShape;

private:
  ModelRunner& inner_;
};

double wallSeconds() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

RunResult runInProcess(const Workload& workload, const EngineSetup& setup, BenchBackend& backend) {
  if (setup.blockSize < 1) fail("bench: block size must be >= 1, got ", setup.blockSize);
  if (setup.kvBudgetTokens < setup.blockSize)
    fail("bench: the KV budget (", setup.kvBudgetTokens, " tokens) is smaller than one block of ", setup.blockSize);
  const int64_t budgetBlocks = setup.kvBudgetTokens / setup.blockSize;
  // The reservation policies' memory is their KvReservation of the budget's slots; the pages under
  // it get one spare block per sequence so that pages never run out before reservations do.
  const int64_t deviceBlocks = reservesContiguously(setup.policy) ? budgetBlocks + setup.maxNumSeqs + 1 : budgetBlocks;
  const int64_t swapTokens = setup.swapSpaceTokens > 0 ? setup.swapSpaceTokens : setup.kvBudgetTokens;
  const int64_t hostBlocks = setup.preemption == PreemptionMode::Swap ? swapTokens / setup.blockSize : 0;
  std::unique_ptr<ModelRunner> runner = backend.makeRunner(setup, deviceBlocks, hostBlocks);
  ObservedRunner observed(*runner);

  EngineConfig config;
  config.scheduler.maxNumBatchedTokens = setup.maxNumBatchedTokens;
  config.scheduler.maxNumSeqs = setup.maxNumSeqs;
  config.scheduler.preemptionMode = setup.preemption;
  config.scheduler.enableChunkedPrefill = setup.chunkedPrefill;
  config.scheduler.maxModelLen = setup.maxModelLen;
  config.scheduler.kvPolicy = setup.policy;
  config.scheduler.reservationCapacity = reservesContiguously(setup.policy) ? setup.kvBudgetTokens : 0;
  config.enablePrefixCaching = setup.prefixCaching && setup.policy == KvPolicy::Paged;
  config.swapSpaceBlocks = hostBlocks;
  config.watermark = setup.policy == KvPolicy::Paged ? setup.watermark : 0.0;
  Engine engine(observed, config);

  RunResult result;
  result.setup = setup;
  result.swapSpaceBlocks = hostBlocks;
  const auto& requests = workload.requests;
  result.requests.resize(requests.size());
  std::unordered_map<std::string, size_t> index;
  std::vector<double> lastTokenTime(requests.size(), kNotSeen);
  for (size_t i = 0; i < requests.size(); ++i) {
    RequestRecord& r = result.requests[i];
    r.id = requests[i].id;
    r.arrival = requests[i].arrival;
    r.promptTokens = static_cast<int64_t>(requests[i].prompt.size());
    r.expectedOutputTokens = requests[i].outputLen;
    index[r.id] = i;
  }
  const bool simulated = backend.simulated();
  const double wallStart = wallSeconds();
  double now = 0.0;
  size_t next = 0;
  size_t finished = 0;
  while (finished < requests.size()) {
    if (!simulated) now = wallSeconds() - wallStart;
    for (; next < requests.size() && requests[next].arrival <= now; ++next) {
      const BenchRequest& q = requests[next];
      try {
        engine.addRequest(q.id, q.prompt, q.params);
      } catch (const std::exception& e) {
        RequestRecord& r = result.requests[next];
        r.error = e.what();
        r.finish = now;
        ++finished;
      }
    }
    if (!engine.hasUnfinished()) {
      if (next == requests.size()) break;
      // Idle until the next arrival.
      if (simulated) now = requests[next].arrival;
      else std::this_thread::sleep_for(std::chrono::duration<double>(requests[next].arrival - now));
      continue;
    }
    const int64_t executionsBefore = observed.executions;
    const double stepStart = simulated ? now : wallSeconds() - wallStart;
    std::vector<RequestOutput> outputs = engine.step();
    const bool ran = observed.executions != executionsBefore;
    double seconds = simulated ? (ran ? backend.lastStepSeconds(*runner) : 0.0) : wallSeconds() - wallStart - stepStart;
    now = stepStart + seconds;
    if (!ran && outputs.empty()) {
      // Nothing could be scheduled: only an arrival can change that (the engine rejects what never fits).
      if (next == requests.size()) fail("bench: the engine stalled with requests unfinished under ", setup.label());
      if (simulated) now = std::max(now, requests[next].arrival);
      else std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    for (const RequestOutput& out : outputs) {
      auto it = index.find(out.requestId);
      if (it == index.end()) continue;
      RequestRecord& r = result.requests[it->second];
      for (const CompletionOutput& c : out.completions) {
        const auto n = static_cast<int64_t>(c.tokens.size());
        if (n == 0) continue;
        r.outputTokens += n;
        if (std::isnan(r.firstToken)) r.firstToken = now;
        if (c.index == 0) {
          double& last = lastTokenTime[it->second];
          if (!std::isnan(last)) r.interTokenGaps.push_back(now - last);
          // Several tokens in one output (none in streamed sampling) arrive together.
          for (int64_t t = 1; t < n; ++t) r.interTokenGaps.push_back(0.0);
          last = now;
        }
      }
      if (out.finished) {
        r.finish = now;
        r.ok = out.message.empty();
        for (const CompletionOutput& c : out.completions)
          if (c.finishReason == FinishReason::Rejected || c.finishReason == FinishReason::Aborted) r.ok = false;
        if (!r.ok) r.error = out.message.empty() ? "aborted" : out.message;
        ++finished;
      }
    }
    if (ran) {
      StepRecord s;
      s.end = now;
      s.seconds = seconds;
      s.numSeqs = observed.lastSeqs;
      s.numTokens = observed.lastTokens;
      s.numRunningSeqs = engine.scheduler().numRunningSeqs();
      s.numWaiting = engine.scheduler().numWaiting();
      s.kv = engine.scheduler().kvUsage();
      s.hasPrompt = observed.lastShape.prefillAttention > 0 || observed.lastShape.numTokens > observed.lastSeqs;
      if (const StepCostModel* predictor = backend.predictor()) s.predictedSeconds = predictor->seconds(observed.lastShape);
      // Sharing is paging's: under a reservation policy the pages beneath the reservations are an
      // implementation detail, and each sequence's range is its own.
      if (!reservesContiguously(setup.policy)) {
        BlockStats blocks = engine.blockManager().stats();
        s.usedBlocks = blocks.usedBlocks;
        s.unsharedBlocks = blocks.unsharedBlocks;
      }
      result.steps.push_back(s);
    }
  }
  double first = requests.empty() ? 0.0 : requests.front().arrival;
  result.seconds = now - first;
  result.engine = engine.stats();
  return result;
}

RunSummary summarize(const RunResult& run) {
  RunSummary s;
  s.label = run.setup.label();
  s.rate = run.rate;
  s.numRequests = static_cast<int64_t>(run.requests.size());
  s.seconds = run.seconds;
  std::vector<double> ttft, tpot, itl;
  double normalized = 0.0, latency = 0.0;
  int64_t outputTokens = 0, promptTokens = 0;
  for (const RequestRecord& r : run.requests) {
    if (!r.ok) {
      ++s.failed;
      continue;
    }
    ++s.completed;
    const double e2e = r.finish - r.arrival;
    latency += e2e;
    normalized += e2e / static_cast<double>(std::max<int64_t>(r.expectedOutputTokens, 1));
    outputTokens += r.outputTokens;
    promptTokens += r.promptTokens;
    ttft.push_back(r.firstToken - r.arrival);
    if (r.expectedOutputTokens > 1 && r.finish > r.firstToken)
      tpot.push_back((r.finish - r.firstToken) / static_cast<double>(r.expectedOutputTokens - 1));
    itl.insert(itl.end(), r.interTokenGaps.begin(), r.interTokenGaps.end());
  }
  if (s.completed > 0) {
    s.normalizedLatency = normalized / static_cast<double>(s.completed);
    s.meanLatency = latency / static_cast<double>(s.completed);
  }
  if (s.seconds > 0) {
    s.requestsPerSecond = static_cast<double>(s.completed) / s.seconds;
    s.outputTokensPerSecond = static_cast<double>(outputTokens) / s.seconds;
    s.totalTokensPerSecond = static_cast<double>(outputTokens + promptTokens) / s.seconds;
  }
  s.ttft = percentiles(std::move(ttft));
  s.tpot = percentiles(std::move(tpot));
  s.itl = percentiles(std::move(itl));
  double time = 0.0, seqs = 0.0, tokenStates = 0.0, reservation = 0.0, internal = 0.0, external = 0.0, used = 0.0, saved = 0.0;
  for (const StepRecord& step : run.steps) {
    const double w = step.seconds;
    time += w;
    seqs += w * static_cast<double>(step.numSeqs);
    s.maxBatchSeqs = std::max(s.maxBatchSeqs, step.numSeqs);
    const double capacity = static_cast<double>(std::max<int64_t>(step.kv.capacitySlots, 1));
    tokenStates += w * static_cast<double>(step.kv.tokenSlots) / capacity;
    reservation += w * static_cast<double>(step.kv.reservedSlots) / capacity;
    internal += w * static_cast<double>(step.kv.internalFragmentation) / capacity;
    external += w * static_cast<double>(step.kv.externalFragmentation) / capacity;
    used += w * static_cast<double>(step.kv.capacitySlots - step.kv.freeSlots) / capacity;
    if (step.unsharedBlocks > 0) saved += w * (1.0 - static_cast<double>(step.usedBlocks) / static_cast<double>(step.unsharedBlocks));
  }
  if (time > 0) {
    s.meanBatchSeqs = seqs / time;
    const double notFree = tokenStates + reservation + internal + external;
    if (notFree > 0) {
      s.kvTokenStates = tokenStates / notFree;
      s.kvReservation = reservation / notFree;
      s.kvInternal = internal / notFree;
      s.kvExternal = external / notFree;
    }
    s.kvUsedFraction = used / time;
    s.sharingSaved = saved / time;
  }
  std::vector<double> promptRatios, decodeRatios;
  for (const StepRecord& step : run.steps)
    if (!std::isnan(step.predictedSeconds) && step.predictedSeconds > 0)
      (step.hasPrompt ? promptRatios : decodeRatios).push_back(step.seconds / step.predictedSeconds);
  s.stepRatioPrompt = percentiles(promptRatios).p50;
  s.stepRatioDecode = percentiles(decodeRatios).p50;
  const BlockStats& blocks = run.engine.blocks;
  s.prefixHitRate = blocks.prefixQueryTokens > 0 ? static_cast<double>(blocks.prefixHitTokens) / static_cast<double>(blocks.prefixQueryTokens) : 0.0;
  s.preemptions = run.engine.numPreemptions;
  s.swappedBlocks = run.engine.swappedOutBlocks + run.engine.swappedInBlocks;
  s.promptTokensComputed = run.engine.promptTokensComputed;
  return s;
}

}  // namespace pagedc::bench
