// The benchmark's client mode: a scheduler thread sends each request at its arrival time, workers
// (one per outstanding request) stream the responses and time every token on the client's clock,
// and a sampler polls the server's /metrics for its batch size and KV use.
#include "bench/serving/HttpBenchClient.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "ir/Error.h"

namespace pagedc::bench {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// httplib's error names ("Read", "Connection") say little on their own.
std::string describe(httplib::Error error) {
  switch (error) {
  case httplib::Error::Connection: return "cannot connect";
  case httplib::Error::ConnectionTimeout: return "connecting timed out";
  case httplib::Error::Read: return "reading the response failed (the connection closed, or no data within the timeout)";
  case httplib::Error::Write: return "sending the request failed (the connection closed)";
  case httplib::Error::Canceled: return "canceled";
  default: return "HTTP client error " + httplib::to_string(error);
  }
}

httplib::Client makeClient(const std::string& baseUrl, double timeoutSeconds) {
  httplib::Client client(baseUrl);
  client.set_connection_timeout(5, 0);
  // httplib's timeouts bound each read and write, not the whole exchange: the whole-request
  // timeout is checked as the body arrives (a streaming server sends heartbeats, so a stalled
  // request still gets its timeout).
  const double bounded = std::clamp(timeoutSeconds, 0.001, 1e7);
  const auto sec = static_cast<time_t>(bounded);
  const auto usec = static_cast<time_t>((bounded - static_cast<double>(sec)) * 1e6);
  client.set_read_timeout(sec, usec);
  client.set_write_timeout(sec, usec);
  return client;
}

// The value of a sample "name value" or "name{labels} value" in Prometheus text (the first one,
// for a metric with labels), or NaN when the metric is absent.
double metricValue(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    size_t at = name.size();
    if (at < line.size() && line[at] == '{') {
      at = line.find('}', at);
      if (at == std::string::npos) continue;
      ++at;
    }
    if (at >= line.size() || (line[at] != ' ' && line[at] != '\t')) continue;  // a longer name
    const char* begin = line.c_str() + at;
    char* end = nullptr;
    const double value = std::strtod(begin, &end);
    if (end != begin) return value;
  }
  return std::nan("");
}

nlohmann::json requestBody(const BenchRequest& r, const std::string& model, bool stream) {
  nlohmann::json body = {{"model", model},         {"prompt", r.prompt},
                         {"max_tokens", r.outputLen}, {"ignore_eos", true},
                         {"temperature", r.params.temperature}, {"n", r.params.n}};
  if (r.params.bestOf) body["best_of"] = *r.params.bestOf;
  if (r.params.useBeamSearch) body["use_beam_search"] = true;
  if (r.params.seed) body["seed"] = *r.params.seed;
  if (stream) {
    body["stream"] = true;
    // The final chunk then carries usage: the exact token count, whatever the chunks held.
    body["stream_options"] = {{"include_usage", true}};
    // The sampled token's logprob only (the engine computes it for every token anyway): every token
    // then gets a chunk of its own with its token listed, even one whose text is held back until a
    // multi-byte character completes, so the client sees each token's arrival. Beam search takes
    // no logprobs and returns its hypotheses whole at the end; usage counts its tokens.
    if (!r.params.useBeamSearch) body["logprobs"] = 0;
  }
  return body;
}

// The message of an OpenAI-style error body {"error": {"message": ...}}, else the body itself.
std::string errorMessage(const std::string& body) {
  try {
    const nlohmann::json j = nlohmann::json::parse(body);
    if (j.is_object() && j.contains("error")) {
      const nlohmann::json& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
      if (e.is_string()) return e.get<std::string>();
      return e.dump();
    }
  } catch (const nlohmann::json::exception&) {
  }
  constexpr size_t kLongest = 500;
  return body.size() > kLongest ? body.substr(0, kLongest) + "..." : body;
}

// Server-sent events as they arrive: counts every choice's tokens and times those of choice 0.
class StreamParser {
public:
  StreamParser(RequestRecord& record, Clock::time_point start) : record_(record), start_(start) {}

  // False on a malformed event or an error event, with error() saying what it was.
  bool feed(const char* data, size_t size) {
    for (size_t i = 0; i < size; ++i)
      if (data[i] != '\r') buffer_.push_back(data[i]);  // "\r\n" line ends count as "\n"
    for (size_t end; (end = buffer_.find("\n\n")) != std::string::npos;) {
      const std::string event = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      if (!handle(event)) return false;
    }
    return true;
  }

