// The benchmark's client mode: drives a running `pagedc serve` (or any OpenAI-compatible server that
// takes token-id prompts and ignore_eos) over HTTP with a workload, each request sent at its arrival
// time, streamed, and timed on the client side (TTFT, inter-token latency, end-to-end latency).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/serving/BenchMetrics.h"
#include "bench/serving/Workload.h"

namespace pagedc::bench {

struct ClientConfig {
  std::string baseUrl = "http://127.0.0.1:8000";  // scheme, host and port
  std::string model;        // the request's "model"; empty: the first id GET /v1/models lists
  // > 0: at most this many requests in flight; later arrivals wait, and their recorded arrival is
  // when they were sent (as vLLM's benchmark times them), so latencies leave out the client's queue.
  int64_t maxConcurrency = 0;
  double timeoutSeconds = 600.0;  // per request, from its send to its last byte
  bool stream = true;             // false: TTFT is the full response's time, no inter-token gaps
};

struct ClientRun {
  std::vector<RequestRecord> requests;  // workload order
  double seconds = 0.0;                 // first send to last response
  // Server samples from GET /metrics during the run (every ~0.5 s; empty when the server has
  // none): running requests and KV blocks in use.
  std::vector<double> sampleTimes;
  std::vector<double> runningRequests;
  std::vector<double> kvUsage;  // fraction of KV blocks in use
};

// What GET /v1/models says: the model to name in requests (config's, else the first listed) and its
// max_model_len (0 when the server does not say). Throws Error naming the URL when it cannot be reached.
struct ServerInfo {
  std::string model;
  int64_t maxModelLen = 0;
};
ServerInfo probeServer(const std::string& baseUrl, const std::string& model = "");

// Sends every request of the workload as POST /v1/completions {model, prompt: [token ids],
// max_tokens: outputLen, ignore_eos: true, n / best_of / use_beam_search, temperature, stream}.
// A request that fails (connection, HTTP status, a malformed stream) is recorded with ok = false
// and why; the run goes on. Throws Error when the server cannot be reached at all (naming the URL).
ClientRun runHttpBench(const Workload& workload, const ClientConfig& config);

}  // namespace pagedc::bench
