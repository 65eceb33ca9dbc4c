// Tests of `pagedc bench --client`: a workload driven over HTTP against an in-process `pagedc serve`
// on the default model, timed on the client side (streamed and not, with a concurrency limit);
// failures recorded per request (the server's 400, malformed or unfinished streams, in-stream
// errors, timeouts) while the run goes on; an unreachable server or an unserved model reported.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "TestServer.h"
#include "bench/serving/HttpBenchClient.h"
#include "ir/Error.h"

namespace pagedc::bench {
namespace {

BenchRequest request(int i, double arrival, int64_t promptLen, int64_t outputLen) {
  BenchRequest r;
  r.id = "req-" + std::to_string(i);
  r.arrival = arrival;
  // Ids well inside the default model's vocabulary.
  for (int64_t t = 0; t < promptLen; ++t) r.prompt.push_back(static_cast<TokenId>(3 + (i * 17 + t * 5) % 200));
  r.outputLen = outputLen;
  r.params.maxTokens = outputLen;
  r.params.ignoreEos = true;
  r.params.temperature = 0.0;
  return r;
}

std::string urlOf(int port) { return "http://127.0.0.1:" + std::to_string(port); }

TEST(HttpBenchClientTest, StreamsAWorkloadAndTimesEveryToken) {
  server::testing::TestServer server;
  Workload w;
  for (int i = 0; i < 4; ++i) w.requests.push_back(request(i, 0.05 * i, 6 + i, 5 + i));
  BenchRequest parallel = request(4, 0.1, 8, 6);
  parallel.params.n = 2;
  parallel.params.temperature = 1.0;
  parallel.params.seed = 3;
  w.requests.push_back(parallel);
  BenchRequest beam = request(5, 0.15, 8, 4);
  beam.params.useBeamSearch = true;
  beam.params.n = 2;
  beam.params.bestOf = 2;
  w.requests.push_back(beam);
  BenchRequest bad = request(6, 0.2, 4, 3);
  bad.prompt[1] = 1 << 30;  // outside the vocabulary: the server answers 400
  w.requests.push_back(bad);

  ClientConfig config;
  config.baseUrl = urlOf(server.port());  // no model: the one /v1/models lists
  ClientRun run = runHttpBench(w, config);
  ASSERT_EQ(run.requests.size(), w.requests.size());
  for (size_t i = 0; i + 1 < w.requests.size(); ++i) {
    const RequestRecord& r = run.requests[i];
    const BenchRequest& q = w.requests[i];
    ASSERT_TRUE(r.ok) << r.id << ": " << r.error;
    EXPECT_EQ(r.id, q.id);
    EXPECT_EQ(r.arrival, q.arrival) << r.id;
    EXPECT_EQ(r.promptTokens, static_cast<int64_t>(q.prompt.size())) << r.id;
    EXPECT_EQ(r.expectedOutputTokens, q.outputLen) << r.id;
    EXPECT_EQ(r.outputTokens, q.params.n * q.outputLen) << r.id;
    EXPECT_LE(r.arrival, r.firstToken) << r.id;
    EXPECT_LE(r.firstToken, r.finish) << r.id;
    // Every token of a single-sample stream is timed; the gaps fit between first token and finish.
    if (q.params.n == 1) {
      ASSERT_EQ(static_cast<int64_t>(r.interTokenGaps.size()), q.outputLen - 1) << r.id;
      double sum = 0.0;
      for (double gap : r.interTokenGaps) {
        EXPECT_GE(gap, 0.0) << r.id;
        sum += gap;
      }
      EXPECT_LE(r.firstToken + sum, r.finish + 1e-9) << r.id;
    }
  }
  const RequestRecord& failed = run.requests.back();
  EXPECT_FALSE(failed.ok);
  EXPECT_NE(failed.error.find("req-6"), std::string::npos) << failed.error;
  EXPECT_NE(failed.error.find("HTTP 400"), std::string::npos) << failed.error;
  // The server's own message, not just the status.
  EXPECT_NE(failed.error.find("prompt[1] must be a token id"), std::string::npos) << failed.error;
  EXPECT_GT(run.seconds, 0.15);

  // /metrics was polled from the start: at least one sample, the series aligned and in range.
  ASSERT_FALSE(run.sampleTimes.empty());
  ASSERT_EQ(run.runningRequests.size(), run.sampleTimes.size());
  ASSERT_EQ(run.kvUsage.size(), run.sampleTimes.size());
  for (size_t i = 0; i < run.sampleTimes.size(); ++i) {
    EXPECT_GE(run.runningRequests[i], 0.0);
    EXPECT_GE(run.kvUsage[i], 0.0);
    EXPECT_LE(run.kvUsage[i], 1.0);
    if (i > 0) {
      EXPECT_GT(run.sampleTimes[i], run.sampleTimes[i - 1]);
    }
  }

  const ServerInfo info = probeServer(config.baseUrl);
  EXPECT_EQ(info.model, server.model().name);
  EXPECT_EQ(info.maxModelLen, server.model().maxModelLen);
}

TEST(HttpBenchClientTest, NonStreamedRequestsUnderAConcurrencyLimit) {
  server::testing::TestServer server;
  Workload w;
  for (int i = 0; i < 3; ++i) w.requests.push_back(request(i, 0.0, 5, 3 + i));
  ClientConfig config;
  config.baseUrl = urlOf(server.port());
  config.model = server.model().name;
  config.stream = false;
  config.maxConcurrency = 1;
  ClientRun run = runHttpBench(w, config);
  ASSERT_EQ(run.requests.size(), 3u);
  for (size_t i = 0; i < run.requests.size(); ++i) {
    const RequestRecord& r = run.requests[i];
    ASSERT_TRUE(r.ok) << r.id << ": " << r.error;
    EXPECT_EQ(r.outputTokens, w.requests[i].outputLen) << r.id;
    // Without a stream the first token is seen with the whole response.
    EXPECT_EQ(r.firstToken, r.finish) << r.id;
    EXPECT_TRUE(r.interTokenGaps.empty()) << r.id;
    EXPECT_LE(r.arrival, r.finish) << r.id;
    // One at a time: each is sent (and counted as arriving) once the one before has finished.
    if (i > 0) {
      EXPECT_GE(r.arrival, run.requests[i - 1].finish) << r.id;
    }
  }
  EXPECT_GT(run.requests.back().arrival, 0.0);
}

// A stand-in server whose completions misbehave by the prompt's first token, and that has no
// /metrics: what a real server does only when broken.
class MisbehavingServer {
public:
  MisbehavingServer() {
    server_.Get("/v1/models", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"object": "list", "data": [{"id": "fake", "object": "model"}]})", "application/json");
    });
    server_.Post("/v1/completions", [](const httplib::Request& req, httplib::Response& res) {
      const nlohmann::json body = nlohmann::json::parse(req.body);
      const int64_t kind = body.at("prompt").at(0).get<int64_t>();
      const std::string chunk = R"(data: {"choices": [{"index": 0, "text": "a", "logprobs": {"tokens": ["a"]}}]})" "\n\n";
      std::string script;
      switch (kind) {
      case 0: script = chunk + chunk + "data: {\"choices\": [], \"usage\": {\"completion_tokens\": 2}}\n\ndata: [DONE]\n\n"; break;
      case 1: script = chunk + "data: {not json\n\n"; break;
      case 2: script = chunk; break;  // ends without [DONE]
      case 3: script = chunk + R"(data: {"error": {"message": "the engine failed: out of memory", "code": 500}})" "\n\n"; break;
      default:  // answers long after the client's timeout
        std::this_thread::sleep_for(std::chrono::milliseconds(1200));
        script = chunk + "data: [DONE]\n\n";
        break;
      }
      res.set_content(script, "text/event-stream");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("cannot bind a loopback port for the stand-in server");
    // Connections wait in the backlog until the listen loop takes them.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~MisbehavingServer() {
    // stop() does nothing before the listen loop runs.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    server_.stop();
    thread_.join();
  }
  MisbehavingServer(const MisbehavingServer&) = delete;
  MisbehavingServer& operator=(const MisbehavingServer&) = delete;
  int port() const { return port_; }

private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

TEST(HttpBenchClientTest, BrokenStreamsAndTimeoutsAreFailedRequests) {
  MisbehavingServer server;
  Workload w;
  for (int kind = 0; kind < 5; ++kind) {
    BenchRequest r = request(kind, 0.0, 3, 2);
    r.prompt[0] = kind;
    w.requests.push_back(r);
  }
  ClientConfig config;
  config.baseUrl = urlOf(server.port());
  config.timeoutSeconds = 0.4;
  ClientRun run = runHttpBench(w, config);
  ASSERT_EQ(run.requests.size(), 5u);
  const RequestRecord& good = run.requests[0];
  ASSERT_TRUE(good.ok) << good.error;
  EXPECT_EQ(good.outputTokens, 2);
  EXPECT_EQ(good.interTokenGaps.size(), 1u);
  auto expectFailure = [&](size_t i, const std::string& what) {
    const RequestRecord& r = run.requests[i];
    EXPECT_FALSE(r.ok) << r.id;
    EXPECT_NE(r.error.find("request " + r.id + ": "), std::string::npos) << r.error;
    EXPECT_NE(r.error.find(what), std::string::npos) << r.error;
    EXPECT_FALSE(std::isnan(r.finish)) << r.id;
  };
  expectFailure(1, "malformed event");
  expectFailure(2, "without data: [DONE]");
  expectFailure(3, "the engine failed: out of memory");
  expectFailure(4, "timed out after 0.4 s");
  // The timed-out request was given up at its timeout, not when the server answered.
  EXPECT_LT(run.requests[4].finish, 1.0);
  // No /metrics on this server: no samples.
  EXPECT_TRUE(run.sampleTimes.empty());
  EXPECT_TRUE(run.runningRequests.empty());
  EXPECT_TRUE(run.kvUsage.empty());
}

TEST(HttpBenchClientTest, UnreachableServerIsAnError) {
  Workload w;
  w.requests.push_back(request(0, 0.0, 4, 2));
  ClientConfig config;
  config.baseUrl = "http://127.0.0.1:1";
  try {
    runHttpBench(w, config);
    FAIL() << "no error for an unreachable server";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("http://127.0.0.1:1"), std::string::npos) << e.what();
  }
}

TEST(HttpBenchClientTest, ModelTheServerDoesNotServeIsAnError) {
  MisbehavingServer server;
  Workload w;
  w.requests.push_back(request(0, 0.0, 4, 2));
  ClientConfig config;
  config.baseUrl = urlOf(server.port());
  config.model = "no-such-model";
  try {
    runHttpBench(w, config);
    FAIL() << "no error for a model the server does not list";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-model"), std::string::npos) << e.what();
  }
  EXPECT_EQ(probeServer(config.baseUrl).model, "fake");
}

}  // namespace
}  // namespace pagedc::bench