  bool done() const { return done_; }
  double doneTime() const { return doneTime_; }
  // completion_tokens of the final usage chunk; -1 when the server sent none.
  int64_t usageTokens() const { return usageTokens_; }
  // When the first chunk with any choice came (the fallback first-token time for a response whose
  // chunks carried neither text nor tokens).
  double firstChoiceTime() const { return firstChoiceTime_; }
  const std::string& error() const { return error_; }

private:
  bool handle(const std::string& event) {
    // An event's data is its "data:" lines joined by newlines; comments (": keep-alive") and other
    // fields are skipped.
    std::string payload;
    bool hasData = false;
    std::istringstream in(event);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("data:", 0) != 0) continue;
      if (hasData) payload += '\n';
      payload += line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
      hasData = true;
    }
    if (!hasData) return true;
    if (done_) return true;  // nothing counts after [DONE]
    const double now = secondsSince(start_);
    if (payload == "[DONE]") {
      done_ = true;
      doneTime_ = now;
      return true;
    }
    try {
      return handleChunk(nlohmann::json::parse(payload), now);
    } catch (const nlohmann::json::exception& e) {
      constexpr size_t kLongest = 200;
      error_ = "malformed event (" + std::string(e.what()) + "): " + (payload.size() > kLongest ? payload.substr(0, kLongest) + "..." : payload);
      return false;
    }
  }

  bool handleChunk(const nlohmann::json& chunk, double now) {
    if (!chunk.is_object()) {
      error_ = "malformed event (not a JSON object): " + chunk.dump();
      return false;
    }
    if (chunk.contains("error")) {
      // The server failed the request after sending its headers (vLLM's in-stream error).
      error_ = "the server reported an error in the stream: " + errorMessage(chunk.dump());
      return false;
    }
    if (chunk.contains("usage") && chunk["usage"].is_object() && chunk["usage"].contains("completion_tokens"))
      usageTokens_ = chunk["usage"]["completion_tokens"].get<int64_t>();
    if (!chunk.contains("choices")) return true;
    for (const nlohmann::json& choice : chunk.at("choices")) {
      if (std::isnan(firstChoiceTime_)) firstChoiceTime_ = now;
      int64_t tokens = 0;
      const nlohmann::json* logprobs = choice.contains("logprobs") ? &choice["logprobs"] : nullptr;
      if (logprobs && logprobs->is_object() && logprobs->contains("tokens")) tokens = static_cast<int64_t>(logprobs->at("tokens").size());
      else if (choice.contains("text") && choice["text"].is_string() && !choice["text"].get<std::string>().empty())
        tokens = 1;  // a server that sends no logprobs: a token a chunk
      if (tokens == 0) continue;  // a finish_reason-only chunk
      record_.outputTokens += tokens;
      if (std::isnan(record_.firstToken)) record_.firstToken = now;
      if (choice.value("index", int64_t{0}) == 0) {
        if (!std::isnan(lastToken_)) record_.interTokenGaps.push_back(now - lastToken_);
        // Tokens that came together: the ones after the first arrived with it.
        for (int64_t t = 1; t < tokens; ++t) record_.interTokenGaps.push_back(0.0);
        lastToken_ = now;
      }
    }
    return true;
  }

  RequestRecord& record_;
  Clock::time_point start_;
  std::string buffer_;
  std::string error_;
  bool done_ = false;
  double doneTime_ = std::nan("");
  int64_t usageTokens_ = -1;
  double firstChoiceTime_ = std::nan("");
  double lastToken_ = std::nan("");
};

