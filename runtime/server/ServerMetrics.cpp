// Prometheus metrics through prometheus-cpp's registry and text serializer.
#include "runtime/server/ServerMetrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace pagedc::server {

namespace {
prometheus::Gauge* gauge(prometheus::Registry& r, const char* name, const char* help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}
prometheus::Counter* counter(prometheus::Registry& r, const char* name, const char* help) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}
prometheus::Histogram* histogram(prometheus::Registry& r, const char* name, const char* help, prometheus::Histogram::BucketBoundaries buckets) {
  return &prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add({}, std::move(buckets));
}
// Latency buckets in seconds (vLLM's time-to-first-token and per-token boundaries, CPU-extended).
const prometheus::Histogram::BucketBoundaries kFirstTokenBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                                                    0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0};
const prometheus::Histogram::BucketBoundaries kPerTokenBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
                                                                  0.5,  0.75,  1.0,  2.5,   5.0, 7.5, 10.0, 20.0};
const prometheus::Histogram::BucketBoundaries kRequestBuckets = {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0};
const prometheus::Histogram::BucketBoundaries kTokenCountBuckets = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
}  // namespace

ServerMetrics::ServerMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  running_ = gauge(r, "pagedc:num_requests_running", "Requests running on the engine (their sequences hold KV blocks).");
  waiting_ = gauge(r, "pagedc:num_requests_waiting", "Requests waiting to be scheduled.");
  swapped_ = gauge(r, "pagedc:num_requests_swapped", "Requests whose KV blocks are swapped out to host memory.");
  kvUsage_ = gauge(r, "pagedc:kv_cache_usage_perc", "Fraction of KV cache blocks in use, 0 to 1.");
  kvBlocksUsed_ = gauge(r, "pagedc:kv_cache_blocks_used", "KV cache blocks owned by sequences.");
  kvBlocksFree_ = gauge(r, "pagedc:kv_cache_blocks_free", "KV cache blocks free (including cached prefix blocks that can be evicted).");
  kvBlocksTotal_ = gauge(r, "pagedc:kv_cache_blocks_total", "KV cache blocks in the pool.");
  prefixHitRate_ = gauge(r, "pagedc:prefix_cache_hit_rate", "Prompt tokens found in the prefix cache over prompt tokens looked up, since start.");
  prefixQueries_ = counter(r, "pagedc:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.");
  prefixHits_ = counter(r, "pagedc:prefix_cache_hits_total", "Prompt tokens found in the prefix cache.");
  preemptions_ = counter(r, "pagedc:num_preemptions_total", "Sequence groups preempted (recomputed or swapped) for lack of KV blocks.");
  promptTokens_ = counter(r, "pagedc:prompt_tokens_total", "Prompt tokens of finished requests.");
  generationTokens_ = counter(r, "pagedc:generation_tokens_total", "Tokens generated and returned.");
  requestSuccess_ = &prometheus::BuildCounter().Name("pagedc:request_success_total").Help("Requests finished, by finish reason.").Register(r);
  httpResponses_ = &prometheus::BuildCounter().Name("pagedc:http_responses_total").Help("HTTP responses sent, by status code.").Register(r);
  timeToFirstToken_ = histogram(r, "pagedc:time_to_first_token_seconds", "Time from arrival to the first generated token.", kFirstTokenBuckets);
  timePerOutputToken_ = histogram(r, "pagedc:time_per_output_token_seconds", "Time between consecutive generated tokens of a request.", kPerTokenBuckets);
  e2eLatency_ = histogram(r, "pagedc:e2e_request_latency_seconds", "Time from arrival to the request's end.", kRequestBuckets);
  requestPromptTokens_ = histogram(r, "pagedc:request_prompt_tokens", "Prompt tokens per finished request.", kTokenCountBuckets);
  requestGenerationTokens_ = histogram(r, "pagedc:request_generation_tokens", "Generated tokens per finished request.", kTokenCountBuckets);
}

void ServerMetrics::observeEngine(const Engine& engine, int64_t waitingOutsideEngine) {
  const Scheduler& s = engine.scheduler();
  running_->Set(static_cast<double>(s.numRunning()));
  waiting_->Set(static_cast<double>(s.numWaiting() + waitingOutsideEngine));
  swapped_->Set(static_cast<double>(s.numSwapped()));
  const BlockStats b = engine.blockManager().stats();
  kvBlocksUsed_->Set(static_cast<double>(b.usedBlocks));
  kvBlocksFree_->Set(static_cast<double>(b.freeBlocks));
  kvBlocksTotal_->Set(static_cast<double>(b.totalBlocks));
  kvUsage_->Set(b.totalBlocks > 0 ? static_cast<double>(b.usedBlocks) / static_cast<double>(b.totalBlocks) : 0.0);
  prefixHitRate_->Set(b.prefixQueryTokens > 0 ? static_cast<double>(b.prefixHitTokens) / static_cast<double>(b.prefixQueryTokens) : 0.0);
  prefixQueries_->Increment(static_cast<double>(b.prefixQueryTokens - lastPrefixQueries_));
  prefixHits_->Increment(static_cast<double>(b.prefixHitTokens - lastPrefixHits_));
  lastPrefixQueries_ = b.prefixQueryTokens;
  lastPrefixHits_ = b.prefixHitTokens;
  preemptions_->Increment(static_cast<double>(s.numPreemptions() - lastPreemptions_));
  lastPreemptions_ = s.numPreemptions();
}

void ServerMetrics::observeFirstToken(double seconds) { timeToFirstToken_->Observe(seconds); }
void ServerMetrics::observeInterTokenGap(double seconds) { timePerOutputToken_->Observe(seconds); }
void ServerMetrics::countGenerationTokens(int64_t tokens) { generationTokens_->Increment(static_cast<double>(tokens)); }

void ServerMetrics::observeFinished(FinishReason reason, double e2eSeconds, int64_t promptTokens, int64_t generationTokens) {
  requestSuccess_->Add({{"finished_reason", finishReasonName(reason)}}).Increment();
  e2eLatency_->Observe(e2eSeconds);
  promptTokens_->Increment(static_cast<double>(promptTokens));
  requestPromptTokens_->Observe(static_cast<double>(promptTokens));
  requestGenerationTokens_->Observe(static_cast<double>(generationTokens));
}

void ServerMetrics::countHttpResponse(int status) { httpResponses_->Add({{"code", std::to_string(status)}}).Increment(); }

std::string ServerMetrics::render() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace pagedc::server
