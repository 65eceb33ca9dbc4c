// The engine on its own thread. HTTP handlers submit requests and wait on their mailboxes; the loop
// admits them between steps, steps while anything is unfinished, and posts each step's outputs.
// Handlers never touch the engine, and the engine never waits for a handler.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "runtime/Engine.h"
#include "runtime/server/ServerMetrics.h"

namespace pagedc::server {

// One HTTP request's outputs; it may gather several engine requests (several prompts).
class Mailbox {
public:
  struct Item {
    RequestId requestId;
    RequestOutput output;                // with output.finished on its last item
    std::optional<std::string> error;    // the engine refused the request or failed; final
  };
  void post(std::vector<Item> items);
  // Waits until something arrives or the timeout passes, then moves what arrived into out.
  // False when nothing arrived.
  bool wait(std::vector<Item>& out, std::chrono::milliseconds timeout);

private:
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<Item> items_;
};

class EngineLoop {
public:
  // Starts the thread. The engine and metrics must outlive the loop.
  EngineLoop(Engine& engine, ServerMetrics& metrics);
  ~EngineLoop();  // stop()

  // Queues the request for the next admission; outputs (or an error) go to the mailbox. The
  // prompt and parameters must have passed Engine::validateRequest.
  void submit(RequestId id, std::vector<TokenId> prompt, SamplingParams params, std::shared_ptr<Mailbox> mailbox);
  // The request ends as "abort" at the next step and its blocks are freed. Unknown ids are ignored.
  void abort(const RequestId& id);
  void abortAll();

  // Submitted requests not yet running: queued here or waiting in the scheduler.
  int64_t numWaiting() const;
  // Requests submitted and not yet finished.
  int64_t numUnfinished() const;
  // The engine failed (an exception from step()): every request was failed, nothing more runs.
  std::optional<std::string> failure() const;
  // The engine's statistics after the last step.
  EngineStats stats() const;

  // Aborts what is left, posts the last outputs, joins the thread. Idempotent.
  void stop();

private:
  struct Submission {
    RequestId id;
    std::vector<TokenId> prompt;
    SamplingParams params;
    std::shared_ptr<Mailbox> mailbox;
    std::chrono::steady_clock::time_point arrival;
  };
  struct Live {
    std::shared_ptr<Mailbox> mailbox;
    std::chrono::steady_clock::time_point arrival;
    std::optional<std::chrono::steady_clock::time_point> lastToken;
    int64_t promptTokens = 0;
    int64_t generatedTokens = 0;
  };

  void run();
  void admit(std::vector<Submission>& submissions);
  void deliver(std::vector<RequestOutput>& outputs);
  void failEverything(const std::string& message);

  Engine& engine_;
  ServerMetrics& metrics_;
  std::unordered_map<RequestId, Live> live_;  // engine thread only

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  std::vector<Submission> inbox_;
  std::vector<RequestId> aborts_;
  bool abortAll_ = false;
  bool stopping_ = false;
  int64_t engineWaiting_ = 0;
  int64_t unfinished_ = 0;
  std::optional<std::string> failure_;
  EngineStats stats_;
  std::thread thread_;
};

}  // namespace pagedc::server