// Sends one request and fills its record (times, tokens, or why it failed). Never throws.
void sendOne(const BenchRequest& r, const ClientConfig& config, const std::string& model, Clock::time_point start, RequestRecord& record) {
  auto failWith = [&](const std::string& why) {
    record.ok = false;
    record.error = "request " + r.id + ": " + why;
    if (std::isnan(record.finish)) record.finish = secondsSince(start);
  };
  try {
    httplib::Client client = makeClient(config.baseUrl, config.timeoutSeconds);
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = requestBody(r, model, config.stream).dump();
    req.set_header("Content-Type", "application/json");
    req.set_header("Accept", config.stream ? "text/event-stream" : "application/json");

    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config.timeoutSeconds));
    StreamParser parser(record, start);
    std::string body;  // the whole body: a non-streamed response, or an error status's
    int status = 0;
    bool timedOut = false;
    bool streamFailed = false;
    req.response_handler = [&](const httplib::Response& response) {
      status = response.status;
      return true;
    };
    req.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
      if (Clock::now() > deadline) {
        timedOut = true;
        return false;
      }
      if (status != 200 || !config.stream) {
        body.append(data, size);
        return true;
      }
      if (!parser.feed(data, size)) {
        streamFailed = true;
        return false;
      }
      return true;
    };
    const httplib::Result res = client.send(req);
    const double now = secondsSince(start);
    record.finish = now;
    if (timedOut || (!res && res.error() == httplib::Error::Read && Clock::now() >= deadline)) {
      std::ostringstream why;
      why << "timed out after " << config.timeoutSeconds << " s";
      return failWith(why.str());
    }
    if (streamFailed) return failWith(parser.error());
    if (!res) return failWith(describe(res.error()) + " (" + config.baseUrl + ")");
    if (status != 200) return failWith("HTTP " + std::to_string(status) + ": " + errorMessage(body));
    if (config.stream) {
      if (!parser.done()) return failWith("the stream ended without data: [DONE]");
      record.finish = parser.doneTime();
      if (parser.usageTokens() >= 0) record.outputTokens = parser.usageTokens();
      if (std::isnan(record.firstToken) && record.outputTokens > 0)
        record.firstToken = std::isnan(parser.firstChoiceTime()) ? record.finish : parser.firstChoiceTime();
    } else {
      try {
        record.outputTokens = nlohmann::json::parse(body).at("usage").at("completion_tokens").get<int64_t>();
      } catch (const nlohmann::json::exception& e) {
        return failWith("malformed response (" + std::string(e.what()) + ")");
      }
      record.firstToken = now;
    }
    record.ok = true;
  } catch (const std::exception& e) {
    // An exception escaping a worker thread would end the process: the request fails instead.
    failWith(e.what());
  }
}

// Runs requests on worker threads: a request handed over goes to an idle worker, or to a new one
// when none is idle, so the pool grows to the most requests ever outstanding at once and no
// request waits on another's response.
class WorkerPool {
public:
  explicit WorkerPool(std::function<void(size_t)> work) : work_(std::move(work)) {}
  ~WorkerPool() { join(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Blocks while `limit` (> 0) requests are in flight; then calls admitted() (before any worker
  // can start on it) and hands request i to a worker.
  template <class Admitted>
  void submit(size_t i, int64_t limit, Admitted admitted) {
    std::unique_lock lock(mutex_);
    if (limit > 0) slotFreed_.wait(lock, [&] { return inFlight_ < limit; });
    admitted();
    ++inFlight_;
    queue_.push_back(i);
    if (static_cast<int64_t>(queue_.size()) > idle_) threads_.emplace_back([this] { loop(); });
    else workAvailable_.notify_one();
  }

  // Waits for every request handed over, and for the workers to end.
  void join() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    workAvailable_.notify_all();
    for (std::thread& t : threads_)
      if (t.joinable()) t.join();
  }

private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ++idle_;
      workAvailable_.wait(lock, [&] { return !queue_.empty() || closing_; });
      --idle_;
      if (queue_.empty()) return;  // closing, and nothing left
      const size_t i = queue_.front();
      queue_.pop_front();
      lock.unlock();
      work_(i);
      lock.lock();
      --inFlight_;
      slotFreed_.notify_all();
    }
  }

  std::function<void(size_t)> work_;
  std::mutex mutex_;
  std::condition_variable workAvailable_;
  std::condition_variable slotFreed_;
  std::deque<size_t> queue_;
  std::vector<std::thread> threads_;  // only the scheduler thread adds to it, under mutex_
  int64_t idle_ = 0;
  int64_t inFlight_ = 0;
  bool closing_ = false;
};

