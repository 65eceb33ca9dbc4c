// `pagedc serve`'s API over real sockets on loopback, on the bundled default model (models/default)
// with the CPU backend: completions and chat, streamed and not, the sampling parameters, n > 1 and
// beam search, 64 concurrent streams, a client leaving mid-stream (its blocks return), every error
// status, the API key, /tokenize, /detokenize, /metrics, and shutdown under load. Greedy outputs
// are checked against Hugging Face transformers' (models/default/golden/generate.json).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "TestServer.h"
#include "codegen/ArtifactWriter.h"
#include "frontend/OnnxImporter.h"
#include "passes/CompilePipeline.h"
#include "runtime/Artifact.h"
#include "runtime/GenerationDefaults.h"
#include "runtime/cpu/CpuModelRunner.h"
#include "runtime/server/ApiServer.h"
#include "runtime/tokenizer/TokenizerDetokenizer.h"

namespace pagedc::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kModelDir = testing::kDefaultModelDir;

json readJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return json::parse(in);
}

using testing::defaultArtifact;
using testing::TestServer;
using testing::TestServerOptions;

TestServer& sharedServer() {
  static TestServer server;
  return server;
}

json okJson(const httplib::Result& r) {
  if (!r) throw std::runtime_error("no response: " + httplib::to_string(r.error()));
  if (r->status != 200) throw std::runtime_error("status " + std::to_string(r->status) + ": " + r->body);
  return json::parse(r->body);
}

// The "data:" payloads of an SSE body; the last must be [DONE] (checked by callers).
std::vector<std::string> sseData(const std::string& body) {
  std::vector<std::string> events;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) throw std::runtime_error("unterminated SSE event: " + body.substr(at));
    std::string event = body.substr(at, end - at);
    at = end + 2;
    if (event.rfind(":", 0) == 0) continue;  // a comment (heartbeat)
    if (event.rfind("data: ", 0) != 0) throw std::runtime_error("not an SSE data event: " + event);
    events.push_back(event.substr(6));
  }
  return events;
}

struct Streamed {
  std::map<int64_t, std::string> text;            // by choice index
  std::map<int64_t, std::string> finishReason;    // by choice index
  std::map<int64_t, int> roleChunks;              // chat: chunks carrying the role
  std::optional<json> usage;
  int chunks = 0;
};

Streamed readStream(const httplib::Result& r) {
  if (!r) throw std::runtime_error("no response: " + httplib::to_string(r.error()));
  if (r->status != 200) throw std::runtime_error("status " + std::to_string(r->status) + ": " + r->body);
  EXPECT_EQ(r->get_header_value("Content-Type").rfind("text/event-stream", 0), 0u);
  std::vector<std::string> events = sseData(r->body);
  EXPECT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  Streamed s;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json chunk = json::parse(events[i]);
    if (chunk.contains("error")) throw std::runtime_error("error in stream: " + chunk.dump());
    ++s.chunks;
    if (chunk.contains("usage") && !chunk["usage"].is_null()) s.usage = chunk["usage"];
    for (const json& c : chunk["choices"]) {
      int64_t index = c["index"];
      if (c.contains("delta")) {
        if (c["delta"].contains("role")) ++s.roleChunks[index];
        if (c["delta"].contains("content")) s.text[index] += c["delta"]["content"].get<std::string>();
      } else {
        s.text[index] += c["text"].get<std::string>();
      }
      if (!c["finish_reason"].is_null()) {
        EXPECT_FALSE(s.finishReason.count(index)) << "two finish reasons for choice " << index;
        s.finishReason[index] = c["finish_reason"];
      }
    }
  }
  return s;
}

std::string decode(const ServedModel& model, const std::vector<int64_t>& ids) {
  std::vector<int32_t> narrow(ids.begin(), ids.end());
  return model.tokenizer->decode(narrow, true);
}

// ---- the golden: transformers' greedy generations ----------------------------------------------

