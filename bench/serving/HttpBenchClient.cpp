#include "bench/serving/HttpBenchClient.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "ir/Error.h"

namespace pagedc::bench {

namespace {

using Clock = std::chrono::steady_clock;


httplib::Client makeClient(const std::string& baseUrl, double timeoutSeconds) {
  httplib::Client client(baseUrl);
  client.set_connection_timeout(5, 0);
  const auto seconds = static_cast<time_t>(std::ceil(timeoutSeconds));
  client.set_read_timeout(seconds, 0);
  client.set_write_timeout(seconds, 0);
  return client;
}

// The value of a metric line "name value" (no labels) in Prometheus text, or NaN.
double metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    const size_t rest = name.size();
    if (rest < line.size() && line[rest] != ' ' && line[rest] != '{') continue;
    const size_t space = line.rfind(' ');
    try {
      return std::stod(line.substr(space + 1));
    } catch (const std::logic_error&) {
      return std::nan("");
    }
  }
  return std::nan("");
}

nlohmann::json requestBody(const BenchRequest& r, const std::string& model, bool stream) {
  nlohmann::json body = {{"model", model}, {"prompt", r.prompt}, {"max_tokens", r.outputLen}, {"ignore_eos", true},
                         {"temperature", r.params.temperature}, {"n", r.params.n}};
  if (r.params.bestOf) body["best_of"] = *r.params.bestOf;
  if (r.params.useBeamSearch) body["use_beam_search"] = true;
  if (r.params.seed) body["seed"] = *r.params.seed;
  if (stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    // The sampled token's logprob only: it makes every token produce a chunk (a token whose text is
    // not complete yet would otherwise be held back), so the client sees each token's arrival. Beam
    // search returns its hypotheses whole at the end and takes no logprobs; usage counts its tokens.
    if (!r.params.useBeamSearch) body["logprobs"] = 0;
  }
  return body;
}

// Parses server-sent events as they arrive and times the tokens.
class StreamParser {
public:
  StreamParser(RequestRecord& record, Clock::time_point start) : record_(record), start_(start) {}

  // False on a malformed event (recorded as the request's error).
  bool feed(const char* data, size_t size) {
    buffer_.append(data, size);
    for (size_t end; (end = buffer_.find("\n\n")) != std::string::npos;) {
      std::string event = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      if (!handle(event)) return false;
    }
    return true;
  }
  bool done() const { return done_; }
  int64_t usageTokens() const { return usageTokens_; }

private:
  bool handle(const std::string& event) {
    const double now = std::chrono::duration<double>(Clock::now() - start_).count();
    std::istringstream in(event);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.rfind("data:", 0) != 0) continue;
      std::string payload = line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
      if (payload == "[DONE]") {
        done_ = true;
        continue;
      }
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(payload);
      } catch (const nlohmann::json::exception& e) {
        record_.error = "malformed event: " + std::string(e.what());
        return false;
      }
      if (j.contains("error")) {
        record_.error = "server error in stream: " + j["error"].dump();
        return false;
      }
      if (j.contains("usage") && j["usage"].is_object() && j["usage"].contains("completion_tokens"))
        usageTokens_ = j["usage"]["completion_tokens"].get<int64_t>();
      if (!j.contains("choices") || !j["choices"].is_array()) continue;
      for (const auto& c : j["choices"]) {
        int64_t tokens = 0;
        if (c.contains("logprobs") && c["logprobs"].is_object() && c["logprobs"].contains("tokens"))
          tokens = static_cast<int64_t>(c["logprobs"]["tokens"].size());
        else if (c.contains("text") && c["text"].is_string() && !c["text"].get<std::string>().empty())
          tokens = 1;
        if (tokens == 0) continue;
        record_.outputTokens += tokens;
        if (std::isnan(record_.firstToken)) record_.firstToken = now;
        if (c.value("index", 0) == 0) {
          if (!std::isnan(lastToken_)) record_.interTokenGaps.push_back(now - lastToken_);
          for (int64_t t = 1; t < tokens; ++t) record_.interTokenGaps.push_back(0.0);
          lastToken_ = now;
        }
      }
    }
    return true;
  }

  RequestRecord& record_;
  Clock::time_point start_;
  std::string buffer_;
  bool done_ = false;
  int64_t usageTokens_ = -1;
  double lastToken_ = std::nan("");
};

