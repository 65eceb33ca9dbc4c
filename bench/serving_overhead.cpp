// The serving layer's cost: the same greedy workload run through an Engine directly and through
// `pagedc serve`'s ApiServer over loopback HTTP (streamed and not), side by side in one process.
//
// The bundled default model (models/default) is compiled in memory, as `pagedc serve` does with no
// artifact. Each mode gets a fresh CPU runner and engine of one configuration (`pagedc serve`'s
// defaults: max_num_seqs 256, 2048 batched tokens, chunked prefill and prefix caching on, the
// detokenizer on); N requests with distinct short text prompts, greedy, max_tokens M, ignore_eos,
// so each generates exactly M tokens:
//   direct       all N added to the engine at once (prompts tokenized inside the timed region),
//                stepped to completion on this thread;
//   streamed     N client threads, one httplib::Client each, POST /v1/completions with stream: true
//                at once and read the SSE stream as it arrives (time to first token, gaps between
//                chunks as the client sees them);
//   non-streamed the same with stream: false (one JSON body per request).
// Rounds run interleaved (direct, streamed, non-streamed, direct, ...); each round's figures and
// the medians are printed, and every output text is checked against the direct run's.
//   bench_serving_overhead [--requests 64] [--max-tokens 128] [--rounds 3] [--threads N]
//                          [--http-threads 512]
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "codegen/ArtifactWriter.h"
#include "frontend/OnnxImporter.h"
#include "ir/Error.h"
#include "passes/CompilePipeline.h"
#include "runtime/Artifact.h"
#include "runtime/BlockPool.h"
#include "runtime/Engine.h"
#include "runtime/GenerationDefaults.h"
#include "runtime/cpu/CpuModelRunner.h"
#include "runtime/server/ApiServer.h"
#include "runtime/server/ServedModel.h"
#include "runtime/tokenizer/TokenizerDetokenizer.h"

using namespace pagedc;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point from, Clock::time_point to) { return std::chrono::duration<double>(to - from).count(); }

std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// Nearest rank; 0 for no samples.
double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n == 0 ? 0 : n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// The default model compiled as `pagedc compile` would, into a temporary artifact removed at exit.
Artifact compileDefaultModel() {
  const fs::path onnx = fs::path(PAGEDC_SOURCE_DIR) / "models" / "default" / "model.onnx";
  auto graph = importOnnx(onnx.string());
  CompileResult compiled = compileGraph(*graph, {});
  ArtifactContents contents;
  contents.sourceModel = onnx.string();
  contents.facts = compiled.facts;
  contents.opCountsBefore = compiled.opCountsBefore;
  contents.opCountsAfter = compiled.opCountsAfter;
  static fs::path dir = fs::temp_directory_path() / ("pagedc_bench_serving_" + std::to_string(::getpid()) + ".pgc");
  writeArtifact(*graph, contents, dir.string());
  std::atexit([] {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  });
  return loadArtifact(dir.string());
}

struct Options {
  int requests = 64;
  int64_t maxTokens = 128;
  int rounds = 3;
  int threads = 0;  // 0: every core
  int httpThreads = 512;
};

// One runner and engine, configured as `pagedc serve` configures them by default (tools/cli/EngineOptions).
struct EngineSet {
  std::unique_ptr<cpu::CpuModelRunner> runner;
  std::unique_ptr<Engine> engine;
};