TEST(ServerTest, GreedyCompletionsMatchTransformers) {
  TestServer& server = sharedServer();
  const json golden = readJson(kModelDir / "golden" / "generate.json");
  ASSERT_FALSE(golden["greedy"].empty());
  for (const json& g : golden["greedy"]) {
    const std::vector<int64_t> prompt = golden["prompts"][g["prompt"].get<size_t>()];
    const std::vector<int64_t> generated = g["generated_ids"];
    json body = {{"prompt", prompt}, {"max_tokens", g["max_new_tokens"]}, {"temperature", 0}};
    json r = okJson(server.post("/v1/completions", body));
    ASSERT_EQ(r["choices"].size(), 1u);
    EXPECT_EQ(r["object"], "text_completion");
    EXPECT_EQ(r["model"], "default");
    EXPECT_EQ(r["choices"][0]["text"], decode(server.model(), generated)) << body.dump();
    EXPECT_EQ(r["choices"][0]["finish_reason"], g["finish_reason"]) << body.dump();
    EXPECT_EQ(r["usage"]["prompt_tokens"], prompt.size());
    // The ending EOS counts as generated (transformers' output includes it) but adds no text.
    EXPECT_EQ(r["usage"]["completion_tokens"], generated.size());

    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    Streamed s = readStream(server.post("/v1/completions", body));
    EXPECT_EQ(s.text[0], r["choices"][0]["text"]);
    EXPECT_EQ(s.finishReason[0], r["choices"][0]["finish_reason"]);
    ASSERT_TRUE(s.usage);
    EXPECT_EQ((*s.usage)["completion_tokens"], generated.size());
  }
}

// ---- completions and chat, streamed and not ----------------------------------------------------

TEST(ServerTest, TextPromptsStreamTheSameTextAsTheWholeResponse) {
  TestServer& server = sharedServer();
  json body = {{"model", "default"}, {"prompt", "The meaning of life is"}, {"max_tokens", 40}, {"temperature", 0}};
  json whole = okJson(server.post("/v1/completions", body));
  const std::string text = whole["choices"][0]["text"];
  EXPECT_FALSE(text.empty());
  body["stream"] = true;
  Streamed s = readStream(server.post("/v1/completions", body));
  EXPECT_EQ(s.text[0], text);
  EXPECT_GT(s.chunks, 3);  // token by token, not one piece
  EXPECT_FALSE(s.usage);   // not asked for
  // echo puts the prompt before the completion.
  body["stream"] = false;
  body["echo"] = true;
  json echoed = okJson(server.post("/v1/completions", body));
  EXPECT_EQ(echoed["choices"][0]["text"], "The meaning of life is" + text);
}

TEST(ServerTest, ChatRendersTheTemplateAndStreamsRoleThenContent) {
  TestServer& server = sharedServer();
  json messages = json::array({{{"role", "system"}, {"content", "You are terse."}}, {{"role", "user"}, {"content", "Tell me a fortune."}}});
  json body = {{"messages", messages}, {"max_tokens", 24}, {"temperature", 0}};
  json whole = okJson(server.post("/v1/chat/completions", body));
  EXPECT_EQ(whole["object"], "chat.completion");
  EXPECT_EQ(whole["choices"][0]["message"]["role"], "assistant");
  const std::string content = whole["choices"][0]["message"]["content"];
  // The prompt is the rendered template: /tokenize of the same messages gives its length.
  json tokenized = okJson(server.post("/tokenize", {{"messages", messages}}));
  EXPECT_EQ(whole["usage"]["prompt_tokens"], tokenized["count"]);
  // Content as a list of text parts is the same prompt as the joined string.
  json parts = body;
  parts["messages"][1]["content"] = {{{"type", "text"}, {"text", "Tell me "}}, {{"type", "text"}, {"text", "a fortune."}}};
  EXPECT_EQ(okJson(server.post("/v1/chat/completions", parts))["choices"][0]["message"]["content"], content);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}, {"continuous_usage_stats", true}};
  Streamed s = readStream(server.post("/v1/chat/completions", body));
  EXPECT_EQ(s.text[0], content);
  EXPECT_EQ(s.roleChunks[0], 1);
  EXPECT_EQ(s.finishReason[0], whole["choices"][0]["finish_reason"]);
  ASSERT_TRUE(s.usage);
  EXPECT_EQ((*s.usage)["completion_tokens"], whole["usage"]["completion_tokens"]);
}

