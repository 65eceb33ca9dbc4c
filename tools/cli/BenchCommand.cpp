// `pagedc bench`: the PagedAttention paper's serving evaluation on pagedc's own engine. Replays a
// workload (synthetic ShareGPT/Alpaca-like, or JSONL) with Poisson or bursty arrivals under each KV
// policy (paged and the paper's baselines) at one KV budget, at one or several request rates, on the
// CPU backend or simulated on its calibrated step cost; or drives a running `pagedc serve` over HTTP.
// `--suite paper` runs every experiment of docs/BENCHMARKS.md and rewrites it. docs/BENCHMARKS.md.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>

#include "bench/serving/BenchPlots.h"
#include "bench/serving/BenchReport.h"
#include "bench/serving/CostModelSource.h"
#include "bench/serving/HttpBenchClient.h"
#include "bench/serving/PaperSuite.h"
#include "bench/serving/RateSweep.h"
#include "bench/serving/ServingBench.h"
#include "bench/serving/Workload.h"
#include "cli/ByteSize.h"
#include "cli/Commands.h"
#include "cli/EngineOptions.h"
#include "ir/Error.h"
#include "runtime/tokenizer/Tokenizer.h"

namespace pagedc::cli {

namespace {

struct BenchOptions {
  std::string artifact;
  bench::WorkloadSpec workload;
  std::string rates = "1";
  std::string policies = "paged";
  std::string blockSizes;  // empty: the artifact's
  std::string preemption = "recompute";
  std::string prefixCaching = "on";
  int64_t kvBudgetTokens = 12288;
  std::string kvBudgetBytes;
  int64_t maxNumSeqs = 256;
  int64_t maxNumBatchedTokens = 2048;
  int64_t maxModelLen = 0;
  bool chunkedPrefill = false;
  std::string execution = "real";
  std::string costModel;
  bool recalibrate = false;
  int threads = 0;
  double latencySlo = 0.0;
  std::string jsonPath;
  std::string plotDir;
  std::string client;
  std::string clientModel;
  int64_t maxConcurrency = 0;
  std::string suite;
  std::string reportPath = "docs/BENCHMARKS.md";
  std::string figuresDir = "docs/bench";
  bool quick = false;
};

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) items.push_back(item);
  return items;
}

std::vector<double> parseRates(const std::string& text) {
  std::vector<double> rates;
  for (const std::string& item : splitList(text)) {
    if (item == "inf") {
      rates.push_back(std::numeric_limits<double>::infinity());
      continue;
    }
    try {
      size_t used = 0;
      double r = std::stod(item, &used);
      if (used != item.size() || !(r > 0)) throw std::invalid_argument(item);
      rates.push_back(r);
    } catch (const std::logic_error&) {
      fail("--rate: '", item, "' is not a positive number of requests per second (or inf)");
    }
  }
  if (rates.empty()) fail("--rate: give at least one rate");
  return rates;
}

std::vector<int64_t> parseInts(const std::string& text, const char* flag) {
  std::vector<int64_t> values;
  for (const std::string& item : splitList(text)) {
    try {
      size_t used = 0;
      int64_t v = std::stoll(item, &used);
      if (used != item.size() || v < 1) throw std::invalid_argument(item);
      values.push_back(v);
    } catch (const std::logic_error&) {
      fail(flag, ": '", item, "' is not a positive integer");
    }
  }
  return values;
}

void writeFile(const std::filesystem::path& path, const std::string& text) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path);
  if (!out) fail(path.string(), ": cannot write");
  out << text;
}

