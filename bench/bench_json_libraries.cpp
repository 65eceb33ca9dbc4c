// JSON library comparison for `pagedc serve` (docs/DEPENDENCIES.md, "JSON").
//
// The server's three JSON workloads, each done the same way with every candidate:
//   parse   a ~1 KB chat completions request body (model, 3 messages with some non-ASCII text and
//           escapes, temperature, max_tokens, stream, stream_options, logit_bias with 3 entries, a stop
//           list) parsed into a DOM from the std::string the HTTP library hands over, then every field
//           read, type-checked and copied out (strings into std::string, logit_bias keys into a
//           std::map<int64_t, double>), as runtime/server/OpenAiRequest.cpp does;
//   chunk   one streaming chat chunk built and serialized as an SSE event (`data: {...}\n\n`): id,
//           object, created, model, choices[0] = {index, delta.content (6 bytes), logprobs null,
//           finish_reason null}, about 200 bytes; once per sequence per decode step;
//   logprobs the same chunk with chat logprobs for its token (token, logprob, bytes, 5 top_logprobs each
//           with token, logprob, bytes), about 1 KB.
// Candidates: nlohmann-json 3.11 (pagedc's; built as runtime/server/OpenAiResponse.cpp builds it,
// serialized with dump(-1, ' ', false, replace) as ApiServer.cpp's sseEvent does), RapidJSON 1.1 (a
// Document for parsing, with full-precision numbers; for serializing both a Document built then written,
// like for like with nlohmann's DOM, and its Writer called directly, SAX style, no DOM) and, when
// installed, simdjson 3 (parsing only, its DOM API, one parser reused across requests as the library
// intends: a server would keep one per thread). The nlohmann rows also include the chat path as the
// server has it today, which parses the body twice (json, and ordered_json for the chat template), and,
// for the chunks, nlohmann's dump alone of a DOM built once (where its time goes; not a server option).
//
// Every candidate's result is checked against nlohmann's first (the fields read; the serialized chunk
// parsed back and compared as a DOM). Timing: each case runs in batches of about --ms milliseconds;
// --reps rounds, each running every case once in turn (so machine load hits all alike); reported are
// the median and the minimum ns per operation over the rounds.
//
// Usage: bench_json_libraries [--reps R] [--ms M] [--batch B]   (B: sequences per decode step, for the
//        context lines; default 256)

#include <nlohmann/json.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#ifdef PAGEDC_BENCH_HAVE_SIMDJSON
#include <simdjson.h>
#endif

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// ---- inputs -----------------------------------------------------------------------------------------

const std::string& requestBody() {
  static const std::string body =
      R"({"model":"llama-125m","messages":[)"
      R"({"role":"system","content":"You are a helpful assistant for a small engineering team. Answer briefly and precisely; )"
      R"(when the user writes in French, r\u00e9ponds en fran\u00e7ais. Use \"code blocks\" for commands.\nNever invent APIs."},)"
      R"({"role":"user","content":"Bonjour ! Peux-tu m'expliquer la diff\u00e9rence entre un processus et un thread sous Linux ? )"
      R"(Une r\u00e9ponse courte, s'il te pla\u00eet \u2014 avec un exemple concret (fork vs. pthread_create). Merci d'avance. )"
      "Et en japonais aussi : \xe3\x83\x97\xe3\x83\xad\xe3\x82\xbb\xe3\x82\xb9\xe3\x81\xa8\xe3\x82\xb9\xe3\x83\xac\xe3\x83\x83\xe3\x83\x89\xe3\x80\x82\"},"
      R"({"role":"assistant","content":"Un processus a son propre espace d'adressage ; les threads d'un m\u00eame processus le )"
      R"(partagent. fork() copie l'espace (copy-on-write), pthread_create() ajoute un fil d'ex\u00e9cution au processus.\n\n)"
      R"(Exemple : un serveur HTTP peut servir chaque client dans un thread, et isoler un greffon dans un processus."}],)"
      R"("temperature":0.7,"max_tokens":256,"stream":true,"stream_options":{"include_usage":true},)"
      R"("logit_bias":{"50256":-100,"1234":2.5,"42":-1.5},"stop":["\n\nUser:","</s>","<|im_end|>"]})";
  return body;
}

// What the server keeps from a request.
struct ChatRequest {
  std::string model;
  std::vector<std::pair<std::string, std::string>> messages;  // role, content
  double temperature = 1.0;
  int64_t maxTokens = -1;
  bool stream = false;
  bool includeUsage = false;
  std::map<int64_t, double> logitBias;
  std::vector<std::string> stop;
  bool operator==(const ChatRequest&) const = default;
};