// ---- parameters ---------------------------------------------------------------------------------

TEST(ServerTest, SeededSamplingIsReproducibleAndNGivesDistinctChoices) {
  TestServer& server = sharedServer();
  json body = {{"prompt", "Once upon a time"}, {"max_tokens", 16}, {"temperature", 1.0}, {"top_p", 0.95}, {"top_k", 50},
               {"min_p", 0.01}, {"seed", 1234}, {"n", 3}, {"repetition_penalty", 1.1}, {"presence_penalty", 0.5},
               {"frequency_penalty", 0.5}, {"user", "tester"}};
  json a = okJson(server.post("/v1/completions", body));
  json b = okJson(server.post("/v1/completions", body));
  ASSERT_EQ(a["choices"].size(), 3u);
  std::set<std::string> texts;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(a["choices"][i]["index"], i);
    EXPECT_EQ(a["choices"][i]["text"], b["choices"][i]["text"]) << "same seed, same text";
    texts.insert(a["choices"][i]["text"].get<std::string>());
  }
  EXPECT_GT(texts.size(), 1u) << "n samples should differ";
  body["stream"] = true;
  Streamed s = readStream(server.post("/v1/completions", body));
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(s.text[i], a["choices"][i]["text"]) << i;
}

TEST(ServerTest, BestOfAndBeamSearchReturnNChoices) {
  TestServer& server = sharedServer();
  json beam = okJson(server.post("/v1/completions", {{"prompt", "The cat"}, {"max_tokens", 12}, {"temperature", 0},
                                                     {"use_beam_search", true}, {"n", 2}, {"best_of", 3}, {"length_penalty", 1.0}}));
  ASSERT_EQ(beam["choices"].size(), 2u);
  EXPECT_NE(beam["choices"][0]["text"], beam["choices"][1]["text"]);
  Streamed streamedBeam = readStream(server.post("/v1/completions", {{"prompt", "The cat"}, {"max_tokens", 12}, {"temperature", 0},
                                                                     {"use_beam_search", true}, {"n", 2}, {"best_of", 3}, {"stream", true}}));
  EXPECT_EQ(streamedBeam.text[0], beam["choices"][0]["text"]);
  EXPECT_EQ(streamedBeam.text[1], beam["choices"][1]["text"]);
  json bestOf = okJson(server.post("/v1/completions", {{"prompt", "The cat"}, {"max_tokens", 8}, {"n", 2}, {"best_of", 4}, {"seed", 7}}));
  EXPECT_EQ(bestOf["choices"].size(), 2u);
}

TEST(ServerTest, LogprobsInEachApisFormat) {
  TestServer& server = sharedServer();
  json c = okJson(server.post("/v1/completions", {{"prompt", "Hello"}, {"max_tokens", 5}, {"temperature", 0}, {"logprobs", 3}, {"ignore_eos", true}}));
  const json& lp = c["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 5u);
  ASSERT_EQ(lp["token_logprobs"].size(), 5u);
  ASSERT_EQ(lp["top_logprobs"].size(), 5u);
  ASSERT_EQ(lp["text_offset"].size(), 5u);
  std::string joined;
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_LE(lp["token_logprobs"][i].get<double>(), 0.0);
    EXPECT_GE(lp["top_logprobs"][i].size(), 1u);
    EXPECT_LE(lp["top_logprobs"][i].size(), 4u);  // the sampled token and the top 3
    // Greedy: the sampled token is the most likely one.
    double best = -1e30;
    for (const auto& [token, value] : lp["top_logprobs"][i].items()) best = std::max(best, value.get<double>());
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), best, 1e-6);
    EXPECT_EQ(lp["text_offset"][i], joined.size());
    joined += lp["tokens"][i].get<std::string>();
  }
  EXPECT_EQ(joined, c["choices"][0]["text"]);

  // vLLM's prompt_logprobs: one entry per prompt token, the first null.
  std::vector<int64_t> promptIds = okJson(server.post("/tokenize", {{"prompt", "Hello there friend"}}))["tokens"];
  json p = okJson(server.post("/v1/completions", {{"prompt", promptIds}, {"max_tokens", 1}, {"prompt_logprobs", 2}}));
  const json& plp = p["choices"][0]["prompt_logprobs"];
  ASSERT_EQ(plp.size(), promptIds.size());
  EXPECT_TRUE(plp[0].is_null());
  for (size_t i = 1; i < promptIds.size(); ++i) {
    ASSERT_TRUE(plp[i].contains(std::to_string(promptIds[i]))) << plp[i].dump();
    EXPECT_LE(plp[i][std::to_string(promptIds[i])]["logprob"].get<double>(), 0.0);
    EXPECT_GE(plp[i].size(), 2u);
  }

  json chat = okJson(server.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 4},
                                                          {"temperature", 0}, {"logprobs", true}, {"top_logprobs", 2}, {"ignore_eos", true}}));
  const json& content = chat["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 4u);
  for (const json& t : content) {
    EXPECT_TRUE(t["token"].is_string());
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    EXPECT_EQ(t["top_logprobs"].size(), 2u);
    EXPECT_EQ(t["bytes"].size(), t["token"].get<std::string>().size());
  }
}