EngineSet makeEngine(const Artifact& artifact, const server::ServedModel& model, int threads) {
  const ModelFacts& facts = artifact.facts();
  constexpr int64_t kMaxNumSeqs = 256, kMaxNumBatchedTokens = 2048;
  cpu::CpuRunnerConfig config;
  int64_t modelLen = facts.maxPositions > 0 ? facts.maxPositions : 2048;
  if (auto trained = readGenerationDefaults(artifact.path).maxPositionEmbeddings) modelLen = std::min(modelLen, *trained);
  config.maxModelLen = modelLen;
  const int64_t usable = kMaxNumSeqs * ((config.maxModelLen + facts.blockSize - 1) / facts.blockSize);
  config.numDeviceBlocks = std::min(numBlocksForBudget(int64_t{4} << 30, facts), usable);
  config.numHostBlocks = numBlocksForBudget(int64_t{1} << 30, facts);
  config.maxNumBatchedTokens = kMaxNumBatchedTokens;
  config.maxNumSeqs = kMaxNumSeqs;
  config.threads = threads;
  EngineSet set;
  set.runner = std::make_unique<cpu::CpuModelRunner>(artifact, config);
  EngineConfig engineConfig;
  engineConfig.scheduler.maxNumBatchedTokens = kMaxNumBatchedTokens;
  engineConfig.scheduler.maxNumSeqs = kMaxNumSeqs;
  engineConfig.scheduler.maxModelLen = config.maxModelLen;
  engineConfig.detokenize = makeDetokenizer(*model.tokenizer);
  set.engine = std::make_unique<Engine>(*set.runner, engineConfig);
  return set;
}

// Distinct short prompts: a different opening and subject each, and the request's number.
std::vector<std::string> makePrompts(int count) {
  static const char* const kOpenings[] = {"Once upon a time", "In the morning", "Long ago", "Every day", "At the end of the road",
                                          "Yesterday", "In a small town", "On a rainy night"};
  static const char* const kSubjects[] = {"a little girl", "the old dog", "a brave knight", "two friends", "the baker",
                                          "a curious cat", "the teacher", "a tiny bird"};
  std::vector<std::string> prompts;
  for (int i = 0; i < count; ++i)
    prompts.push_back(std::string(kOpenings[i % 8]) + ", " + kSubjects[(i / 8 + i) % 8] + " number " + std::to_string(i) + " wanted to");
  return prompts;
}

// One mode's run: the figures the table reports, and each request's text (by prompt index).
struct RunResult {
  double wall = 0;
  int64_t tokens = 0;        // generated, as counted by the engine (direct) or the usage (HTTP)
  std::vector<double> ttft;  // per request: send (or addRequest) to the first text
  std::vector<double> gaps;  // between consecutive text deliveries of a request
  std::vector<double> latency;  // per request: send to the whole response
  int64_t engineSteps = 0;
  std::vector<std::string> texts;
  int failures = 0;
  std::string firstError;
  double tokensPerSecond() const { return wall > 0 ? static_cast<double>(tokens) / wall : 0; }
};

SamplingParams greedyParams(const server::ServedModel& model, int64_t maxTokens) {
  SamplingParams p;
  p.temperature = 0.0;
  p.maxTokens = maxTokens;
  p.ignoreEos = true;
  p.eosTokenIds = model.eosTokenIds;  // as the server fills them in
  return p;
}

RunResult runDirectHere(const Artifact& artifact, const server::ServedModel& model, const std::vector<std::string>& prompts, const Options& o) {
  EngineSet set = makeEngine(artifact, model, o.threads);
  Engine& engine = *set.engine;
  const SamplingParams params = greedyParams(model, o.maxTokens);
  const size_t n = prompts.size();
  std::map<RequestId, size_t> index;
  std::vector<RequestOutput> merged(n);
  std::vector<std::optional<Clock::time_point>> last(n);
  RunResult r;
  r.ttft.assign(n, 0);
  r.latency.assign(n, 0);
  const Clock::time_point start = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    const RequestId id = "direct-" + std::to_string(i);
    index[id] = i;
    std::vector<int32_t> ids = model.tokenizer->encode(prompts[i], true);
    engine.addRequest(id, std::vector<TokenId>(ids.begin(), ids.end()), params);
  }
  while (engine.hasUnfinished()) {
    std::vector<RequestOutput> outputs = engine.step();
    const Clock::time_point now = Clock::now();
    for (const RequestOutput& out : outputs) {
      const size_t i = index.at(out.requestId);
      bool hasText = false;
      for (const CompletionOutput& c : out.completions) hasText = hasText || !c.text.empty();
      if (hasText) {
        if (!last[i]) r.ttft[i] = seconds(start, now);
        else r.gaps.push_back(seconds(*last[i], now));
        last[i] = now;
      }
      if (out.finished) r.latency[i] = seconds(start, now);
      merged[i].append(out);
    }
  }
  r.wall = seconds(start, Clock::now());
  r.engineSteps = engine.stats().numSteps;
  for (size_t i = 0; i < n; ++i) {
    const RequestOutput& out = merged[i];
    if (out.completions.size() != 1 || out.completions[0].finishReason != FinishReason::Length) {
      ++r.failures;
      if (r.firstError.empty()) r.firstError = "request " + std::to_string(i) + " did not finish by length";
    }
    r.texts.push_back(out.completions.empty() ? std::string() : out.completions[0].text);
    r.tokens += out.completions.empty() ? 0 : static_cast<int64_t>(out.completions[0].tokens.size());
  }
  return r;
}

