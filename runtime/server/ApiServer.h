// `pagedc serve`'s HTTP server: the OpenAI-compatible API (/v1/completions, /v1/chat/completions,
// /v1/models), vLLM's /tokenize and /detokenize, /health and Prometheus /metrics, over cpp-httplib.
// Generation requests go to the EngineLoop; each HTTP request holds one worker thread while it
// waits or streams. docs/SERVING.md documents the API, flags and metrics.
#pragma once

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "runtime/Engine.h"
#include "runtime/server/EngineLoop.h"
#include "runtime/server/OpenAiRequest.h"
#include "runtime/server/ServedModel.h"
#include "runtime/server/ServerMetrics.h"

namespace pagedc::server {

struct ApiServerConfig {
  std::string host = "127.0.0.1";  // the loopback interface only, unless told otherwise
  int port = 8000;  // 0: any free port (bind() returns it)
  std::optional<std::string> apiKey;  // required as "Authorization: Bearer <key>" on /v1/* when set
  size_t maxBodyBytes = size_t{4} << 20;  // larger bodies get 413
  ServerLimits limits;
  int64_t maxWaitingRequests = 1024;  // more waiting than this: 429
  int httpThreads = 512;              // each open request (waiting or streaming) holds one
  std::chrono::milliseconds shutdownGrace{10000};  // SIGTERM: how long running requests may finish
  bool logRequests = true;            // one line per request on stderr
};

class ApiServer {
public:
  // The model, engine and metrics must outlive the server; the server starts the engine thread.
  ApiServer(const ServedModel& model, Engine& engine, ApiServerConfig config);
  ~ApiServer();

  // Binds host:port; returns the port. Throws Error naming the address when it cannot.
  int bind();
  // Serves until shutdown(); returns then.
  void serve();
  // Graceful stop, callable from any thread: new requests get 503, running ones get up to the
  // grace period to finish, the rest are aborted (their clients get finish_reason "abort"), then
  // serve() returns.
  void shutdown();

  const ServerMetrics& metrics() const { return metrics_; }
  const EngineLoop& engineLoop() const { return loop_; }
  // Requests being handled (parsed, waiting or streaming) right now.
  int64_t activeRequests() const { return active_.load(); }

private:
  void routes();
  void handleGeneration(const httplib::Request& req, httplib::Response& res, Api api);
  void handleTokenize(const httplib::Request& req, httplib::Response& res);
  void handleDetokenize(const httplib::Request& req, httplib::Response& res);
  void handleModels(httplib::Response& res, const std::string* id);
  std::string newId(const char* prefix);

  // Debian's cpp-httplib 0.11.4 listens with a backlog of 5: 64 clients connecting at once would
  // see dropped SYNs and 1-3 s retries (docs/DEPENDENCIES.md). Listen again with the system's limit.
  struct Http : httplib::Server {
    void raiseBacklog() { ::listen(svr_sock_, SOMAXCONN); }
  };

  const ServedModel& model_;
  Engine& engine_;
  ApiServerConfig config_;
  ServerMetrics metrics_;
  EngineLoop loop_;
  Http http_;
  std::mutex lifecycle_;  // orders serve()'s start against shutdown()
  bool serveEntered_ = false;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> active_{0};
  std::mutex idMutex_;
  std::mt19937_64 idGenerator_;
};

}  // namespace pagedc::server