[[noreturn]] void bad(const char* what) { throw std::runtime_error(std::string("bad request field: ") + what); }

int64_t tokenId(std::string_view key) {
  int64_t id = 0;
  auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
  if (ec != std::errc() || end != key.data() + key.size()) bad("logit_bias key");
  return id;
}

// The streamed token and its logprobs (valid UTF-8 here; see docs/DEPENDENCIES.md on invalid bytes).
struct Alternative {
  const char* token;
  double logprob;
};
constexpr const char* kId = "chatcmpl-7f3a9c0d5e2b4a18b6c1d2e3f4a5b6c7";
constexpr int64_t kCreated = 1763791200;
constexpr const char* kModel = "llama-125m";
constexpr const char* kContent = " caf\xc3\xa9";  // 6 bytes
constexpr double kLogprob = -0.0312;
constexpr Alternative kTop[5] = {{" caf\xc3\xa9", -0.0312}, {" cafe", -3.871}, {" coffee", -4.25}, {" bar", -6.0625}, {" th\xc3\xa9", -7.5}};

// ---- nlohmann-json ------------------------------------------------------------------------------------

ChatRequest readNlohmann(const nlohmann::json& j) {
  ChatRequest r;
  if (!j.is_object()) bad("body");
  auto field = [&](const char* name) -> const nlohmann::json* {
    auto it = j.find(name);
    return it == j.end() ? nullptr : &*it;
  };
  if (auto* v = field("model")) {
    if (!v->is_string()) bad("model");
    r.model = v->get_ref<const std::string&>();
  }
  const nlohmann::json* messages = field("messages");
  if (!messages || !messages->is_array()) bad("messages");
  for (const nlohmann::json& m : *messages) {
    if (!m.is_object()) bad("message");
    auto role = m.find("role");
    auto content = m.find("content");
    if (role == m.end() || !role->is_string() || content == m.end() || !content->is_string()) bad("message");
    r.messages.emplace_back(role->get_ref<const std::string&>(), content->get_ref<const std::string&>());
  }
  if (auto* v = field("temperature")) {
    if (!v->is_number()) bad("temperature");
    r.temperature = v->get<double>();
  }
  if (auto* v = field("max_tokens")) {
    if (!v->is_number_integer()) bad("max_tokens");
    r.maxTokens = v->get<int64_t>();
  }
  if (auto* v = field("stream")) {
    if (!v->is_boolean()) bad("stream");
    r.stream = v->get<bool>();
  }
  if (auto* v = field("stream_options")) {
    if (!v->is_object()) bad("stream_options");
    auto u = v->find("include_usage");
    if (u != v->end()) {
      if (!u->is_boolean()) bad("include_usage");
      r.includeUsage = u->get<bool>();
    }
  }
  if (auto* v = field("logit_bias")) {
    if (!v->is_object()) bad("logit_bias");
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (!it.value().is_number()) bad("logit_bias value");
      r.logitBias[tokenId(it.key())] = it.value().get<double>();
    }
  }
  if (auto* v = field("stop")) {
    if (v->is_string()) r.stop.push_back(v->get<std::string>());
    else if (v->is_array()) {
      for (const nlohmann::json& s : *v) {
        if (!s.is_string()) bad("stop");
        r.stop.push_back(s.get<std::string>());
      }
    } else bad("stop");
  }
  return r;
}

ChatRequest parseNlohmann(const std::string& body) { return readNlohmann(nlohmann::json::parse(body)); }

// The chat path of runtime/server/ApiServer.cpp today: json for the fields, ordered_json for the template.
ChatRequest parseNlohmannTwice(const std::string& body) {
  ChatRequest r = readNlohmann(nlohmann::json::parse(body));
  const nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(body);
  if (ordered.size() != 8) bad("ordered");
  return r;
}