// The direct run on a thread of its own, as the server's EngineLoop runs the engine, so both runs
// drive OpenMP from a thread that is not the process's first. Run on the main thread instead, on a
// machine whose cores other processes share, steps stalled for ~300 ms at a time with most samples
// in libgomp's spin-waits (docs/PERF.md, "Serving overhead"); OMP_WAIT_POLICY=passive or a thread of
// its own avoided it.
RunResult runDirect(const Artifact& artifact, const server::ServedModel& model, const std::vector<std::string>& prompts, const Options& o) {
  RunResult result;
  std::exception_ptr error;
  std::thread engineThread([&] {
    try {
      result = runDirectHere(artifact, model, prompts, o);
    } catch (...) {
      error = std::current_exception();
    }
  });
  engineThread.join();
  if (error) std::rethrow_exception(error);
  return result;
}

// A fresh engine behind a fresh ApiServer on an ephemeral loopback port, serving on its own thread.
class Server {
public:
  Server(const Artifact& artifact, const server::ServedModel& model, const Options& o) : set_(makeEngine(artifact, model, o.threads)) {
    server::ApiServerConfig config;
    config.port = 0;
    config.logRequests = false;
    config.httpThreads = o.httpThreads;
    api_ = std::make_unique<server::ApiServer>(model, *set_.engine, config);
    port_ = api_->bind();
    thread_ = std::thread([this] { api_->serve(); });
  }
  ~Server() {
    api_->shutdown();
    thread_.join();
    api_.reset();
  }
  int port() const { return port_; }
  int64_t engineSteps() const { return api_->engineLoop().stats().numSteps; }

private:
  EngineSet set_;
  std::unique_ptr<server::ApiServer> api_;
  std::thread thread_;
  int port_ = 0;
};

struct ClientRecord {
  Clock::time_point sent;
  Clock::time_point done;
  std::string raw;  // the streamed body as received, or the JSON body
  std::vector<std::pair<size_t, Clock::time_point>> arrivals;  // (bytes received so far, when)
  int status = 0;
  std::string error;
};

// The "data:" events of an SSE body with the time each was complete; comments are skipped.
std::vector<std::pair<std::string, Clock::time_point>> sseEvents(const ClientRecord& c) {
  std::vector<std::pair<std::string, Clock::time_point>> events;
  size_t at = 0, arrival = 0;
  while (at < c.raw.size()) {
    const size_t end = c.raw.find("\n\n", at);
    if (end == std::string::npos) throw std::runtime_error("unterminated SSE event");
    while (arrival + 1 < c.arrivals.size() && c.arrivals[arrival].first < end + 2) ++arrival;
    const std::string event = c.raw.substr(at, end - at);
    at = end + 2;
    if (event.rfind(":", 0) == 0) continue;
    if (event.rfind("data: ", 0) != 0) throw std::runtime_error("not an SSE data event: " + event);
    events.emplace_back(event.substr(6), c.arrivals[arrival].second);
  }
  return events;
}