void sendOne(const BenchRequest& r, const ClientConfig& config, const std::string& model, Clock::time_point start, RequestRecord& record) {
  httplib::Client client = makeClient(config.baseUrl, config.timeoutSeconds);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = requestBody(r, model, config.stream).dump();
  req.set_header("Content-Type", "application/json");
  StreamParser parser(record, start);
  std::string body;
  bool streamFailed = false;
  int status = 0;
  req.response_handler = [&](const httplib::Response& response) {
    status = response.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
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
  httplib::Result res = client.send(req);
  const double now = std::chrono::duration<double>(Clock::now() - start).count();
  record.finish = now;
  if (streamFailed) {
    record.error = "request " + r.id + ": " + record.error;
    return;
  }
  if (!res) {
    record.error = "request " + r.id + ": " + httplib::to_string(res.error());
    return;
  }
  if (status != 200) {
    std::string message = body;
    try {
      auto j = nlohmann::json::parse(body);
      if (j.contains("error") && j["error"].contains("message")) message = j["error"]["message"].get<std::string>();
    } catch (const nlohmann::json::exception&) {
    }
    record.error = "request " + r.id + ": HTTP " + std::to_string(status) + ": " + message;
    return;
  }
  if (config.stream) {
    if (!parser.done()) {
      record.error = "request " + r.id + ": the stream ended without [DONE]";
      return;
    }
    if (parser.usageTokens() >= 0) record.outputTokens = parser.usageTokens();
  } else {
    try {
      auto j = nlohmann::json::parse(body);
      record.outputTokens = j.at("usage").at("completion_tokens").get<int64_t>();
    } catch (const nlohmann::json::exception& e) {
      record.error = "request " + r.id + ": malformed response: " + e.what();
      return;
    }
    record.firstToken = now;
  }
  record.ok = true;
}

}  // namespace

ServerInfo probeServer(const std::string& baseUrl, const std::string& model) {
  httplib::Client probe = makeClient(baseUrl, 30);
  httplib::Result res = probe.Get("/v1/models");
  if (!res) fail("bench client: cannot reach ", baseUrl, " (", httplib::to_string(res.error()), ")");
  if (res->status != 200) fail("bench client: GET ", baseUrl, "/v1/models answered HTTP ", res->status);
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
  const std::string model = probeServer(config.baseUrl, config.model).model;
  ClientRun run;
  run.requests.resize(workload.requests.size());
  const Clock::time_point start = Clock::now();
  std::atomic<bool> finished{false};
  // /metrics sampling, every half second, for the server-side batch size and KV use.
  std::mutex samplesMutex;
  std::thread sampler([&] {
    httplib::Client client = makeClient(config.baseUrl, 5);
    while (!finished.load()) {
      httplib::Result res = client.Get("/metrics");
      if (res && res->status == 200) {
        const double t = std::chrono::duration<double>(Clock::now() - start).count();
        const double running = metric(res->body, "pagedc:num_requests_running");
        const double kv = metric(res->body, "pagedc:kv_cache_usage_perc");
        if (!std::isnan(running)) {
          std::lock_guard lock(samplesMutex);
          run.sampleTimes.push_back(t);
          run.runningRequests.push_back(running);
          run.kvUsage.push_back(kv);
        }
      }
      for (int i = 0; i < 10 && !finished.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::mutex inFlightMutex;
  std::condition_variable inFlightChanged;
  int64_t inFlight = 0;
  std::vector<std::thread> workers;
  for (size_t i = 0; i < workload.requests.size(); ++i) {
    const BenchRequest& r = workload.requests[i];
    RequestRecord& record = run.requests[i];
    record.id = r.id;
    record.arrival = r.arrival;
    record.promptTokens = static_cast<int64_t>(r.prompt.size());
    record.expectedOutputTokens = r.outputLen;
    std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(r.arrival)));
    if (config.maxConcurrency > 0) {
      std::unique_lock lock(inFlightMutex);
      inFlightChanged.wait(lock, [&] { return inFlight < config.maxConcurrency; });
    }
    {
      std::lock_guard lock(inFlightMutex);
      ++inFlight;
    }
    workers.emplace_back([&, i] {
      sendOne(workload.requests[i], config, model, start, run.requests[i]);
      std::lock_guard lock(inFlightMutex);
      --inFlight;
      inFlightChanged.notify_all();
    });
  }
  for (std::thread& t : workers) t.join();
  finished = true;
  sampler.join();
  double last = 0.0;
  for (const RequestRecord& r : run.requests) last = std::max(last, std::isnan(r.finish) ? 0.0 : r.finish);
  run.seconds = last - (workload.requests.empty() ? 0.0 : workload.requests.front().arrival);
  return run;
}

}  // namespace pagedc::bench
