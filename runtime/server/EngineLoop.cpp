// The engine thread: admit, abort, step, deliver.
#include "runtime/server/EngineLoop.h"

#include <algorithm>

namespace pagedc::server {

void Mailbox::post(std::vector<Item> items) {
  if (items.empty()) return;
  {
    std::lock_guard lock(mutex_);
    for (Item& item : items) items_.push_back(std::move(item));
  }
  arrived_.notify_all();
}

bool Mailbox::wait(std::vector<Item>& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!arrived_.wait_for(lock, timeout, [&] { return !items_.empty(); })) return false;
  for (Item& item : items_) out.push_back(std::move(item));
  items_.clear();
  return true;
}

EngineLoop::EngineLoop(Engine& engine, ServerMetrics& metrics) : engine_(engine), metrics_(metrics) {
  stats_ = engine_.stats();
  thread_ = std::thread([this] { run(); });
}

EngineLoop::~EngineLoop() { stop(); }

void EngineLoop::submit(RequestId id, std::vector<TokenId> prompt, SamplingParams params, std::shared_ptr<Mailbox> mailbox) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || failure_) {
      std::string why = failure_ ? "the engine failed: " + *failure_ : std::string("the server is shutting down");
      mailbox->post({{id, {}, why}});
      return;
    }
    inbox_.push_back({std::move(id), std::move(prompt), std::move(params), std::move(mailbox), std::chrono::steady_clock::now()});
    ++unfinished_;
  }
  wake_.notify_one();
}

void EngineLoop::abort(const RequestId& id) {
  {
    std::lock_guard lock(mutex_);
    aborts_.push_back(id);
  }
  wake_.notify_one();
}

void EngineLoop::abortAll() {
  {
    std::lock_guard lock(mutex_);
    abortAll_ = true;
  }
  wake_.notify_one();
}

int64_t EngineLoop::numWaiting() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(inbox_.size()) + engineWaiting_;
}

int64_t EngineLoop::numUnfinished() const {
  std::lock_guard lock(mutex_);
  return unfinished_;
}

std::optional<std::string> EngineLoop::failure() const {
  std::lock_guard lock(mutex_);
  return failure_;
}

EngineStats EngineLoop::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void EngineLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    abortAll_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void EngineLoop::admit(std::vector<Submission>& submissions) {
  for (Submission& s : submissions) {
    const auto promptTokens = static_cast<int64_t>(s.prompt.size());
    try {
      engine_.addRequest(s.id, std::move(s.prompt), s.params);
    } catch (const std::exception& e) {
      {
        std::lock_guard lock(mutex_);
        --unfinished_;
      }
      s.mailbox->post({{s.id, {}, std::string(e.what())}});
      continue;
    }
    live_[s.id] = Live{std::move(s.mailbox), s.arrival, std::nullopt, promptTokens, 0};
  }
}

void EngineLoop::deliver(std::vector<RequestOutput>& outputs) {
  const auto now = std::chrono::steady_clock::now();
  // One post per mailbox per step, so a handler wakes once with everything of this step.
  std::unordered_map<Mailbox*, std::pair<std::shared_ptr<Mailbox>, std::vector<Mailbox::Item>>> posts;
  int64_t finished = 0;
  for (RequestOutput& out : outputs) {
    auto it = live_.find(out.requestId);
    if (it == live_.end()) continue;
    Live& l = it->second;
    int64_t tokens = 0;
    for (const CompletionOutput& c : out.completions) tokens += static_cast<int64_t>(c.tokens.size());
    if (tokens > 0) {
      if (!l.lastToken) metrics_.observeFirstToken(std::chrono::duration<double>(now - l.arrival).count());
      else metrics_.observeInterTokenGap(std::chrono::duration<double>(now - *l.lastToken).count());
      l.lastToken = now;
      l.generatedTokens += tokens;
      metrics_.countGenerationTokens(tokens);
    }
    auto& post = posts[l.mailbox.get()];
    post.first = l.mailbox;
    if (out.finished) {
      FinishReason reason = FinishReason::None;
      for (const CompletionOutput& c : out.completions)
        if (c.finishReason != FinishReason::None) reason = c.finishReason;
      if (reason == FinishReason::None) reason = FinishReason::Aborted;  // dropped before any completion existed
      metrics_.observeFinished(reason, std::chrono::duration<double>(now - l.arrival).count(), l.promptTokens, l.generatedTokens);
      live_.erase(it);
      ++finished;
    }
    RequestId id = out.requestId;
    post.second.push_back({std::move(id), std::move(out), std::nullopt});
  }
  {
    // Counted as finished before a handler can see the end, so numUnfinished() never lags a
    // response the client already has.
    std::lock_guard lock(mutex_);
    unfinished_ -= finished;
  }
  for (auto& [raw, post] : posts) post.first->post(std::move(post.second));
}

void EngineLoop::failEverything(const std::string& message) {
  std::vector<Submission> pending;
  {
    std::lock_guard lock(mutex_);
    failure_ = message;
    pending.swap(inbox_);
    unfinished_ = 0;
  }
  for (auto& [id, l] : live_) l.mailbox->post({{id, {}, "the engine failed: " + message}});
  for (Submission& s : pending) s.mailbox->post({{s.id, {}, "the engine failed: " + message}});
  live_.clear();
}

void EngineLoop::run() {
  for (;;) {
    std::vector<Submission> submissions;
    std::vector<RequestId> aborts;
    bool abortAll = false;
    bool stopping = false;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return !inbox_.empty() || !aborts_.empty() || abortAll_ || stopping_ || engine_.hasUnfinished(); });
      submissions.swap(inbox_);
      aborts.swap(aborts_);
      abortAll = std::exchange(abortAll_, false);
      stopping = stopping_;
    }
    admit(submissions);
    if (abortAll)
      for (const auto& [id, l] : live_) engine_.abort(id);
    for (const RequestId& id : aborts) engine_.abort(id);
    if (!engine_.hasUnfinished()) {
      if (stopping) return;
      continue;
    }
    std::vector<RequestOutput> outputs;
    try {
      outputs = engine_.step();
    } catch (const std::exception& e) {
      // The engine's state can no longer be trusted: fail every request, run nothing more.
      failEverything(e.what());
      return;
    }
    {
      // Before the outputs go out, so a client that has its answer sees the engine after it.
      std::lock_guard lock(mutex_);
      engineWaiting_ = engine_.scheduler().numWaiting();
      stats_ = engine_.stats();
    }
    deliver(outputs);
    metrics_.observeEngine(engine_, 0);
  }
}

}  // namespace pagedc::server