std::string sseNlohmann(const nlohmann::json& data) {
  return "data: " + data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

nlohmann::json utf8BytesNlohmann(const std::string& text) {
  nlohmann::json bytes = nlohmann::json::array();
  for (unsigned char c : text) bytes.push_back(static_cast<int>(c));
  return bytes;
}

// As ResponseBuilder::addStreamChoices + chunk build it.
nlohmann::json buildChunkNlohmann(bool withLogprobs) {
  nlohmann::json logprobs = nullptr;
  if (withLogprobs) {
    nlohmann::json content = nlohmann::json::array();
    const std::string text = kContent;
    nlohmann::json top = nlohmann::json::array();
    for (const Alternative& t : kTop) {
      const std::string alt = t.token;
      top.push_back({{"token", alt}, {"logprob", t.logprob}, {"bytes", utf8BytesNlohmann(alt)}});
    }
    content.push_back({{"token", text}, {"logprob", kLogprob}, {"bytes", utf8BytesNlohmann(text)}, {"top_logprobs", top}});
    logprobs = {{"content", content}};
  }
  nlohmann::json c = {{"index", 0}, {"logprobs", std::move(logprobs)}, {"finish_reason", nullptr}};
  c["delta"] = nlohmann::json{{"content", std::string(kContent)}};
  nlohmann::json choices = nlohmann::json::array();
  choices.push_back(std::move(c));
  nlohmann::json out = {{"id", std::string(kId)}, {"object", "chat.completion.chunk"}, {"created", kCreated},
                        {"model", std::string(kModel)}, {"choices", std::move(choices)}};
  return out;
}

std::string chunkNlohmann(bool withLogprobs) { return sseNlohmann(buildChunkNlohmann(withLogprobs)); }

// ---- RapidJSON ----------------------------------------------------------------------------------------

using RjValue = rapidjson::Value;

ChatRequest parseRapid(const std::string& body) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseFullPrecisionFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) bad("body");
  ChatRequest r;
  auto field = [&](const char* name) -> const RjValue* {
    auto it = d.FindMember(name);
    return it == d.MemberEnd() ? nullptr : &it->value;
  };
  auto str = [](const RjValue& v) { return std::string(v.GetString(), v.GetStringLength()); };
  if (auto* v = field("model")) {
    if (!v->IsString()) bad("model");
    r.model = str(*v);
  }
  const RjValue* messages = field("messages");
  if (!messages || !messages->IsArray()) bad("messages");
  for (const RjValue& m : messages->GetArray()) {
    if (!m.IsObject()) bad("message");
    auto role = m.FindMember("role");
    auto content = m.FindMember("content");
    if (role == m.MemberEnd() || !role->value.IsString() || content == m.MemberEnd() || !content->value.IsString()) bad("message");
    r.messages.emplace_back(str(role->value), str(content->value));
  }
  if (auto* v = field("temperature")) {
    if (!v->IsNumber()) bad("temperature");
    r.temperature = v->GetDouble();
  }
  if (auto* v = field("max_tokens")) {
    if (!v->IsInt64()) bad("max_tokens");
    r.maxTokens = v->GetInt64();
  }
  if (auto* v = field("stream")) {
    if (!v->IsBool()) bad("stream");
    r.stream = v->GetBool();
  }
  if (auto* v = field("stream_options")) {
    if (!v->IsObject()) bad("stream_options");
    auto u = v->FindMember("include_usage");
    if (u != v->MemberEnd()) {
      if (!u->value.IsBool()) bad("include_usage");
      r.includeUsage = u->value.GetBool();
    }
  }
  if (auto* v = field("logit_bias")) {
    if (!v->IsObject()) bad("logit_bias");
    for (const auto& m : v->GetObject()) {
      if (!m.value.IsNumber()) bad("logit_bias value");
      r.logitBias[tokenId({m.name.GetString(), m.name.GetStringLength()})] = m.value.GetDouble();
    }
  }
  if (auto* v = field("stop")) {
    if (v->IsString()) r.stop.push_back(str(*v));
    else if (v->IsArray()) {
      for (const RjValue& s : v->GetArray()) {
        if (!s.IsString()) bad("stop");
        r.stop.push_back(str(s));
      }
    } else bad("stop");
  }
  return r;
}

std::string sseFrom(const rapidjson::StringBuffer& sb) {
  std::string out;
  out.reserve(sb.GetSize() + 8);
  out.append("data: ");
  out.append(sb.GetString(), sb.GetSize());
  out.append("\n\n");
  return out;
}

// Writer, SAX style: no DOM at all.
template <class W>
void bytesRapid(W& w, std::string_view text) {
  w.StartArray();
  for (unsigned char c : text) w.Int(c);
  w.EndArray();
}