RunResult runHttp(const Artifact& artifact, const server::ServedModel& model, const std::vector<std::string>& prompts, const Options& o,
                  bool stream) {
  Server server(artifact, model, o);
  const size_t n = prompts.size();
  std::vector<ClientRecord> records(n);
  std::latch ready(static_cast<std::ptrdiff_t>(n)), go(1);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < n; ++i) {
    clients.emplace_back([&, i] {
      ClientRecord& rec = records[i];
      httplib::Client client("127.0.0.1", server.port());
      client.set_read_timeout(600);
      json body = {{"prompt", prompts[i]}, {"max_tokens", o.maxTokens}, {"temperature", 0}, {"ignore_eos", true}};
      if (stream) {
        body["stream"] = true;
        body["stream_options"] = {{"include_usage", true}};
      }
      httplib::Request req;
      req.method = "POST";
      req.path = "/v1/completions";
      req.body = body.dump();
      req.set_header("Content-Type", "application/json");
      if (stream)
        req.content_receiver = [&rec](const char* data, size_t size, uint64_t, uint64_t) {
          const Clock::time_point now = Clock::now();
          rec.raw.append(data, size);
          rec.arrivals.emplace_back(rec.raw.size(), now);
          return true;
        };
      ready.count_down();
      go.wait();
      rec.sent = Clock::now();
      httplib::Result res = client.send(req);
      rec.done = Clock::now();
      if (!res) {
        rec.error = httplib::to_string(res.error());
        return;
      }
      rec.status = res->status;
      if (!stream) rec.raw = res->body;
    });
  }
  ready.wait();
  const Clock::time_point start = Clock::now();
  go.count_down();
  for (std::thread& t : clients) t.join();
  RunResult r;
  r.wall = seconds(start, Clock::now());
  r.engineSteps = server.engineSteps();
  r.texts.assign(n, "");
  auto failed = [&r](size_t i, const std::string& why) {
    ++r.failures;
    if (r.firstError.empty()) r.firstError = "request " + std::to_string(i) + ": " + why;
  };
  for (size_t i = 0; i < n; ++i) {
    const ClientRecord& c = records[i];
    if (!c.error.empty()) {
      failed(i, "no response: " + c.error);
      continue;
    }
    if (c.status != 200) {
      failed(i, "status " + std::to_string(c.status) + ": " + c.raw.substr(0, 300));
      continue;
    }
    r.latency.push_back(seconds(c.sent, c.done));
    try {
      int64_t completionTokens = -1;
      std::string finish;
      if (!stream) {
        json reply = json::parse(c.raw);
        r.texts[i] = reply["choices"][0]["text"].get<std::string>();
        if (!reply["choices"][0]["finish_reason"].is_null()) finish = reply["choices"][0]["finish_reason"];
        completionTokens = reply["usage"]["completion_tokens"];
        r.ttft.push_back(seconds(c.sent, c.done));  // the first token comes with the last
      } else {
        auto events = sseEvents(c);
        if (events.empty() || events.back().first != "[DONE]") throw std::runtime_error("the stream does not end with [DONE]");
        std::optional<Clock::time_point> last;
        for (size_t e = 0; e + 1 < events.size(); ++e) {
          json chunk = json::parse(events[e].first);
          if (chunk.contains("error")) throw std::runtime_error("error in stream: " + chunk.dump());
          if (chunk.contains("usage") && !chunk["usage"].is_null()) completionTokens = chunk["usage"]["completion_tokens"];
          for (const json& choice : chunk["choices"]) {
            const std::string text = choice["text"];
            if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
            if (text.empty()) continue;
            r.texts[i] += text;
            const Clock::time_point when = events[e].second;
            if (!last) r.ttft.push_back(seconds(c.sent, when));
            else r.gaps.push_back(seconds(*last, when));
            last = when;
          }
        }
      }
      if (finish != "length") failed(i, "finish_reason " + finish + ", expected length");
      if (completionTokens != o.maxTokens) failed(i, "completion_tokens " + std::to_string(completionTokens));
      r.tokens += std::max<int64_t>(completionTokens, 0);
    } catch (const std::exception& e) {
      failed(i, e.what());
    }
  }
  return r;
}

// Requests whose text differs from the direct run's.
int mismatches(const RunResult& direct, const RunResult& other, std::string& first) {
  int count = 0;
  for (size_t i = 0; i < direct.texts.size(); ++i)
    if (direct.texts[i] != other.texts[i]) {
      if (count++ == 0) first = "request " + std::to_string(i) + ": direct \"" + direct.texts[i].substr(0, 80) + "\" vs \"" + other.texts[i].substr(0, 80) + "\"";
    }
  return count;
}

