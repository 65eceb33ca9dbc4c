// Routing, authentication, limits, streaming and shutdown of the OpenAI-compatible server.
#include "runtime/server/ApiServer.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <thread>

#include "ir/Error.h"
#include "runtime/server/HttpError.h"
#include "runtime/server/JsonFields.h"
#include "runtime/server/OpenAiResponse.h"

namespace pagedc::server {

namespace {

using Clock = std::chrono::steady_clock;

nlohmann::json errorBody(int status, const std::string& message, const std::string& type, const std::optional<std::string>& param) {
  return {{"error", {{"message", message}, {"type", type}, {"param", param ? nlohmann::json(*param) : nlohmann::json(nullptr)}, {"code", status}}}};
}

void sendError(httplib::Response& res, const HttpError& e) {
  res.status = e.status();
  res.set_content(errorBody(e.status(), e.what(), e.type(), e.param()).dump(), "application/json");
}

void sendJson(httplib::Response& res, const nlohmann::json& body) {
  res.status = 200;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

nlohmann::json parseBody(const httplib::Request& req) {
  try {
    return nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::parse_error& e) {
    throw HttpError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
}

std::string sseEvent(const nlohmann::json& data) {
  return "data: " + data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

// Which prompt an engine request id belongs to: ids are "<response id>-<prompt index>".
size_t promptIndexOf(const RequestId& id) { return std::stoul(id.substr(id.rfind('-') + 1)); }

const char* statusType(int status) {
  switch (status) {
  case 401: return "authentication_error";
  case 404: return "not_found_error";
  case 413: return "invalid_request_error";
  case 429: return "rate_limit_error";
  case 503: return "service_unavailable";
  default: return status >= 500 ? "internal_error" : "invalid_request_error";
  }
}

// What a mailbox item says went wrong, if anything: the engine refused or failed the request (503
// while shutting down, else 500), or the scheduler can never run it (larger than the KV cache: the
// engine reports it finished as rejected, with the reason in its message).
std::optional<HttpError> itemError(const Mailbox::Item& item, bool draining) {
  if (item.error) return HttpError(draining ? 503 : 500, *item.error, draining ? "service_unavailable" : "internal_error");
  const RequestOutput& out = item.output;
  if (out.finished && std::ranges::any_of(out.completions, [](const CompletionOutput& c) { return c.finishReason == FinishReason::Rejected; }))
    return HttpError(400, out.message, "invalid_request_error", "prompt");
  return std::nullopt;
}

// Decrements the active-request count when the last owner (handler or stream) lets go.
struct ActiveGuard {
  explicit ActiveGuard(std::atomic<int64_t>& count) : count_(count) { ++count_; }
  ~ActiveGuard() { --count_; }
  ActiveGuard(const ActiveGuard&) = delete;
  ActiveGuard& operator=(const ActiveGuard&) = delete;
  std::atomic<int64_t>& count_;
};

// A streamed generation's state, shared by the content provider and the releaser.
struct StreamState {
  GenerationJob job;
  std::unique_ptr<ResponseBuilder> builder;
  std::shared_ptr<Mailbox> mailbox;
  std::vector<RequestId> ids;
  size_t unfinished = 0;
  bool finished = false;
  Clock::time_point lastWrite = Clock::now();
  std::unique_ptr<ActiveGuard> active;
};

}  // namespace

ApiServer::ApiServer(const ServedModel& model, Engine& engine, ApiServerConfig config)
    : model_(model), engine_(engine), config_(std::move(config)), loop_(engine_, metrics_), idGenerator_(std::random_device{}()) {
  const int threads = config_.httpThreads;
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_.set_payload_max_length(config_.maxBodyBytes);
  http_.set_keep_alive_timeout(2);  // idle keep-alive connections give their thread back quickly
  http_.set_keep_alive_max_count(100000);  // Debian's default closes a connection after 5 requests
  routes();
}

ApiServer::~ApiServer() {
  http_.stop();
  loop_.stop();
}

std::string ApiServer::newId(const char* prefix) {
  std::lock_guard lock(idMutex_);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(idGenerator_()));
  return std::string(prefix) + hex;
}

void ApiServer::routes() {
  // Statuses httplib sets itself (404 for an unknown path, 413 for a body over the limit, 400 for
  // a malformed request) get OpenAI-style bodies too.
  http_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = res.status == 404   ? "Not found: " + req.method + " " + req.path
                          : res.status == 413 ? "the request body exceeds the server's limit of " + std::to_string(config_.maxBodyBytes) +
                                                    " bytes (--max-body-bytes)"
                                              : std::string("HTTP ") + std::to_string(res.status);
    res.set_content(errorBody(res.status, message, statusType(res.status), std::nullopt).dump(), "application/json");
  });
  http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    sendError(res, HttpError(500, message, "internal_error"));
  });
  http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.countHttpResponse(res.status);
    if (config_.logRequests) std::cerr << "pagedc serve: " << req.remote_addr << " " << req.method << " " << req.path << " " << res.status << "\n";
  });

  // The API key is checked in the handler, after httplib has read the body: answering before it
  // would leave the body on a kept-alive connection, to be read as the next request.
  auto guarded = [this](auto handler) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      try {
        if (config_.apiKey && req.get_header_value("Authorization") != "Bearer " + *config_.apiKey)
          throw HttpError(401, req.has_header("Authorization") ? "Incorrect API key provided" : "Missing API key: send \"Authorization: Bearer <key>\"",
                          "authentication_error");
        handler(req, res);
      } catch (const HttpError& e) {
        sendError(res, e);
      }
    };
  };
  http_.Post("/v1/completions", guarded([this](const httplib::Request& req, httplib::Response& res) { handleGeneration(req, res, Api::Completions); }));
  http_.Post("/v1/chat/completions", guarded([this](const httplib::Request& req, httplib::Response& res) { handleGeneration(req, res, Api::Chat); }));
  http_.Get("/v1/models", guarded([this](const httplib::Request&, httplib::Response& res) { handleModels(res, nullptr); }));
  http_.Get(R"(/v1/models/(.+))", guarded([this](const httplib::Request& req, httplib::Response& res) {
              const std::string id = req.matches[1];
              handleModels(res, &id);
            }));
  http_.Post("/tokenize", guarded([this](const httplib::Request& req, httplib::Response& res) { handleTokenize(req, res); }));
  http_.Post("/detokenize", guarded([this](const httplib::Request& req, httplib::Response& res) { handleDetokenize(req, res); }));
  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (auto failure = loop_.failure()) return sendError(res, HttpError(503, "the engine failed: " + *failure, "service_unavailable"));
    if (draining_) return sendError(res, HttpError(503, "the server is shutting down", "service_unavailable"));
    sendJson(res, {{"status", "ok"}});
  });
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