TEST(ServerTest, StopStringsStopTokenIdsLogitBiasAndMinTokens) {
  TestServer& server = sharedServer();
  json base = {{"prompt", "The meaning of life is"}, {"max_tokens", 40}, {"temperature", 0}};
  const std::string text = okJson(server.post("/v1/completions", base))["choices"][0]["text"];
  ASSERT_GE(text.size(), 12u);
  // A stop string taken from the middle of the greedy text cuts the output before it.
  const std::string stop = text.substr(6, 4);
  json stopped = base;
  stopped["stop"] = {stop};
  json r = okJson(server.post("/v1/completions", stopped));
  EXPECT_EQ(r["choices"][0]["text"], text.substr(0, text.find(stop)));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["choices"][0]["stop_reason"], stop);
  stopped["stream"] = true;
  EXPECT_EQ(readStream(server.post("/v1/completions", stopped)).text[0], text.substr(0, text.find(stop)));
  stopped["stream"] = false;
  stopped["include_stop_str_in_output"] = true;
  EXPECT_EQ(okJson(server.post("/v1/completions", stopped))["choices"][0]["text"], text.substr(0, text.find(stop) + stop.size()));

  // logit_bias +100 forces a token; with it in stop_token_ids generation stops at once.
  const int64_t forced = okJson(server.post("/tokenize", {{"prompt", " the"}, {"add_special_tokens", false}}))["tokens"][0];
  json biased = base;
  biased["logit_bias"] = {{std::to_string(forced), 100}};
  biased["max_tokens"] = 4;
  json b = okJson(server.post("/v1/completions", biased));
  EXPECT_EQ(b["choices"][0]["text"], " the the the the");
  biased["stop_token_ids"] = {forced};
  json s = okJson(server.post("/v1/completions", biased));
  EXPECT_EQ(s["choices"][0]["text"], "");
  EXPECT_EQ(s["choices"][0]["finish_reason"], "stop");
  // min_tokens masks stop tokens until reached.
  biased["min_tokens"] = 2;
  biased["logit_bias"] = {{std::to_string(forced), 5}};
  json m = okJson(server.post("/v1/completions", biased));
  EXPECT_EQ(m["usage"]["completion_tokens"], 3);
}

TEST(ServerTest, MaxTokensEndsWithLengthAndIgnoreEosRunsOn) {
  TestServer& server = sharedServer();
  json r = okJson(server.post("/v1/completions", {{"prompt", "A"}, {"max_tokens", 7}, {"temperature", 0}, {"ignore_eos", true}}));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["completion_tokens"], 7);
}