void runClientMode(const BenchOptions& o, const Artifact& artifact) {
  bench::WorkloadSpec spec = o.workload;
  spec.vocabSize = artifact.facts().vocabSize;
  // Requests must fit the served context, which the server may bound below the model's positions.
  const bench::ServerInfo server = bench::probeServer(o.client, o.clientModel);
  if (server.maxModelLen > 0) spec.maxModelLen = std::min(spec.maxModelLen, server.maxModelLen);
  std::optional<Tokenizer> tokenizer;
  if (std::filesystem::exists(std::filesystem::path(artifact.path) / "tokenizer.json"))
    tokenizer = Tokenizer::fromFile(std::filesystem::path(artifact.path) / "tokenizer.json");
  std::vector<double> rates = parseRates(o.rates);
  std::vector<bench::RunSummary> summaries;
  nlohmann::json runs = nlohmann::json::array();
  for (double rate : rates) {
    spec.rate = rate;
    bench::Workload workload = bench::makeWorkload(spec, tokenizer ? &*tokenizer : nullptr);
    bench::ClientConfig config;
    config.baseUrl = o.client;
    config.model = o.clientModel;
    config.maxConcurrency = o.maxConcurrency;
    std::cerr << "pagedc bench: " << workload.requests.size() << " requests to " << o.client << " at " << rate << " req/s\n";
    bench::ClientRun run = bench::runHttpBench(workload, config);
    bench::RunResult result;
    result.setup.policy = KvPolicy::Paged;
    result.rate = rate;
    result.requests = run.requests;
    result.seconds = run.seconds;
    bench::RunSummary s = bench::summarize(result);
    s.label = "server " + o.client;
    s.rate = rate;
    summaries.push_back(s);
    nlohmann::json j = bench::summaryToJson(s);
    j["server_samples"] = {{"time", run.sampleTimes}, {"running_requests", run.runningRequests}, {"kv_usage", run.kvUsage}};
    runs.push_back(j);
  }
  std::cout << "client mode: " << o.client << "; TTFT, TPOT and inter-token latency measured by the client, streamed\n";
  bench::printSummaryTable(std::cout, summaries);
  for (const bench::RunSummary& s : summaries)
    std::cout << "at " << s.rate << " req/s: inter-token latency p50 " << s.itl.p50 * 1e3 << " ms, p90 " << s.itl.p90 * 1e3 << " ms, p99 "
              << s.itl.p99 * 1e3 << " ms (first completion of each request)\n";
  if (!o.jsonPath.empty()) writeFile(o.jsonPath, nlohmann::json{{"mode", "client"}, {"server", o.client}, {"runs", runs}}.dump(1) + "\n");
}