void ApiServer::handleModels(httplib::Response& res, const std::string* id) {
  nlohmann::json card = {{"id", model_.name}, {"object", "model"}, {"created", model_.created}, {"owned_by", "pagedc"},
                         {"root", model_.name}, {"parent", nullptr}, {"max_model_len", model_.maxModelLen}};
  if (!id) return sendJson(res, {{"object", "list"}, {"data", nlohmann::json::array({card})}});
  if (*id != model_.name) throw HttpError(404, "The model '" + *id + "' does not exist", "not_found_error", "model");
  sendJson(res, card);
}

void ApiServer::handleTokenize(const httplib::Request& req, httplib::Response& res) {
  nlohmann::json body = parseBody(req);
  JsonFields f(body, "the tokenize request");
  if (auto name = f.string("model"); name && *name != model_.name)
    throw HttpError(404, "The model '" + *name + "' does not exist", "not_found_error", "model");
  if (!model_.tokenizer) throw HttpError(400, "this model has no tokenizer.json, so it cannot tokenize text");
  std::string text;
  bool addSpecialTokens = true;
  if (f.has("messages")) {
    const bool addGenerationPrompt = f.boolean("add_generation_prompt").value_or(true);
    const bool continueFinal = f.boolean("continue_final_message").value_or(false);
    addSpecialTokens = f.boolean("add_special_tokens").value_or(false);
    f.ignore({"chat_template_kwargs", "tools", "messages"});
    // The template sees the request's key order (tojson of tool calls), as in Python.
    const nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(req.body);
    auto field = [&](const char* name) { return ordered.contains(name) ? ordered[name] : nlohmann::ordered_json(); };
    text = renderChat(field("messages"), model_, addGenerationPrompt, continueFinal, field("chat_template_kwargs"), field("tools"));
  } else {
    auto prompt = f.string("prompt");
    if (!prompt) throw badField("prompt", "give prompt (a string) or messages");
    text = *prompt;
    addSpecialTokens = f.boolean("add_special_tokens").value_or(true);
  }
  f.rejectUnknown();
  std::vector<int32_t> ids;
  try {
    ids = model_.tokenizer->encode(text, addSpecialTokens);
  } catch (const Error& e) {
    throw badField("prompt", e.what());
  }
  sendJson(res, {{"count", ids.size()}, {"max_model_len", model_.maxModelLen}, {"tokens", ids}});
}