TEST(ServerTest, SeveralPromptsInOneRequest) {
  TestServer& server = sharedServer();
  json one = okJson(server.post("/v1/completions", {{"prompt", "Hello"}, {"max_tokens", 6}, {"temperature", 0}}));
  json two = okJson(server.post("/v1/completions", {{"prompt", "Goodbye"}, {"max_tokens", 6}, {"temperature", 0}}));
  json both = okJson(server.post("/v1/completions", {{"prompt", {"Hello", "Goodbye"}}, {"max_tokens", 6}, {"temperature", 0}}));
  ASSERT_EQ(both["choices"].size(), 2u);
  EXPECT_EQ(both["choices"][0]["text"], one["choices"][0]["text"]);
  EXPECT_EQ(both["choices"][1]["text"], two["choices"][0]["text"]);
  EXPECT_EQ(both["usage"]["prompt_tokens"], one["usage"]["prompt_tokens"].get<int>() + two["usage"]["prompt_tokens"].get<int>());
  // Token-id prompts, single and batched.
  std::vector<int64_t> ids = okJson(server.post("/tokenize", {{"prompt", "Hello"}}))["tokens"];
  json byIds = okJson(server.post("/v1/completions", {{"prompt", {ids, ids}}, {"max_tokens", 6}, {"temperature", 0}}));
  EXPECT_EQ(byIds["choices"][1]["text"], one["choices"][0]["text"]);
}

// ---- concurrency --------------------------------------------------------------------------------

TEST(ServerTest, SixtyFourConcurrentStreamsAreCompleteAndCorrect) {
  TestServer& server = sharedServer();
  constexpr int kClients = 64;
  const std::vector<std::string> prompts = {"The meaning of life is", "Once upon a time", "A wise man", "Love is", "Never",
                                            "The computer", "In the beginning", "Life"};
  std::vector<std::string> expected;
  for (const std::string& p : prompts)
    expected.push_back(okJson(server.post("/v1/completions", {{"prompt", p}, {"max_tokens", 24}, {"temperature", 0}}))["choices"][0]["text"]);
  std::vector<std::string> got(kClients);
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&, i] {
      try {
        Streamed s = readStream(server.post("/v1/completions", {{"prompt", prompts[i % prompts.size()]}, {"max_tokens", 24}, {"temperature", 0},
                                                                 {"stream", true}}));
        got[i] = s.text[0];
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : clients) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(errors[i], "") << "client " << i;
    EXPECT_EQ(got[i], expected[i % prompts.size()]) << "client " << i;
  }
  EXPECT_EQ(server.api().engineLoop().numUnfinished(), 0);
}

// Opens a streaming request on a raw socket, reads `events` SSE events, and closes the socket.
void streamThenHangUp(int port, const json& body, int events) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string payload = body.dump();
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                              std::to_string(payload.size()) + "\r\n\r\n" + payload;
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string received;
  char buffer[4096];
  auto count = [&] {
    size_t n = 0, at = 0;
    while ((at = received.find("data: ", at)) != std::string::npos) ++n, at += 6;
    return n;
  };
  while (count() < static_cast<size_t>(events)) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    ASSERT_GT(n, 0) << "stream ended early: " << received;
    received.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
}

