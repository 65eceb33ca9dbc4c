// The server's Prometheus metrics (GET /metrics, text format), named as vLLM names them with a
// pagedc: prefix so existing dashboards carry over. docs/SERVING.md lists them.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "runtime/Engine.h"
#include "runtime/FinishReason.h"

namespace pagedc::server {

class ServerMetrics {
public:
  ServerMetrics();

  // After each engine step (engine thread): queue lengths, KV blocks, cumulative counters.
  void observeEngine(const Engine& engine, int64_t waitingOutsideEngine);
  void observeFirstToken(double seconds);
  void observeInterTokenGap(double seconds);
  void observeFinished(FinishReason reason, double e2eSeconds, int64_t promptTokens, int64_t generationTokens);
  void countGenerationTokens(int64_t tokens);
  void countHttpResponse(int status);

  // The Prometheus text exposition of every metric.
  std::string render() const;

private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* running_;
  prometheus::Gauge* waiting_;
  prometheus::Gauge* swapped_;
  prometheus::Gauge* kvUsage_;
  prometheus::Gauge* kvBlocksUsed_;
  prometheus::Gauge* kvBlocksFree_;
  prometheus::Gauge* kvBlocksTotal_;
  prometheus::Gauge* prefixHitRate_;
  prometheus::Counter* prefixQueries_;
  prometheus::Counter* prefixHits_;
  prometheus::Counter* preemptions_;
  prometheus::Counter* promptTokens_;
  prometheus::Counter* generationTokens_;
  prometheus::Family<prometheus::Counter>* requestSuccess_;
  prometheus::Family<prometheus::Counter>* httpResponses_;
  prometheus::Histogram* timeToFirstToken_;
  prometheus::Histogram* timePerOutputToken_;
  prometheus::Histogram* e2eLatency_;
  prometheus::Histogram* requestPromptTokens_;
  prometheus::Histogram* requestGenerationTokens_;
  // Last seen values of the engine's cumulative counts (counters only go up by the difference).
  int64_t lastPreemptions_ = 0;
  int64_t lastPrefixQueries_ = 0;
  int64_t lastPrefixHits_ = 0;
};

}  // namespace pagedc::server