std::string chunkRapidWriter(bool withLogprobs) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  const std::string text = kContent;
  w.StartObject();
  w.Key("id");
  w.String(kId);
  w.Key("object");
  w.String("chat.completion.chunk");
  w.Key("created");
  w.Int64(kCreated);
  w.Key("model");
  w.String(kModel);
  w.Key("choices");
  w.StartArray();
  w.StartObject();
  w.Key("index");
  w.Int(0);
  w.Key("delta");
  w.StartObject();
  w.Key("content");
  w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  w.EndObject();
  w.Key("logprobs");
  if (withLogprobs) {
    w.StartObject();
    w.Key("content");
    w.StartArray();
    w.StartObject();
    w.Key("token");
    w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
    w.Key("logprob");
    w.Double(kLogprob);
    w.Key("bytes");
    bytesRapid(w, text);
    w.Key("top_logprobs");
    w.StartArray();
    for (const Alternative& t : kTop) {
      const std::string alt = t.token;
      w.StartObject();
      w.Key("token");
      w.String(alt.data(), static_cast<rapidjson::SizeType>(alt.size()));
      w.Key("logprob");
      w.Double(t.logprob);
      w.Key("bytes");
      bytesRapid(w, alt);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    w.EndArray();
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("finish_reason");
  w.Null();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return sseFrom(sb);
}

// A Document built first (like for like with nlohmann's DOM), then written.
RjValue bytesRapidDom(std::string_view text, rapidjson::Document::AllocatorType& a) {
  RjValue bytes(rapidjson::kArrayType);
  for (unsigned char c : text) bytes.PushBack(static_cast<int>(c), a);
  return bytes;
}

RjValue stringRapidDom(std::string_view s, rapidjson::Document::AllocatorType& a) {
  return RjValue(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);  // copied, as a std::string would be
}

std::string chunkRapidDocument(bool withLogprobs) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  const std::string text = kContent;
  RjValue logprobs;  // null
  if (withLogprobs) {
    RjValue top(rapidjson::kArrayType);
    for (const Alternative& t : kTop) {
      const std::string alt = t.token;
      RjValue e(rapidjson::kObjectType);
      e.AddMember("token", stringRapidDom(alt, a), a);
      e.AddMember("logprob", t.logprob, a);
      e.AddMember("bytes", bytesRapidDom(alt, a), a);
      top.PushBack(e, a);
    }
    RjValue entry(rapidjson::kObjectType);
    entry.AddMember("token", stringRapidDom(text, a), a);
    entry.AddMember("logprob", kLogprob, a);
    entry.AddMember("bytes", bytesRapidDom(text, a), a);
    entry.AddMember("top_logprobs", top, a);
    RjValue content(rapidjson::kArrayType);
    content.PushBack(entry, a);
    logprobs.SetObject();
    logprobs.AddMember("content", content, a);
  }
  RjValue delta(rapidjson::kObjectType);
  delta.AddMember("content", stringRapidDom(text, a), a);
  RjValue c(rapidjson::kObjectType);
  c.AddMember("index", 0, a);
  c.AddMember("delta", delta, a);
  c.AddMember("logprobs", logprobs, a);
  c.AddMember("finish_reason", RjValue(), a);
  RjValue choices(rapidjson::kArrayType);
  choices.PushBack(c, a);
  d.AddMember("id", stringRapidDom(kId, a), a);
  d.AddMember("object", "chat.completion.chunk", a);
  d.AddMember("created", static_cast<int64_t>(kCreated), a);
  d.AddMember("model", stringRapidDom(kModel, a), a);
  d.AddMember("choices", choices, a);
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  d.Accept(w);
  return sseFrom(sb);
}

// ---- simdjson -----------------------------------------------------------------------------------------