void ApiServer::handleDetokenize(const httplib::Request& req, httplib::Response& res) {
  nlohmann::json body = parseBody(req);
  JsonFields f(body, "the detokenize request");
  if (auto name = f.string("model"); name && *name != model_.name)
    throw HttpError(404, "The model '" + *name + "' does not exist", "not_found_error", "model");
  if (!f.has("tokens")) throw badField("tokens", "tokens (a list of token ids) is required");
  std::vector<int64_t> tokens = f.integers("tokens");
  f.rejectUnknown();
  if (!model_.tokenizer) throw HttpError(400, "this model has no tokenizer.json, so it cannot detokenize");
  std::vector<int32_t> ids;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || static_cast<size_t>(tokens[i]) >= model_.tokenizer->vocabSize())
      throw badField("tokens", "tokens[" + std::to_string(i) + "] must be a token id in [0, " + std::to_string(model_.tokenizer->vocabSize()) +
                                   "), got " + std::to_string(tokens[i]));
    ids.push_back(static_cast<int32_t>(tokens[i]));
  }
  sendJson(res, {{"prompt", model_.tokenizer->decode(ids, false)}});
}

void ApiServer::handleGeneration(const httplib::Request& req, httplib::Response& res, Api api) {
  auto active = std::make_unique<ActiveGuard>(active_);
  nlohmann::json body = parseBody(req);
  GenerationJob job = api == Api::Chat ? parseChatRequest(body, nlohmann::ordered_json::parse(req.body), model_, config_.limits)
                                       : parseCompletionRequest(body, model_, config_.limits);
  if (!job.model.empty() && job.model != model_.name)
    throw HttpError(404, "The model '" + job.model + "' does not exist; this server serves '" + model_.name + "'", "not_found_error", "model");
  for (size_t i = 0; i < job.prompts.size(); ++i) {
    try {
      engine_.validateRequest(job.prompts[i].ids, job.params);
    } catch (const Error& e) {
      throw badFieldFromMessage(e.what());
    }
  }
  if (draining_) throw HttpError(503, "the server is shutting down", "service_unavailable");
  if (auto failure = loop_.failure()) throw HttpError(503, "the engine failed: " + *failure, "service_unavailable");
  if (const int64_t waiting = loop_.numWaiting(); waiting >= config_.maxWaitingRequests)
    throw HttpError(429, "the server is busy: " + std::to_string(waiting) + " requests are waiting (--max-waiting-requests " +
                             std::to_string(config_.maxWaitingRequests) + "); retry later",
                    "rate_limit_error");

  const std::string id = newId(api == Api::Chat ? "chatcmpl-" : "cmpl-");
  const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto mailbox = std::make_shared<Mailbox>();
  std::vector<RequestId> ids;
  for (size_t i = 0; i < job.prompts.size(); ++i) ids.push_back(id + "-" + std::to_string(i));

  if (!job.stream) {
    for (size_t i = 0; i < job.prompts.size(); ++i) loop_.submit(ids[i], job.prompts[i].ids, job.params, mailbox);
    std::vector<RequestOutput> merged(job.prompts.size());
    size_t unfinished = job.prompts.size();
    std::optional<HttpError> error;
    std::vector<Mailbox::Item> items;
    while (unfinished > 0) {
      items.clear();
      mailbox->wait(items, std::chrono::milliseconds(500));
      for (Mailbox::Item& item : items) {
        if (auto e = itemError(item, draining_)) error = std::move(e);
        if (item.error || item.output.finished) --unfinished;
        if (!item.error) merged[promptIndexOf(item.requestId)].append(item.output);
      }
    }
    if (error) throw *error;
    ResponseBuilder builder(job, model_, id, created);
    return sendJson(res, builder.response(merged));
  }

  auto state = std::make_shared<StreamState>();
  state->job = std::move(job);
  state->builder = std::make_unique<ResponseBuilder>(state->job, model_, id, created);
  state->mailbox = mailbox;
  state->ids = ids;
  state->unfinished = ids.size();
  state->active = std::move(active);
  for (size_t i = 0; i < state->job.prompts.size(); ++i) loop_.submit(ids[i], state->job.prompts[i].ids, state->job.params, mailbox);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, state](size_t, httplib::DataSink& sink) {
        std::vector<Mailbox::Item> items;
        if (!state->mailbox->wait(items, std::chrono::milliseconds(200))) {
          // Nothing to send (queued, or a long prefill): an SSE comment every second, which
          // clients ignore, finds a client that has gone (the write fails) without waiting for
          // the first token.
          if (Clock::now() - state->lastWrite < std::chrono::seconds(1)) return true;
          state->lastWrite = Clock::now();
          static constexpr char kHeartbeat[] = ": keep-alive\n\n";
          return sink.write(kHeartbeat, sizeof kHeartbeat - 1);
        }
        std::string out;
        for (Mailbox::Item& item : items) {
          if (std::optional<HttpError> error = itemError(item, draining_)) {
            // Headers are sent: the error goes in the stream, as vLLM sends it.
            out += sseEvent(errorBody(error->status(), error->what(), error->type(), error->param()));
          } else {
            const size_t prompt = promptIndexOf(item.requestId);
            for (const CompletionOutput& c : item.output.completions) {
              nlohmann::json choices = nlohmann::json::array();
              // Prompt logprobs come once, with the step that computed the whole prompt.
              state->builder->addStreamChoices(prompt, c, choices, item.output.promptLogprobs);
              for (auto& choice : choices) out += sseEvent(state->builder->chunk(nlohmann::json::array({std::move(choice)})));
            }
          }
          if (item.error || item.output.finished) --state->unfinished;
        }
        if (state->unfinished == 0) {
          if (state->job.includeUsage) out += sseEvent(state->builder->usageChunk());
          out += "data: [DONE]\n\n";
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) return false;  // the client is gone
        state->lastWrite = Clock::now();
        if (state->unfinished == 0) {
          state->finished = true;
          sink.done();
        }
        return true;
      },
      [this, state](bool) {
        // The client went away (or the server stopped) before the end: free the blocks now.
        if (!state->finished)
          for (const RequestId& rid : state->ids) loop_.abort(rid);
        state->active.reset();
      });
}