double ms(double s) { return s * 1e3; }

void printDetail(const char* mode, const RunResult& r) {
  char gaps[64] = "gap -";
  if (!r.gaps.empty()) std::snprintf(gaps, sizeof gaps, "gap p50 %6.2f p99 %6.2f ms", ms(percentile(r.gaps, 0.5)), ms(percentile(r.gaps, 0.99)));
  std::printf("  %-12s wall %7.3f s  %8.1f tok/s  steps %4lld  TTFT p50 %7.1f p99 %7.1f ms  %s  latency p50 %7.1f p99 %7.1f ms%s\n", mode,
              r.wall, r.tokensPerSecond(), static_cast<long long>(r.engineSteps), ms(percentile(r.ttft, 0.5)), ms(percentile(r.ttft, 0.99)), gaps,
              ms(percentile(r.latency, 0.5)), ms(percentile(r.latency, 0.99)),
              r.failures ? ("  FAILURES " + std::to_string(r.failures) + " (" + r.firstError + ")").c_str() : "");
}

}  // namespace

int main(int argc, char** argv) try {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::printf("usage: %s [--requests 64] [--max-tokens 128] [--rounds 3] [--threads N (0: every core)] [--http-threads 512]\n", argv[0]);
      return 0;
    }
    if (i + 1 >= argc) fail("flag ", flag, " needs a value");
    const std::string value = argv[++i];
    if (flag == "--requests") o.requests = std::stoi(value);
    else if (flag == "--max-tokens") o.maxTokens = std::stoll(value);
    else if (flag == "--rounds") o.rounds = std::stoi(value);
    else if (flag == "--threads") o.threads = std::stoi(value);
    else if (flag == "--http-threads") o.httpThreads = std::stoi(value);
    else fail("unknown flag ", flag);
  }
  if (o.requests < 1 || o.maxTokens < 1 || o.rounds < 1 || o.threads < 0) fail("--requests, --max-tokens and --rounds must be positive");
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  if (o.threads == 0) o.threads = cores;

  const Clock::time_point compileStart = Clock::now();
  Artifact artifact = compileDefaultModel();
  std::printf("model: models/default compiled in memory in %.1f s (%lld layers, hidden %lld, vocab %lld)\n", seconds(compileStart, Clock::now()),
              static_cast<long long>(artifact.facts().numLayers), static_cast<long long>(artifact.facts().hiddenSize),
              static_cast<long long>(artifact.facts().vocabSize));
  server::ServedModel model = server::ServedModel::load(artifact.path, "default", artifact.facts().vocabSize, 0);
  if (!model.tokenizer) fail("the default model has no tokenizer.json");
  {
    EngineSet probe = makeEngine(artifact, model, o.threads);
    model.maxModelLen = probe.engine->scheduler().config().maxModelLen;
  }
  const std::vector<std::string> prompts = makePrompts(o.requests);
  size_t longest = 0;
  for (const std::string& p : prompts) longest = std::max(longest, model.tokenizer->encode(p, true).size());
  if (static_cast<int64_t>(longest) + o.maxTokens > model.maxModelLen)
    fail("the longest prompt (", longest, " tokens) + --max-tokens ", o.maxTokens, " exceeds max_model_len ", model.maxModelLen);
  std::printf("workload: %d requests, prompts of up to %zu tokens, greedy, max_tokens %lld, ignore_eos; engine threads %d of %d cores; "
              "http threads %d\n",
              o.requests, longest, static_cast<long long>(o.maxTokens), o.threads, cores, o.httpThreads);
  std::printf("load average at start: %s\n", loadAverage().c_str());

  // Warm-up (not reported): faults the weights in and starts the thread pools.
  {
    Options warm = o;
    warm.maxTokens = 8;
    runDirect(artifact, model, prompts, warm);
  }

  struct Round {
    RunResult direct, streamed, plain;
  };
  std::vector<Round> rounds;
  int textMismatches = 0;
  std::string firstMismatch;
  for (int round = 0; round < o.rounds; ++round) {
    Round r;
    r.direct = runDirect(artifact, model, prompts, o);
    r.streamed = runHttp(artifact, model, prompts, o, true);
    r.plain = runHttp(artifact, model, prompts, o, false);
    std::printf("round %d (load average %s):\n", round + 1, loadAverage().c_str());
    printDetail("direct", r.direct);
    printDetail("streamed", r.streamed);
    printDetail("non-streamed", r.plain);
    std::string first;
    const int a = mismatches(r.direct, r.streamed, first);
    if (a && firstMismatch.empty()) firstMismatch = "streamed " + first;
    const int b = mismatches(r.direct, r.plain, first);
    if (b && firstMismatch.empty()) firstMismatch = "non-streamed " + first;
    textMismatches += a + b;
    if (round > 0) {
      const int c = mismatches(rounds[0].direct, r.direct, first);
      if (c && firstMismatch.empty()) firstMismatch = "direct round " + std::to_string(round + 1) + " vs round 1 " + first;
      textMismatches += c;
    }
    rounds.push_back(std::move(r));
    std::fflush(stdout);
  }

  std::printf("\n| round | direct tok/s | HTTP streamed tok/s | streamed / direct | HTTP non-streamed tok/s | non-streamed / direct |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  std::vector<double> d, s, p, sr, pr;
  for (size_t i = 0; i < rounds.size(); ++i) {
    const double dt = rounds[i].direct.tokensPerSecond(), st = rounds[i].streamed.tokensPerSecond(), pt = rounds[i].plain.tokensPerSecond();
    d.push_back(dt), s.push_back(st), p.push_back(pt), sr.push_back(st / dt), pr.push_back(pt / dt);
    std::printf("| %zu | %.0f | %.0f | %.2f | %.0f | %.2f |\n", i + 1, dt, st, st / dt, pt, pt / dt);
  }
  std::printf("| median | %.0f | %.0f | %.2f | %.0f | %.2f |\n", median(d), median(s), median(sr), median(p), median(pr));

  auto med = [&](auto field) {
    std::vector<double> values;
    for (const Round& r : rounds) values.push_back(field(r));
    return median(values);
  };
  std::printf("\n| median of rounds | wall s | engine steps | TTFT p50 ms | TTFT p99 ms | gap p50 ms | gap p99 ms | latency p50 ms | latency p99 ms |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  auto row = [&](const char* name, RunResult Round::*mode, bool hasGaps) {
    auto of = [&](auto f) { return med([&](const Round& r) { return f(r.*mode); }); };
    std::printf("| %s | %.3f | %.0f | %.1f | %.1f | ", name, of([](const RunResult& x) { return x.wall; }),
                of([](const RunResult& x) { return static_cast<double>(x.engineSteps); }),
                ms(of([](const RunResult& x) { return percentile(x.ttft, 0.5); })), ms(of([](const RunResult& x) { return percentile(x.ttft, 0.99); })));
    if (hasGaps)
      std::printf("%.2f | %.2f | ", ms(of([](const RunResult& x) { return percentile(x.gaps, 0.5); })),
                  ms(of([](const RunResult& x) { return percentile(x.gaps, 0.99); })));
    else
      std::printf("- | - | ");
    std::printf("%.1f | %.1f |\n", ms(of([](const RunResult& x) { return percentile(x.latency, 0.5); })),
                ms(of([](const RunResult& x) { return percentile(x.latency, 0.99); })));
  };
  row("direct (engine)", &Round::direct, true);
  row("HTTP streamed (client)", &Round::streamed, true);
  row("HTTP non-streamed (client)", &Round::plain, false);

  int failures = 0;
  for (const Round& r : rounds) failures += r.direct.failures + r.streamed.failures + r.plain.failures;
  std::printf("\noutputs: %s\n", textMismatches == 0 ? "identical (every request's text, direct = streamed = non-streamed, every round)"
                                                       : ("MISMATCH in " + std::to_string(textMismatches) + " request texts; first: " + firstMismatch).c_str());
  std::printf("load average at end: %s\n", loadAverage().c_str());
  return textMismatches == 0 && failures == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_serving_overhead: %s\n", e.what());
  return 1;
}