#ifdef PAGEDC_BENCH_HAVE_SIMDJSON
ChatRequest parseSimd(const std::string& body) {
  static thread_local simdjson::dom::parser parser;  // one per thread, reused: the library's intended use
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS) bad("body");  // copies into a padded buffer
  simdjson::dom::object root;
  if (doc.get(root) != simdjson::SUCCESS) bad("body");
  ChatRequest r;
  simdjson::dom::element v;
  std::string_view sv;
  if (root["model"].get(v) == simdjson::SUCCESS) {
    if (v.get(sv) != simdjson::SUCCESS) bad("model");
    r.model = sv;
  }
  simdjson::dom::array messages;
  if (root["messages"].get(messages) != simdjson::SUCCESS) bad("messages");
  for (simdjson::dom::element m : messages) {
    std::string_view role, content;
    if (m["role"].get(role) != simdjson::SUCCESS || m["content"].get(content) != simdjson::SUCCESS) bad("message");
    r.messages.emplace_back(role, content);
  }
  if (root["temperature"].get(v) == simdjson::SUCCESS) {
    if (v.get(r.temperature) != simdjson::SUCCESS) bad("temperature");  // accepts integers too
  }
  if (root["max_tokens"].get(v) == simdjson::SUCCESS) {
    if (v.get(r.maxTokens) != simdjson::SUCCESS) bad("max_tokens");
  }
  if (root["stream"].get(v) == simdjson::SUCCESS) {
    if (v.get(r.stream) != simdjson::SUCCESS) bad("stream");
  }
  if (root["stream_options"].get(v) == simdjson::SUCCESS) {
    simdjson::dom::object o;
    if (v.get(o) != simdjson::SUCCESS) bad("stream_options");
    simdjson::dom::element u;
    if (o["include_usage"].get(u) == simdjson::SUCCESS && u.get(r.includeUsage) != simdjson::SUCCESS) bad("include_usage");
  }
  if (root["logit_bias"].get(v) == simdjson::SUCCESS) {
    simdjson::dom::object o;
    if (v.get(o) != simdjson::SUCCESS) bad("logit_bias");
    for (auto [key, value] : o) {
      double bias = 0;
      if (value.get(bias) != simdjson::SUCCESS) bad("logit_bias value");
      r.logitBias[tokenId(key)] = bias;
    }
  }
  if (root["stop"].get(v) == simdjson::SUCCESS) {
    simdjson::dom::array list;
    if (v.get(sv) == simdjson::SUCCESS) r.stop.emplace_back(sv);
    else if (v.get(list) == simdjson::SUCCESS) {
      for (simdjson::dom::element s : list) {
        if (s.get(sv) != simdjson::SUCCESS) bad("stop");
        r.stop.emplace_back(sv);
      }
    } else bad("stop");
  }
  return r;
}
#endif

// ---- harness ------------------------------------------------------------------------------------------

struct Case {
  std::string workload;
  std::string library;
  std::function<size_t()> op;  // returns something derived from the result, summed so nothing is elided
  size_t iters = 0;
  std::vector<double> nsPerOp;
  size_t outputBytes = 0;
};

volatile size_t gSink = 0;

double runBatch(Case& c, size_t iters) {
  size_t sink = 0;
  const auto t0 = Clock::now();
  for (size_t i = 0; i < iters; ++i) sink += c.op();
  const auto t1 = Clock::now();
  gSink = gSink + sink;
  return std::chrono::duration<double, std::nano>(t1 - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string loadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string utcNow() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::gmtime(&t));
  return buf;
}

nlohmann::json eventJson(const std::string& sse) {
  if (sse.rfind("data: ", 0) != 0 || sse.size() < 8 || sse.compare(sse.size() - 2, 2, "\n\n") != 0) throw std::runtime_error("not an SSE event");
  return nlohmann::json::parse(sse.substr(6, sse.size() - 8));
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 11;
  double ms = 20;
  int batch = 256;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--ms" && i + 1 < argc) ms = std::atof(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) batch = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--reps R] [--ms M] [--batch B]\n", argv[0]);
      return 2;
    }
  }
  if (reps < 1 || ms <= 0 || batch < 1) {
    std::fprintf(stderr, "bad arguments\n");
    return 2;
  }

  const std::string& body = requestBody();
  std::vector<Case> cases;
  auto requestSize = [](const ChatRequest& r) { return r.model.size() + r.messages.size() + r.stop.size() + r.logitBias.size(); };
  cases.push_back({"parse", "nlohmann-json", [&] { return requestSize(parseNlohmann(body)); }});
  cases.push_back({"parse", "nlohmann-json, json + ordered_json (chat path today)", [&] { return requestSize(parseNlohmannTwice(body)); }});
  cases.push_back({"parse", "RapidJSON Document", [&] { return requestSize(parseRapid(body)); }});
#ifdef PAGEDC_BENCH_HAVE_SIMDJSON
  cases.push_back({"parse", "simdjson DOM (parser reused)", [&] { return requestSize(parseSimd(body)); }});