TEST(ServerTest, ClientLeavingMidStreamAbortsAndFreesItsBlocks) {
  TestServer server;
  const int64_t before = server.api().engineLoop().stats().blocks.usedBlocks;
  EXPECT_EQ(before, 0);
  streamThenHangUp(server.port(), {{"prompt", "Once upon a time"}, {"max_tokens", 200}, {"ignore_eos", true}, {"stream", true}}, 3);
  // The next writes fail; the request is aborted and its blocks return, long before 200 tokens.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (server.api().engineLoop().numUnfinished() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server.api().engineLoop().numUnfinished(), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EngineStats stats = server.api().engineLoop().stats();
  EXPECT_EQ(stats.blocks.usedBlocks, 0);
  EXPECT_LT(stats.decodeTokensComputed, 150) << "the request ran on after its client left";
  EXPECT_NE(server.api().metrics().render().find("pagedc:request_success_total{finished_reason=\"abort\"} 1"), std::string::npos);
  // The server keeps serving.
  EXPECT_EQ(okJson(server.post("/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 2}}))["choices"].size(), 1u);
}

// ---- errors -------------------------------------------------------------------------------------

void expectError(const httplib::Result& r, int status, const std::string& param, const std::string& fragment) {
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, status) << r->body;
  json body = json::parse(r->body);
  ASSERT_TRUE(body.contains("error")) << r->body;
  EXPECT_NE(body["error"]["message"].get<std::string>().find(fragment), std::string::npos) << r->body;
  if (!param.empty()) {
    EXPECT_EQ(body["error"]["param"], param) << r->body;
  }
  EXPECT_EQ(body["error"]["code"], status);
}

TEST(ServerTest, BadRequestsGetOpenAiErrorsNamingTheField) {
  TestServer& server = sharedServer();
  httplib::Client c = server.client();
  expectError(c.Post("/v1/completions", "{not json", "application/json"), 400, "", "not valid JSON");
  expectError(server.post("/v1/completions", json::array({1, 2})), 400, "", "must be a JSON object");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"temperature", -1}}), 400, "temperature", "temperature must be >= 0");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"temperature", "hot"}}), 400, "temperature", "must be a number");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"top_p", 0}}), 400, "top_p", "top_p");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"n", 0}}), 400, "n", "n must be");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"n", 1000}}), 400, "n", "n must be in [1, 16]");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 0}}), 400, "max_tokens", "max_tokens");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"logprobs", 50}}), 400, "logprobs", "logprobs");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"temprature", 1}}), 400, "temprature", "unknown field 'temprature'");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"logit_bias", {{"abc", 1}}}}), 400, "logit_bias", "token ids");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"logit_bias", {{"5", 500}}}}), 400, "logit_bias", "[-100, 100]");
  expectError(server.post("/v1/completions", {{"prompt", json::array({1, -3})}}), 400, "prompt", "prompt[1] must be a token id");
  expectError(server.post("/v1/completions", {{"max_tokens", 3}}), 400, "prompt", "prompt is required");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"stream_options", {{"include_usage", true}}}}), 400, "stream_options", "stream");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"suffix", "y"}}), 400, "suffix", "not supported");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"use_beam_search", true}, {"temperature", 0.5}, {"n", 2}}), 400, "temperature",
              "beam search");
  const int64_t maxLen = server.model().maxModelLen;
  expectError(server.post("/v1/completions", {{"prompt", std::vector<int64_t>(static_cast<size_t>(maxLen + 5), 5)}}), 400, "prompt",
              "maximum context length");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", maxLen * 2}}), 400, "max_tokens", "maximum context length");
  expectError(server.post("/v1/chat/completions", {{"messages", json::array()}}), 400, "messages", "non-empty");
  expectError(server.post("/v1/chat/completions", {{"messages", {{{"content", "no role"}}}}}), 400, "messages", "messages[0].role");
  expectError(server.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"top_logprobs", 2}}), 400,
              "top_logprobs", "needs logprobs");
  expectError(server.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"response_format", {{"type", "json_object"}}}}),
              400, "response_format", "only");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"model", "gpt-4"}}), 404, "model", "'gpt-4' does not exist");
  expectError(c.Get("/v1/models/gpt-4"), 404, "model", "does not exist");
  expectError(c.Get("/v1/nothing-here"), 404, "", "Not found");
  expectError(server.post("/detokenize", {{"tokens", {1, 999999}}}), 400, "tokens", "tokens[1]");
  // None of it disturbed the server.
  EXPECT_EQ(okJson(server.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 1}}))["choices"].size(), 1u);
  EXPECT_EQ(server.api().engineLoop().numUnfinished(), 0);
}

TEST(ServerTest, OversizedBodiesGet413) {
  TestServerOptions options;
  options.server.maxBodyBytes = 1024;
  TestServer server(options);
  std::string big(4096, 'a');
  expectError(server.post("/v1/completions", {{"prompt", big}}), 413, "", "exceeds the server's limit of 1024 bytes");
  EXPECT_EQ(okJson(server.post("/v1/completions", {{"prompt", "small"}, {"max_tokens", 1}}))["choices"].size(), 1u);
}

TEST(ServerTest, APromptLargerThanTheKvCacheIs400) {
  TestServerOptions options;
  options.kvBlocks = 2;  // 32 token slots
  TestServer server(options);
  std::vector<int64_t> prompt(100, 7);
  expectError(server.post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 2}}), 400, "prompt", "");
  auto streamed = server.post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 2}, {"stream", true}});
  ASSERT_TRUE(streamed);
  EXPECT_NE(streamed->body.find("\"error\""), std::string::npos) << streamed->body;
  EXPECT_EQ(server.api().engineLoop().stats().blocks.usedBlocks, 0);
  EXPECT_EQ(okJson(server.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}}))["choices"].size(), 1u);
}