int ApiServer::bind() {
  if (config_.port == 0) {
    int port = http_.bind_to_any_port(config_.host);
    if (port <= 0) fail("cannot bind ", config_.host, " to any port");
    config_.port = port;
  } else if (!http_.bind_to_port(config_.host, config_.port)) {
    fail("cannot bind ", config_.host, ":", config_.port, " (in use, or not an address of this machine)");
  }
  http_.raiseBacklog();
  return config_.port;
}

void ApiServer::serve() {
  {
    std::lock_guard lock(lifecycle_);
    if (draining_) return;  // shut down before it started
    serveEntered_ = true;
  }
  http_.listen_after_bind();
}

void ApiServer::shutdown() {
  bool serving = false;
  {
    std::lock_guard lock(lifecycle_);
    if (draining_.exchange(true)) return;
    serving = serveEntered_;
  }
  const auto deadline = Clock::now() + config_.shutdownGrace;
  while (loop_.numUnfinished() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (loop_.numUnfinished() > 0) {
    std::cerr << "pagedc serve: grace period over; aborting " << loop_.numUnfinished() << " requests\n";
    loop_.abortAll();
  }
  // Let handlers write their last chunks (an aborted stream's finish_reason and [DONE]).
  const auto flushDeadline = Clock::now() + std::chrono::seconds(5);
  while (active_.load() > 0 && Clock::now() < flushDeadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // httplib's stop() does nothing before the listen loop runs: a signal that came during start-up
  // must wait for it, or serve() would never return.
  const auto listenDeadline = Clock::now() + std::chrono::seconds(5);
  while (serving && !http_.is_running() && Clock::now() < listenDeadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  http_.stop();
  loop_.stop();
}

}  // namespace pagedc::server