#endif
  for (bool lp : {false, true}) {
    const std::string w = lp ? "logprobs" : "chunk";
    cases.push_back({w, "nlohmann-json", [lp] { return chunkNlohmann(lp).size(); }});
    // Where nlohmann's time goes: the same DOM built once, only dumped (not an option for the server).
    cases.push_back({w, "nlohmann-json, dump only (DOM prebuilt)", [dom = buildChunkNlohmann(lp)] { return sseNlohmann(dom).size(); }});
    cases.push_back({w, "RapidJSON Document + Writer", [lp] { return chunkRapidDocument(lp).size(); }});
    cases.push_back({w, "RapidJSON Writer (no DOM)", [lp] { return chunkRapidWriter(lp).size(); }});
  }

  // Same results from every candidate.
  const ChatRequest reference = parseNlohmann(body);
  if (!(parseNlohmannTwice(body) == reference) || !(parseRapid(body) == reference)) throw std::runtime_error("parse results differ");
#ifdef PAGEDC_BENCH_HAVE_SIMDJSON
  if (!(parseSimd(body) == reference)) throw std::runtime_error("simdjson parse result differs");
#endif
  if (reference.messages.size() != 3 || reference.logitBias.size() != 3 || reference.stop.size() != 3 || !reference.includeUsage)
    throw std::runtime_error("request not read fully");
  for (bool lp : {false, true}) {
    const nlohmann::json ref = eventJson(chunkNlohmann(lp));
    if (eventJson(chunkRapidDocument(lp)) != ref || eventJson(chunkRapidWriter(lp)) != ref)
      throw std::runtime_error(std::string("serialized chunks differ") + (lp ? " (logprobs)" : ""));
  }

  std::printf("JSON libraries for pagedc serve: nlohmann-json %d.%d.%d, RapidJSON %s", NLOHMANN_JSON_VERSION_MAJOR, NLOHMANN_JSON_VERSION_MINOR,
              NLOHMANN_JSON_VERSION_PATCH, RAPIDJSON_VERSION_STRING);
#ifdef PAGEDC_BENCH_HAVE_SIMDJSON
  std::printf(", simdjson %d.%d.%d (implementation %s)", simdjson::SIMDJSON_VERSION_MAJOR, simdjson::SIMDJSON_VERSION_MINOR, simdjson::SIMDJSON_VERSION_REVISION, simdjson::get_active_implementation()->name().c_str());
#endif
  std::printf("\nrequest body %zu bytes; chunk event %zu bytes; logprobs chunk event %zu bytes\n", body.size(), chunkNlohmann(false).size(),
              chunkNlohmann(true).size());
  std::printf("start %s UTC, load average %s; %d rounds of ~%.0f ms per case\n", utcNow().c_str(), loadAverage().c_str(), reps, ms);

  // Calibrate: iterations for a batch of about `ms` milliseconds (after a warm-up).
  for (Case& c : cases) {
    size_t iters = 16;
    runBatch(c, iters);
    for (;;) {
      const double ns = runBatch(c, iters);
      if (ns >= ms * 1e6 * 0.5 || iters > (size_t{1} << 30)) {
        c.iters = std::max<size_t>(1, static_cast<size_t>(static_cast<double>(iters) * ms * 1e6 / ns));
        break;
      }
      iters *= 4;
    }
    c.outputBytes = c.op();
  }
  for (int r = 0; r < reps; ++r)
    for (Case& c : cases) c.nsPerOp.push_back(runBatch(c, c.iters) / static_cast<double>(c.iters));

  std::printf("end   %s UTC, load average %s\n\n", utcNow().c_str(), loadAverage().c_str());
  std::printf("%-9s %-52s %12s %12s %10s\n", "workload", "library", "median ns", "min ns", "vs nlohmann");
  double nlohmann = 0;
  std::map<std::string, double> med;
  for (const Case& c : cases) {
    const double m = median(c.nsPerOp);
    med[c.workload + "/" + c.library] = m;
    if (c.library == "nlohmann-json") nlohmann = m;
    std::printf("%-9s %-52s %12.0f %12.0f %9.2fx\n", c.workload.c_str(), c.library.c_str(), m, *std::min_element(c.nsPerOp.begin(), c.nsPerOp.end()),
                m / nlohmann);
  }

  // Context: per decode step, every one of `batch` streams gets one chunk event.
  std::printf("\nper decode step with %d streams (one chunk event each), median:\n", batch);
  for (const char* w : {"chunk", "logprobs"}) {
    for (const char* lib : {"nlohmann-json", "RapidJSON Writer (no DOM)"}) {
      const double perStepUs = med[std::string(w) + "/" + lib] * batch * 1e-3;
      std::printf("  %-9s %-28s %8.1f us per step = %5.1f %% of a 1 ms step, %5.2f %% of a 10 ms step\n", w, lib, perStepUs, perStepUs / 10.0,
                  perStepUs / 100.0);
    }
  }
  return 0;
}