TEST(ServerTest, ApiKeyIsRequiredWhenSet) {
  TestServerOptions options;
  options.server.apiKey = "sk-test-123";
  TestServer server(options);
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 1}}), 401, "", "Missing API key");
  expectError(server.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 1}}, "wrong"), 401, "", "Incorrect API key");
  expectError(server.client("wrong").Get("/v1/models"), 401, "", "Incorrect");
  EXPECT_EQ(okJson(server.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 1}}, "sk-test-123"))["choices"].size(), 1u);
  // A refused POST must not leave its body on a kept-alive connection.
  httplib::Client kept = server.client("wrong");
  kept.set_keep_alive(true);
  expectError(kept.Post("/v1/completions", json({{"prompt", "the"}, {"max_tokens", 2}}).dump(), "application/json"), 401, "", "Incorrect");
  expectError(kept.Get("/v1/models/default"), 401, "", "Incorrect");
  EXPECT_EQ(okJson(server.client("sk-test-123").Get("/v1/models"))["data"][0]["id"], "default");
  // Health and metrics stay open for probes and scrapers.
  EXPECT_EQ(server.client().Get("/health")->status, 200);
  EXPECT_EQ(server.client().Get("/metrics")->status, 200);
}

TEST(ServerTest, AFullQueueGets429) {
  TestServerOptions options;
  options.maxNumSeqs = 1;  // one request runs, the rest wait
  options.server.maxWaitingRequests = 3;
  TestServer server(options);
  constexpr int kLoad = 4;  // one running, three waiting: the queue is full
  // The full queue lasts as long as the first request runs (about 250 decode steps); on a loaded
  // machine the probe may come after it ended, so the scenario is tried a few times.
  std::optional<httplib::Result> refused;
  for (int attempt = 0; attempt < 5 && !refused; ++attempt) {
    std::vector<std::thread> load;
    std::atomic<int> ok{0};
    for (int i = 0; i < kLoad; ++i) {
      load.emplace_back([&] {
        auto r = server.post("/v1/completions", {{"prompt", "Once"}, {"max_tokens", 250}, {"ignore_eos", true}});
        if (r && r->status == 200) ++ok;
      });
      // One at a time, so each is queued before the next arrives.
      while (server.api().engineLoop().numUnfinished() < i + 1) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    while (server.api().engineLoop().numWaiting() < 3 && server.api().engineLoop().numUnfinished() == kLoad)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    auto probe = server.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 1}});
    for (auto& t : load) t.join();
    EXPECT_EQ(ok.load(), kLoad) << "a queued request was refused";
    if (probe && probe->status == 429) refused = std::move(probe);
  }
  ASSERT_TRUE(refused) << "no request was refused while the queue was full";
  expectError(*refused, 429, "", "busy");
  // Once the queue drains, requests are accepted again.
  EXPECT_EQ(okJson(server.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 1}}))["choices"].size(), 1u);
}

// ---- other endpoints ----------------------------------------------------------------------------

TEST(ServerTest, ModelsHealthTokenizeDetokenizeAndMetrics) {
  TestServer& server = sharedServer();
  httplib::Client c = server.client();
  json models = okJson(c.Get("/v1/models"));
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "default");
  EXPECT_EQ(models["data"][0]["max_model_len"], server.model().maxModelLen);
  EXPECT_EQ(okJson(c.Get("/v1/models/default"))["id"], "default");
  EXPECT_EQ(okJson(c.Get("/health"))["status"], "ok");

  const std::string text = "Héllo, wörld! 🙂  spaces";
  json tokens = okJson(server.post("/tokenize", {{"prompt", text}}));
  EXPECT_EQ(tokens["count"], tokens["tokens"].size());
  json back = okJson(server.post("/detokenize", {{"tokens", tokens["tokens"]}}));
  EXPECT_NE(back["prompt"].get<std::string>().find(text), std::string::npos) << back.dump();

  okJson(server.post("/v1/completions", {{"prompt", "Metrics"}, {"max_tokens", 3}, {"ignore_eos", true}}));
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  for (const char* name :
       {"pagedc:num_requests_running", "pagedc:num_requests_waiting", "pagedc:num_requests_swapped", "pagedc:kv_cache_usage_perc",
        "pagedc:kv_cache_blocks_used", "pagedc:kv_cache_blocks_free", "pagedc:prefix_cache_hit_rate", "pagedc:num_preemptions_total",
        "pagedc:prompt_tokens_total", "pagedc:generation_tokens_total", "pagedc:time_to_first_token_seconds_bucket",
        "pagedc:time_per_output_token_seconds_bucket", "pagedc:e2e_request_latency_seconds_count", "pagedc:request_success_total"})
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name;
}