void runBench(BenchOptions& o) {
  if (!o.suite.empty()) {
    if (o.suite != "paper") fail("--suite: '", o.suite, "' is not a suite (the one there is: paper)");
    bench::PaperSuiteOptions suite;
    suite.artifactPath = o.artifact;
    suite.reportPath = o.reportPath;
    suite.figuresDir = o.figuresDir;
    suite.costModelPath = o.costModel;
    suite.recalibrate = o.recalibrate;
    suite.threads = o.threads;
    suite.quick = o.quick;
    bench::runPaperSuite(suite);
    return;
  }
  Artifact artifact = loadModelForCommand(o.artifact);
  const ModelFacts& facts = artifact.facts();
  if (o.maxModelLen == 0) o.maxModelLen = facts.maxPositions > 0 ? facts.maxPositions : 2048;
  o.workload.maxModelLen = o.maxModelLen;
  if (!o.client.empty()) {
    runClientMode(o, artifact);
    return;
  }
  if (!o.kvBudgetBytes.empty())
    o.kvBudgetTokens = static_cast<int64_t>(parseByteSize(o.kvBudgetBytes, "--kv-budget") / static_cast<uint64_t>(facts.kvBytesPerToken()));
  std::unique_ptr<bench::BenchBackend> backend;
  std::optional<bench::StepCostModel> predictor;
  if (o.execution == "real") {
    // With a saved cost model, each real step is also predicted: the check of the simulation.
    if (!o.costModel.empty() && std::filesystem::exists(o.costModel)) {
      bench::CostModelRequest request;
      request.path = o.costModel;
      predictor = bench::loadOrCalibrate(artifact, request);
    }
    backend = std::make_unique<bench::RealCpuBackend>(artifact, o.threads, predictor ? &*predictor : nullptr);
  } else if (o.execution == "simulated") {
    bench::CostModelRequest request;
    request.path = o.costModel;
    request.recalibrate = o.recalibrate;
    request.threads = o.threads;
    request.calibration.maxTokens = o.maxNumBatchedTokens;
    request.calibration.maxSeqs = o.maxNumSeqs;
    backend = std::make_unique<bench::SimulatedBackend>(facts, bench::loadOrCalibrate(artifact, request));
  } else {
    fail("--execution: '", o.execution, "' is not one of real, simulated");
  }
  bench::WorkloadSpec spec = o.workload;
  spec.vocabSize = backend->facts().vocabSize;
  std::optional<Tokenizer> tokenizer;
  if (std::filesystem::exists(std::filesystem::path(artifact.path) / "tokenizer.json"))
    tokenizer = Tokenizer::fromFile(std::filesystem::path(artifact.path) / "tokenizer.json");

  std::vector<KvPolicy> policies;
  for (const std::string& name : splitList(o.policies)) policies.push_back(parseKvPolicy(name));
  if (policies.empty()) fail("--policy: give at least one policy");
  std::vector<int64_t> blockSizes = o.blockSizes.empty() ? std::vector<int64_t>{facts.blockSize} : parseInts(o.blockSizes, "--block-size");
  std::vector<PreemptionMode> modes;
  for (const std::string& m : splitList(o.preemption)) {
    if (m == "recompute") modes.push_back(PreemptionMode::Recompute);
    else if (m == "swap") modes.push_back(PreemptionMode::Swap);
    else fail("--preemption: '", m, "' is not one of recompute, swap");
  }
  std::vector<bool> caching;
  for (const std::string& c : splitList(o.prefixCaching)) {
    if (c == "on") caching.push_back(true);
    else if (c == "off") caching.push_back(false);
    else fail("--prefix-caching: '", c, "' is not one of on, off");
  }
  std::vector<bench::EngineSetup> setups;
  for (KvPolicy policy : policies)
    for (int64_t bs : (policy == KvPolicy::Paged ? blockSizes : std::vector<int64_t>{blockSizes.front()}))
      for (PreemptionMode mode : (policy == KvPolicy::Paged ? modes : std::vector<PreemptionMode>{PreemptionMode::Recompute}))
        for (bool cache : (policy == KvPolicy::Paged ? caching : std::vector<bool>{false})) {
          bench::EngineSetup s;
          s.policy = policy;
          s.kvBudgetTokens = o.kvBudgetTokens;
          s.blockSize = bs;
          s.preemption = mode;
          s.prefixCaching = cache;
          s.maxNumSeqs = o.maxNumSeqs;
          s.maxNumBatchedTokens = o.maxNumBatchedTokens;
          s.maxModelLen = o.maxModelLen;
          s.chunkedPrefill = o.chunkedPrefill;
          setups.push_back(s);
        }
  const std::vector<double> rates = parseRates(o.rates);
  std::cout << backend->describe() << "\n";
  std::cout << "KV budget " << o.kvBudgetTokens << " tokens (" << static_cast<double>(o.kvBudgetTokens * facts.kvBytesPerToken()) / (1 << 20)
            << " MiB of " << dtypeName(facts.kvDType) << " KV), max_model_len " << o.maxModelLen << "\n";
  std::vector<bench::RunSummary> summaries;
  std::map<std::string, std::vector<bench::SweepPoint>> sweeps;
  std::vector<bench::RunResult> results;
  std::string workloadDescription;
  for (const bench::EngineSetup& setup : setups) {
    for (double rate : rates) {
      spec.rate = rate;
      bench::Workload workload = bench::makeWorkload(spec, tokenizer ? &*tokenizer : nullptr);
      workloadDescription = workload.description;
      std::cerr << "pagedc bench: " << setup.label() << " at " << rate << " req/s, " << workload.requests.size() << " requests\n";
      bench::RunResult run = bench::runInProcess(workload, setup, *backend);
      run.rate = rate;
      bench::RunSummary s = bench::summarize(run);
      if (s.failed > 0)
        for (const bench::RequestRecord& r : run.requests)
          if (!r.ok) {
            std::cerr << "pagedc bench: " << s.failed << " of " << s.numRequests << " requests failed under " << setup.label() << "; the first: "
                      << r.error << "\n";
            break;
          }
      summaries.push_back(s);
      // The sustained rate is read over finite rates (inf is the capacity run).
      if (std::isfinite(rate)) sweeps[setup.label()].push_back({rate, s});
      results.push_back(std::move(run));
    }
  }
  std::cout << "workload: " << workloadDescription << "\n";
  bench::printSummaryTable(std::cout, summaries);
  if (predictor)
    for (const bench::RunSummary& s : summaries)
      std::cout << s.label << " at " << s.rate << " req/s: measured / modelled step time (median): steps with prompt tokens "
                << s.stepRatioPrompt << ", decode-only steps " << s.stepRatioDecode << "\n";
  double slo = o.latencySlo;
  const bool sweep = std::count_if(rates.begin(), rates.end(), [](double r) { return std::isfinite(r); }) > 1;
  if (sweep) {
    if (slo <= 0) {
      double lowest = std::numeric_limits<double>::infinity();
      for (const auto& s : summaries)
        if (s.completed > 0) lowest = std::min(lowest, s.normalizedLatency);
      slo = 5.0 * lowest;
    }
    std::cout << "sustained rate (normalized latency <= " << slo << " s/token):\n";
    for (const auto& [label, points] : sweeps)
      std::cout << "  " << label << ": " << bench::sustainedRate(points, slo) << " req/s"
                << (bench::sustainedRateIsLowerBound(points, slo) ? " (at least: never over within the rates swept)" : "") << "\n";
  }
  if (!o.jsonPath.empty()) {
    nlohmann::json runs = nlohmann::json::array();
    for (size_t i = 0; i < results.size(); ++i) {
      nlohmann::json j = bench::summaryToJson(summaries[i]);
      j["timeline"] = bench::timelineToJson(results[i]);
      runs.push_back(j);
    }
    nlohmann::json sustained = nlohmann::json::object();
    if (sweep)
      for (const auto& [label, points] : sweeps) sustained[label] = bench::sustainedRate(points, slo);
    writeFile(o.jsonPath, nlohmann::json{{"backend", backend->describe()}, {"workload", workloadDescription}, {"kv_budget_tokens", o.kvBudgetTokens},
                                         {"latency_slo", slo}, {"sustained_rate", sustained}, {"runs", runs}}
                              .dump(1) + "\n");
  }
  if (!o.plotDir.empty()) {
    std::filesystem::path dir(o.plotDir);
    if (sweep) writeFile(dir / "latency_vs_rate.svg", bench::latencyVsRatePlot("normalized latency vs request rate", sweeps));
    writeFile(dir / "kv_breakdown.svg", bench::memoryBreakdownPlot("KV memory breakdown", summaries));
    std::vector<const bench::RunResult*> last;
    for (size_t i = rates.size() - 1; i < results.size(); i += rates.size()) last.push_back(&results[i]);
    writeFile(dir / "batch_over_time.svg", bench::batchOverTimePlot("sequences per step over time", last));
    std::cout << "plots written to " << dir.string() << "\n";
  }
}

}  // namespace

