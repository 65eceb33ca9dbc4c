// Tests of `pagedc bench --client`: a workload driven over HTTP against an in-process `pagedc serve`
// on the default model, timed on the client side; failures recorded per request; an unreachable
// server reported.
#include <gtest/gtest.h>

#include <cmath>

#include "TestServer.h"
#include "bench/serving/HttpBenchClient.h"
#include "ir/Error.h"

namespace pagedc::bench {
namespace {

BenchRequest request(int i, double arrival, int64_t promptLen, int64_t outputLen) {
  BenchRequest r;
  r.id = "req-" + std::to_string(i);
  r.arrival = arrival;
  for (int64_t t = 0; t < promptLen; ++t) r.prompt.push_back(static_cast<TokenId>(3 + (i * 17 + t * 5) % 200));
  r.outputLen = outputLen;
  r.params.maxTokens = outputLen;
  r.params.ignoreEos = true;
  r.params.temperature = 0.0;
  return r;
}

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
  bad.prompt[1] = 1 << 30;  // outside the vocabulary
  w.requests.push_back(bad);

  ClientConfig config;
  config.baseUrl = "http://127.0.0.1:" + std::to_string(server.port());
  ClientRun run = runHttpBench(w, config);
  ASSERT_EQ(run.requests.size(), w.requests.size());
  for (size_t i = 0; i + 1 < w.requests.size(); ++i) {
    const RequestRecord& r = run.requests[i];
    const BenchRequest& q = w.requests[i];
    ASSERT_TRUE(r.ok) << r.id << ": " << r.error;
    EXPECT_EQ(r.outputTokens, q.params.n * q.outputLen) << r.id;
    EXPECT_LE(r.arrival, r.firstToken) << r.id;
    EXPECT_LE(r.firstToken, r.finish) << r.id;
    if (q.params.n == 1) {
      EXPECT_EQ(static_cast<int64_t>(r.interTokenGaps.size()), q.outputLen - 1) << r.id;
    }
  }
  const RequestRecord& failed = run.requests.back();
  EXPECT_FALSE(failed.ok);
  EXPECT_NE(failed.error.find("req-6"), std::string::npos) << failed.error;
  EXPECT_NE(failed.error.find("HTTP 400"), std::string::npos) << failed.error;
  EXPECT_GT(run.seconds, 0.15);
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

}  // namespace
}  // namespace pagedc::bench