TEST(ServerTest, ChatTemplateJinjaFileOverridesTheConfigsTemplate) {
  // Newer transformers save the template as chat_template.jinja beside tokenizer_config.json.
  const fs::path dir = fs::temp_directory_path() / ("pagedc_chat_jinja_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(kModelDir / "tokenizer.json", dir / "tokenizer.json", fs::copy_options::overwrite_existing);
  fs::copy_file(kModelDir / "tokenizer_config.json", dir / "tokenizer_config.json", fs::copy_options::overwrite_existing);
  std::ofstream(dir / "chat_template.jinja") << "{% for m in messages %}[{{ m.role }}]{% for part in m.content %}{{ part.text }}{% endfor %}{% endfor %}";
  ServedModel model = ServedModel::load(dir.string(), "x", 2048, 256);
  ASSERT_TRUE(model.chatTemplate);
  EXPECT_TRUE(model.chatTemplateIteratesContent);  // it loops over content parts: they stay a list
  nlohmann::ordered_json messages = nlohmann::ordered_json::parse(R"([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])");
  EXPECT_EQ(renderChat(messages, model, false, false, nullptr, nullptr), "[user]ab");
  fs::remove_all(dir);
  // The default model's own template prints content as a string: parts are joined for it.
  EXPECT_FALSE(sharedServer().model().chatTemplateIteratesContent);
}

// ---- shutdown -----------------------------------------------------------------------------------

// Streams `clients` requests, stops the server once all have tokens, and returns each stream.
std::vector<Streamed> shutDownUnderLoad(TestServer& server, int clients, int64_t maxTokens) {
  std::vector<Streamed> results(static_cast<size_t>(clients));
  std::vector<std::string> errors(static_cast<size_t>(clients));
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      try {
        results[static_cast<size_t>(i)] = readStream(server.post(
            "/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", maxTokens}, {"ignore_eos", true}, {"stream", true}}));
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(i)] = e.what();
      }
    });
  while (server.api().engineLoop().stats().decodeTokensComputed < clients) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server.stop();  // returns once serve() has returned
  for (auto& t : threads) t.join();
  for (int i = 0; i < clients; ++i) EXPECT_EQ(errors[static_cast<size_t>(i)], "") << i;
  EXPECT_EQ(server.api().engineLoop().numUnfinished(), 0);
  EXPECT_EQ(server.api().engineLoop().stats().blocks.usedBlocks, 0);
  EXPECT_FALSE(server.post("/v1/completions", {{"prompt", "x"}})) << "the server still accepts connections";
  return results;
}

TEST(ServerTest, ShutdownAbortsWhatTheGracePeriodDoesNotFinish) {
  TestServerOptions options;
  options.server.shutdownGrace = std::chrono::milliseconds(0);
  TestServer server(options);
  // Every stream ends properly: finish_reason "abort", then [DONE] (readStream checks it).
  for (const Streamed& s : shutDownUnderLoad(server, 8, 240)) EXPECT_EQ(s.finishReason.at(0), "abort");
}

TEST(ServerTest, ShutdownLetsRunningRequestsFinishWithinTheGracePeriod) {
  TestServerOptions options;
  options.server.shutdownGrace = std::chrono::milliseconds(60000);
  TestServer server(options);
  for (const Streamed& s : shutDownUnderLoad(server, 8, 40)) EXPECT_EQ(s.finishReason.at(0), "length");
}

}  // namespace
}  // namespace pagedc::server