void addBenchCommand(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Serving benchmark: workloads x KV policies x request rates (docs/BENCHMARKS.md)");
  cmd->add_option("model", o->artifact, "compiled artifact (.pgc); default: the bundled model");
  cmd->add_option("--dataset", o->workload.dataset, "sharegpt-synth, alpaca-synth, or a .jsonl file")->capture_default_str();
  cmd->add_option("--num-requests", o->workload.numRequests, "requests per run")->capture_default_str();
  cmd->add_option("--duration", o->workload.durationSeconds, "seconds of arrivals per run instead of --num-requests");
  cmd->add_option("--rate", o->rates, "request rate(s) per second, comma-separated (inf: all at once); several make a sweep")->capture_default_str();
  cmd->add_option("--burstiness", o->workload.burstiness, "gamma shape of inter-arrival times (1 = Poisson)")->capture_default_str();
  cmd->add_option("--seed", o->workload.seed, "workload seed")->capture_default_str();
  cmd->add_option("-n,--n", o->workload.parallelSamples, "parallel samples per request")->capture_default_str();
  cmd->add_option("--beam-width", o->workload.beamWidth, "beam search of this width")->capture_default_str();
  cmd->add_option("--shared-prefix", o->workload.sharedPrefixTokens, "tokens of a prefix shared by every prompt")->capture_default_str();
  cmd->add_option("--default-output-len", o->workload.defaultOutputLen, "output tokens of JSONL prompts that give none")->capture_default_str();
  cmd->add_option("--policy", o->policies, "KV policies, comma-separated: paged, orca-oracle, orca-pow2, orca-max, static")->capture_default_str();
  cmd->add_option("--block-size", o->blockSizes, "paged block size(s), comma-separated (default: the artifact's)");
  cmd->add_option("--preemption", o->preemption, "recompute, swap, or both comma-separated")->capture_default_str();
  cmd->add_option("--prefix-caching", o->prefixCaching, "on, off, or both comma-separated (paged)")->capture_default_str();
  cmd->add_option("--kv-budget-tokens", o->kvBudgetTokens, "KV budget in token slots, the same for every policy")->capture_default_str();
  cmd->add_option("--kv-budget", o->kvBudgetBytes, "KV budget in bytes (e.g. 450MiB), instead of --kv-budget-tokens");
  cmd->add_option("--max-num-seqs", o->maxNumSeqs, "sequences per step")->capture_default_str();
  cmd->add_option("--max-num-batched-tokens", o->maxNumBatchedTokens, "tokens per step")->capture_default_str();
  cmd->add_option("--max-model-len", o->maxModelLen, "prompt + output bound (default: the model's positions)");
  cmd->add_flag("--chunked-prefill", o->chunkedPrefill, "compute long prompts in chunks (off, as in the paper's systems)");
  cmd->add_option("--execution", o->execution, "real (the CPU backend, wall clock) or simulated (calibrated step cost, virtual clock)")
      ->capture_default_str();
  cmd->add_option("--cost-model", o->costModel, "simulated: the calibration file to read, or to write after calibrating");
  cmd->add_flag("--recalibrate", o->recalibrate, "simulated: calibrate even when --cost-model exists");
  cmd->add_option("--threads", o->threads, "CPU threads (0: all cores)");
  cmd->add_option("--latency-slo", o->latencySlo, "sweeps: normalized latency (s/token) a sustained rate must stay under (default 5x the lowest measured)");
  cmd->add_option("--json", o->jsonPath, "write every run's summary and timeline as JSON");
  cmd->add_option("--plot-dir", o->plotDir, "write SVG plots (latency vs rate, KV breakdown, batch size over time)");
  cmd->add_option("--client", o->client, "client mode: drive a running `pagedc serve` at this URL (http://host:port)");
  cmd->add_option("--served-model", o->clientModel, "client mode: the request's model name (default: the server's first)");
  cmd->add_option("--max-concurrency", o->maxConcurrency, "client mode: requests in flight at most (0: unbounded)");
  cmd->add_option("--suite", o->suite, "paper: run every experiment of docs/BENCHMARKS.md and rewrite it");
  cmd->add_option("--report", o->reportPath, "--suite: the report to write")->capture_default_str();
  cmd->add_option("--figures", o->figuresDir, "--suite: where its SVG figures go")->capture_default_str();
  cmd->add_flag("--quick", o->quick, "--suite: fewer requests and rates (a smoke run, not the report's figures)");
  cmd->callback([o] { runBench(*o); });
}

}  // namespace pagedc::cli