// Polls GET /metrics about every half second until stopped: the server's running requests and KV
// use over the run. A server without /metrics (or without these gauges) leaves no samples.
class MetricsSampler {
public:
  MetricsSampler(const std::string& baseUrl, Clock::time_point start, ClientRun& run)
      : thread_([this, baseUrl, start, &run] { loop(baseUrl, start, run); }) {}
  ~MetricsSampler() { stop(); }
  MetricsSampler(const MetricsSampler&) = delete;
  MetricsSampler& operator=(const MetricsSampler&) = delete;

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    stopped_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

private:
  void loop(const std::string& baseUrl, Clock::time_point start, ClientRun& run) {
    httplib::Client client = makeClient(baseUrl, 5.0);
    for (;;) {
      const Clock::time_point asked = Clock::now();
      if (httplib::Result res = client.Get("/metrics"); res && res->status == 200) {
        // Stamped halfway through the exchange: the server reads its gauges somewhere in it.
        const double t = std::chrono::duration<double>(asked - start).count() + std::chrono::duration<double>(Clock::now() - asked).count() / 2;
        const double running = metricValue(res->body, "pagedc:num_requests_running");
        const double kv = metricValue(res->body, "pagedc:kv_cache_usage_perc");
        if (!std::isnan(running) || !std::isnan(kv)) {
          run.sampleTimes.push_back(t);
          run.runningRequests.push_back(running);
          run.kvUsage.push_back(kv);
        }
      }
      std::unique_lock lock(mutex_);
      if (stopped_.wait_until(lock, asked + std::chrono::milliseconds(500), [&] { return stopping_; })) return;
    }
  }

  std::mutex mutex_;
  std::condition_variable stopped_;
  bool stopping_ = false;
  std::thread thread_;  // last: it starts once the members it uses exist
};

}  // namespace

ServerInfo probeServer(const std::string& baseUrl, const std::string& model) {
  httplib::Client probe = makeClient(baseUrl, 30.0);
  const httplib::Result res = probe.Get("/v1/models");
  if (!res) fail("bench client: cannot reach the server at ", baseUrl, ": ", describe(res.error()));
  if (res->status != 200) fail("bench client: GET ", baseUrl, "/v1/models answered HTTP ", res->status, ": ", errorMessage(res->body));
  ServerInfo info;
  info.model = model;
  try {
    const nlohmann::json list = nlohmann::json::parse(res->body).at("data");
    for (const auto& entry : list) {
      if (!info.model.empty() && entry.at("id").get<std::string>() != info.model) continue;
      info.model = entry.at("id").get<std::string>();
      if (entry.contains("max_model_len") && entry["max_model_len"].is_number_integer()) info.maxModelLen = entry["max_model_len"].get<int64_t>();
      return info;
    }
  } catch (const nlohmann::json::exception& e) {
    fail("bench client: ", baseUrl, "/v1/models is not a model list: ", e.what());
  }
  if (model.empty()) fail("bench client: ", baseUrl, "/v1/models lists no model");
  fail("bench client: ", baseUrl, " does not serve a model named '", model, "'");
}

ClientRun runHttpBench(const Workload& workload, const ClientConfig& config) {
  if (!(config.timeoutSeconds > 0)) fail("bench client: the request timeout must be > 0 seconds, got ", config.timeoutSeconds);
  const std::string model = probeServer(config.baseUrl, config.model).model;
  ClientRun run;
  run.requests.resize(workload.requests.size());
  for (size_t i = 0; i < workload.requests.size(); ++i) {
    const BenchRequest& r = workload.requests[i];
    RequestRecord& record = run.requests[i];
    record.id = r.id;
    record.arrival = r.arrival;
    record.promptTokens = static_cast<int64_t>(r.prompt.size());
    record.expectedOutputTokens = r.outputLen;
  }

  const Clock::time_point start = Clock::now();
  {
    MetricsSampler sampler(config.baseUrl, start, run);
    WorkerPool pool([&](size_t i) { sendOne(workload.requests[i], config, model, start, run.requests[i]); });
    // This thread is the scheduler: requests go out in workload (arrival) order, each at its time.
    for (size_t i = 0; i < workload.requests.size(); ++i) {
      const BenchRequest& r = workload.requests[i];
      std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::max(r.arrival, 0.0))));
      pool.submit(i, config.maxConcurrency, [&] {
        // A request held back by the concurrency limit arrives when it is sent (as vLLM's benchmark
        // times it): its latencies are then the server's, not the client's queue.
        if (config.maxConcurrency > 0) run.requests[i].arrival = std::max(r.arrival, secondsSince(start));
      });
    }
    pool.join();
    sampler.stop();
  }

  // First send to last response.
  double first = std::numeric_limits<double>::infinity(), last = 0.0;
  for (const RequestRecord& r : run.requests) {
    first = std::min(first, r.arrival);
    if (!std::isnan(r.finish)) last = std::max(last, r.finish);
  }
  run.seconds = run.requests.empty() ? 0.0 : std::max(0.0, last - first);
  return run;
}

}  // namespace pagedc::bench
