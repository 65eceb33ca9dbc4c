// HTTP server library comparison for `pagedc serve` (docs/DEPENDENCIES.md, "HTTP server").
//
// For each candidate (cpp-httplib, GNU libmicrohttpd, Boost.Beast) a minimal server on 127.0.0.1 (an
// ephemeral port) implements the two shapes the OpenAI-compatible server needs:
//   POST /json    parse nothing, reply a 300-byte completion-like JSON body;
//   POST /stream  server-sent events (text/event-stream, chunked): 64 `data: {...}\n\n` events of about
//                 150 bytes each, then `data: [DONE]`. The events come from one "engine" thread that,
//                 every 1 ms, produces one token for every open stream (a batched decode step); the HTTP
//                 side waits for them on a condition variable.
// A load generator in this binary (blocking POSIX sockets, HTTP/1.1 keep-alive, one thread per client
// connection) measures, side by side, with all three servers started at once and each test run for
// the three libraries back to back:
//   /json at concurrency 1, 16, 64: requests/s, p50 / p99 latency, process CPU per request;
//   /stream with 64 concurrent clients (each opening --rounds streams in a row): wall time, events/s,
//     time to first event p50 / p99, process CPU;
//   disconnect: a client reads 5 events and closes; time from close() until the server's code learns of
//     it (write failure / completion callback) and tells the engine to stop.
// Server threads: one thread per connection in all three (cpp-httplib: a ThreadPool of --threads workers,
// which must be at least the number of keep-alive connections; libmicrohttpd:
// MHD_USE_THREAD_PER_CONNECTION plus its listening thread; Beast: synchronous, an accept thread plus a
// thread per connection), plus the shared engine thread. cpp-httplib runs twice: as shipped, and with
// its listen backlog (5 in Debian's 0.11.4) raised to SOMAXCONN, as libmicrohttpd and Asio use.
//
// Usage: bench_http_libraries [--duration S] [--rounds R] [--threads N] [--trials T]

#include <httplib.h>
#include <microhttpd.h>

#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kEvents = 64;

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

double cpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// ---- payloads ---------------------------------------------------------------------------------------

const std::string& jsonReply() {
  static const std::string body = [] {
    std::string s =
        R"({"id":"cmpl-7f3a9c0d5e2b4a18","object":"text_completion","created":1700000000,"model":"bench",)"
        R"("choices":[{"index":0,"text":" the quick brown fox jumps over the lazy dog","logprobs":null,)"
        R"("finish_reason":"length"}],"usage":{"prompt_tokens":8,"completion_tokens":16,"total_tokens":24}})";
    const std::string pad = R"(,"pad":")";  // pad inside the object to 300 bytes
    s.insert(s.size() - 1, pad + std::string(300 - s.size() - pad.size() - 1, ' ') + "\"");
    return s;
  }();
  return body;
}

void appendEvent(std::string& out, int i) {
  char buf[256];
  int n = std::snprintf(buf, sizeof buf,
                        "data: {\"id\":\"cmpl-7f3a9c0d5e2b4a18\",\"object\":\"text_completion\","
                        "\"created\":1700000000,\"model\":\"bench\",\"choices\":[{\"index\":0,"
                        "\"text\":\" tok%03d\",\"finish_reason\":null}]}\n\n",
                        i);
  out.append(buf, static_cast<size_t>(n));
}

constexpr std::string_view kDone = "data: [DONE]\n\n";

// ---- the engine: one thread producing a token per open stream per 1 ms step -------------------------

std::atomic<int64_t> gCancelNs{0};  // when a server last told the engine to stop a stream

class TokenStream {
 public:
  // HTTP side: blocks until at least one event is ready and appends all ready events (and [DONE] after
  // the last). Returns false once [DONE] has been handed out.
  bool next(std::string& out) {
    std::unique_lock lock(m_);
    if (doneSent_) return false;
    cv_.wait(lock, [&] { return sent_ < produced_; });
    while (sent_ < produced_) appendEvent(out, sent_++);
    if (sent_ == kEvents) {
      out += kDone;
      doneSent_ = true;
    }
    return true;
  }
  // HTTP side: the client is gone; the engine drops the stream at its next step.
  void cancel() {
    if (!cancelled_.exchange(true)) gCancelNs = nowNs();
  }
  bool finished() {
    std::lock_guard lock(m_);
    return doneSent_;
  }

 private:
  friend class Engine;
  std::mutex m_;
  std::condition_variable cv_;
  int produced_ = 0, sent_ = 0;
  bool doneSent_ = false;
  std::atomic<bool> cancelled_{false};
};

class Engine {
 public:
  Engine() : thread_([this] { run(); }) {}
  ~Engine() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  std::shared_ptr<TokenStream> open() {
    auto s = std::make_shared<TokenStream>();
    {
      std::lock_guard lock(m_);
      active_.push_back(s);
    }
    cv_.notify_one();
    return s;
  }

 private:
  void run() {
    std::unique_lock lock(m_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !active_.empty(); });
      if (stop_) return;
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      lock.lock();
      std::erase_if(active_, [](const std::shared_ptr<TokenStream>& s) {
        if (s->cancelled_) return true;
        bool last;
        {
          std::lock_guard sl(s->m_);
          last = ++s->produced_ == kEvents;
        }
        s->cv_.notify_one();
        return last;
      });
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<TokenStream>> active_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members above exist
};

// ---- cpp-httplib --------------------------------------------------------------------------------------

constexpr int kHttplibBegin = __LINE__;
class HttplibServer {
 public:
  // raiseBacklog: cpp-httplib 0.11 listens with a backlog of 5 (hard-coded in the compiled library), so
  // a burst of connections waits for SYN retransmits (1 s, 3 s); listen() again with a larger backlog.
  HttplibServer(Engine& engine, size_t threads, bool raiseBacklog) {
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    server_.set_tcp_nodelay(true);
    server_.set_keep_alive_max_count(1000000);  // Debian's build defaults to 5 requests per connection
    server_.set_payload_max_length(1 << 20);
    server_.Post("/json", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(jsonReply(), "application/json");
    });
    server_.Post("/stream", [&engine](const httplib::Request&, httplib::Response& res) {
      auto stream = engine.open();
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream",
          [stream](size_t, httplib::DataSink& sink) {
            std::string out;
            if (!stream->next(out)) {
              sink.done();
              return true;
            }
            if (!sink.write(out.data(), out.size())) {
              stream->cancel();
              return false;
            }
            return true;
          },
          [stream](bool success) {
            if (!success) stream->cancel();
          });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (raiseBacklog) server_.raiseBacklog();
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~HttplibServer() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }

 private:
  struct Server : httplib::Server {
    void raiseBacklog() { ::listen(svr_sock_, SOMAXCONN); }
  } server_;
  std::thread thread_;
  int port_ = 0;
};
constexpr int kHttplibEnd = __LINE__;

// ---- GNU libmicrohttpd --------------------------------------------------------------------------------

constexpr int kMhdBegin = __LINE__;
class MhdServer {
 public:
  explicit MhdServer(Engine& engine) : engine_(engine) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    daemon_ = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                   MHD_USE_ERROR_LOG,
                               0, nullptr, nullptr, &MhdServer::access, this, MHD_OPTION_SOCK_ADDR,
                               reinterpret_cast<sockaddr*>(&addr), MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                               MHD_OPTION_END);
    if (!daemon_) throw std::runtime_error("MHD_start_daemon failed");
    port_ = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT)->port;
  }
  ~MhdServer() { MHD_stop_daemon(daemon_); }
  int port() const { return port_; }

 private:
  struct StreamCtx {
    std::shared_ptr<TokenStream> stream;
    std::string pending;
    bool ended = false;
  };

  static MHD_Result access(void* cls, MHD_Connection* connection, const char* url, const char*, const char*,
                           const char*, size_t* upload_data_size, void** con_cls) {
    static int started;
    if (*con_cls == nullptr) {  // headers only; the body (if any) follows in later calls
      const char* length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Content-Length");
      if (length && std::strtoull(length, nullptr, 10) > (1u << 20)) return MHD_NO;  // body-size limit
      *con_cls = &started;
      return MHD_YES;
    }
    if (*upload_data_size != 0) {  // discard the body
      *upload_data_size = 0;
      return MHD_YES;
    }
    auto* self = static_cast<MhdServer*>(cls);
    MHD_Response* response;
    if (std::strcmp(url, "/json") == 0) {
      response = MHD_create_response_from_buffer(jsonReply().size(), const_cast<char*>(jsonReply().data()),
                                                 MHD_RESPMEM_PERSISTENT);
      MHD_add_response_header(response, "Content-Type", "application/json");
    } else if (std::strcmp(url, "/stream") == 0) {
      auto* ctx = new StreamCtx{self->engine_.open(), {}, false};
      response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, &MhdServer::read, ctx,
                                                   &MhdServer::release);
      MHD_add_response_header(response, "Content-Type", "text/event-stream");
      MHD_add_response_header(response, "Cache-Control", "no-cache");
    } else {
      response = MHD_create_response_from_buffer(0, nullptr, MHD_RESPMEM_PERSISTENT);
      MHD_Result ret = MHD_queue_response(connection, MHD_HTTP_NOT_FOUND, response);
      MHD_destroy_response(response);
      return ret;
    }
    MHD_Result ret = MHD_queue_response(connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return ret;
  }

  // Called on the connection's own thread whenever it can send; blocking here is allowed in
  // thread-per-connection mode.
  static ssize_t read(void* cls, uint64_t, char* buf, size_t max) {
    auto* ctx = static_cast<StreamCtx*>(cls);
    if (ctx->pending.empty() && !ctx->stream->next(ctx->pending)) {
      ctx->ended = true;
      return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = std::min(max, ctx->pending.size());
    std::memcpy(buf, ctx->pending.data(), n);
    ctx->pending.erase(0, n);
    return static_cast<ssize_t>(n);
  }

  // The response is destroyed: at the end of the stream, or when sending failed (client gone).
  static void release(void* cls) {
    auto* ctx = static_cast<StreamCtx*>(cls);
    if (!ctx->ended) ctx->stream->cancel();
    delete ctx;
  }

  Engine& engine_;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
};
constexpr int kMhdEnd = __LINE__;

// ---- Boost.Beast (synchronous, a thread per connection) -----------------------------------------------

constexpr int kBeastBegin = __LINE__;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class BeastServer {
 public:
  explicit BeastServer(Engine& engine)
      : engine_(engine), acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    acceptThread_ = std::thread([this] { acceptLoop(); });
  }
  ~BeastServer() {
    stopping_ = true;
    {  // wake the blocking accept()
      tcp::socket s(ioc_);
      beast::error_code ec;
      s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)), ec);
    }
    acceptThread_.join();
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return sessions_ == 0; });
  }
  int port() const { return port_; }

 private:
  void acceptLoop() {
    for (;;) {
      tcp::socket socket(ioc_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (stopping_) return;
      if (ec) continue;
      {
        std::lock_guard lock(m_);
        ++sessions_;
      }
      std::thread([this, s = std::move(socket)]() mutable {
        session(s);
        std::lock_guard lock(m_);
        if (--sessions_ == 0) cv_.notify_all();
      }).detach();
    }
  }

  void session(tcp::socket& socket) {
    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      http::read(socket, buffer, parser, ec);
      if (ec) break;
      const auto& req = parser.get();
      if (req.target() == "/json") {
        http::response<http::string_body> res{http::status::ok, req.version()};
        res.set(http::field::content_type, "application/json");
        res.keep_alive(req.keep_alive());
        res.body() = jsonReply();
        res.prepare_payload();
        http::write(socket, res, ec);
      } else if (req.target() == "/stream") {
        http::response<http::empty_body> res{http::status::ok, req.version()};
        res.set(http::field::content_type, "text/event-stream");
        res.set(http::field::cache_control, "no-cache");
        res.keep_alive(req.keep_alive());
        res.chunked(true);
        http::response_serializer<http::empty_body> serializer{res};
        http::write_header(socket, serializer, ec);
        auto stream = engine_.open();
        std::string out;
        while (!ec && stream->next(out)) {
          net::write(socket, http::make_chunk(net::buffer(out)), ec);
          out.clear();
        }
        if (ec) stream->cancel();
        else net::write(socket, http::make_chunk_last(), ec);
      } else {
        http::response<http::empty_body> res{http::status::not_found, req.version()};
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        http::write(socket, res, ec);
      }
      if (ec || !req.keep_alive()) break;
    }
    socket.shutdown(tcp::socket::shutdown_send, ec);
  }

  Engine& engine_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::thread acceptThread_;
  std::atomic<bool> stopping_{false};
  std::mutex m_;
  std::condition_variable cv_;
  int sessions_ = 0;
  int port_ = 0;
};
constexpr int kBeastEnd = __LINE__;

// ---- load generator: a minimal HTTP/1.1 keep-alive client ---------------------------------------------

class Client {
 public:
  enum class Result { Ok, Stopped, Error };
  explicit Client(int port) : port_(port) {}
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
    pos_ = 0;
  }

  // Sends `request` and reads one response; `onBody` gets the decoded body as it arrives and returns
  // false to stop reading (the result is then Stopped and the connection is left open for the caller
  // to close). A keep-alive connection the server closed is reopened once.
  Result roundtrip(std::string_view request, const std::function<bool(std::string_view)>& onBody) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool fresh = fd_ < 0;
      if (fresh && !connect()) return Result::Error;
      if (!sendAll(request)) {
        close();
        if (!fresh) continue;
        return Result::Error;
      }
      std::string line;
      if (!readLine(line)) {
        close();
        if (!fresh) continue;
        return Result::Error;
      }
      return readResponse(line, onBody);
    }
    return Result::Error;
  }

 private:
  bool connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close();
      return false;
    }
    return true;
  }
  bool sendAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  bool fill() {
    if (pos_ > 0 && pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    char tmp[16384];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  bool ensure(size_t n) {
    while (buf_.size() - pos_ < n)
      if (!fill()) return false;
    return true;
  }
  bool readLine(std::string& line) {
    for (;;) {
      size_t end = buf_.find("\r\n", pos_);
      if (end != std::string::npos) {
        line.assign(buf_, pos_, end - pos_);
        pos_ = end + 2;
        return true;
      }
      if (!fill()) return false;
    }
  }
  static bool startsWithNoCase(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
    return true;
  }
  static std::string_view value(std::string_view line) {
    size_t colon = line.find(':');
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    return v;
  }

  Result readResponse(const std::string& statusLine, const std::function<bool(std::string_view)>& onBody) {
    bool ok = statusLine.size() >= 12 && statusLine.compare(9, 3, "200") == 0;
    bool chunked = false, closeAfter = false;
    size_t length = 0;
    std::string line;
    for (;;) {
      if (!readLine(line)) return close(), Result::Error;
      if (line.empty()) break;
      if (startsWithNoCase(line, "content-length:")) length = std::strtoull(value(line).data(), nullptr, 10);
      else if (startsWithNoCase(line, "transfer-encoding:")) chunked = value(line).find("chunked") != std::string_view::npos;
      else if (startsWithNoCase(line, "connection:")) closeAfter = startsWithNoCase(value(line), "close");
    }
    if (chunked) {
      for (;;) {
        if (!readLine(line)) return close(), Result::Error;
        size_t size = std::strtoull(line.c_str(), nullptr, 16);
        if (size == 0) {
          do {  // trailers, then the empty line
            if (!readLine(line)) return close(), Result::Error;
          } while (!line.empty());
          break;
        }
        if (!ensure(size + 2)) return close(), Result::Error;
        bool more = onBody(std::string_view(buf_).substr(pos_, size));
        pos_ += size + 2;
        if (!more) return Result::Stopped;
      }
    } else {
      if (!ensure(length)) return close(), Result::Error;
      onBody(std::string_view(buf_).substr(pos_, length));
      pos_ += length;
    }
    buf_.erase(0, pos_);
    pos_ = 0;
    if (closeAfter) close();
    return ok ? Result::Ok : Result::Error;
  }

  int port_;
  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;
};

std::string postRequest(std::string_view path) {
  static const std::string body =
      R"({"model":"bench","prompt":"The quick brown fox jumps over the lazy dog. Once upon a time, in a land)"
      R"( far away, there lived a","max_tokens":64,"temperature":0.7,"top_p":0.95,"stream":true})";
  return "POST " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Counts "\n\n" event terminators across chunk boundaries.
struct EventCounter {
  int events = 0;
  bool lastNewline = false;
  void feed(std::string_view d) {
    for (char c : d) {
      if (c == '\n' && lastNewline) {
        ++events;
        lastNewline = false;
      } else {
        lastNewline = c == '\n';
      }
    }
  }
};

struct JsonResult {
  double rps = 0, p50us = 0, p99us = 0, cpuUsPerReq = 0;
  uint64_t errors = 0;
};

JsonResult benchJson(int port, int concurrency, double seconds) {
  const std::string request = postRequest("/json");
  auto start = Clock::now();
  auto measureFrom = start + std::chrono::milliseconds(300);
  auto end = measureFrom + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<std::vector<double>> latencies(static_cast<size_t>(concurrency));
  std::atomic<uint64_t> errors{0};
  double cpu0 = 0;
  std::atomic<bool> cpuTaken{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      Client client(port);
      auto& lat = latencies[static_cast<size_t>(t)];
      for (;;) {
        auto t0 = Clock::now();
        if (t0 >= end) break;
        if (t0 >= measureFrom && !cpuTaken.exchange(true)) cpu0 = cpuSeconds();
        auto r = client.roundtrip(request, [](std::string_view) { return true; });
        auto t1 = Clock::now();
        if (r != Client::Result::Ok) {
          ++errors;
          client.close();
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        if (t0 >= measureFrom && t1 <= end) lat.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  double cpu1 = cpuSeconds();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  JsonResult r;
  r.rps = static_cast<double>(all.size()) / seconds;
  r.cpuUsPerReq = all.empty() ? 0 : (cpu1 - cpu0) * 1e6 / static_cast<double>(all.size());
  r.p50us = percentile(all, 0.50);
  r.p99us = percentile(all, 0.99);
  r.errors = errors;
  return r;
}

struct StreamResult {
  double wallS = 0, eventsPerS = 0, ttfeP50Ms = 0, ttfeP99Ms = 0, cpuS = 0;
  uint64_t errors = 0;
};

StreamResult benchStream(int port, int clients, int rounds) {
  const std::string request = postRequest("/stream");
  std::vector<std::vector<double>> ttfe(static_cast<size_t>(clients));
  std::atomic<uint64_t> errors{0}, events{0};
  std::latch ready(clients + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      Client client(port);
      ready.arrive_and_wait();
      for (int r = 0; r < rounds; ++r) {
        EventCounter counter;
        auto t0 = Clock::now();
        double first = -1;
        auto res = client.roundtrip(request, [&](std::string_view d) {
          counter.feed(d);
          if (first < 0 && counter.events > 0)
            first = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          return true;
        });
        if (res != Client::Result::Ok || counter.events != kEvents + 1) {
          ++errors;
          client.close();
        }
        events += static_cast<uint64_t>(std::max(0, std::min(counter.events, kEvents)));
        if (first >= 0) ttfe[static_cast<size_t>(t)].push_back(first);
      }
    });
  }
  double cpu0 = cpuSeconds();
  auto t0 = Clock::now();
  ready.arrive_and_wait();
  for (auto& t : threads) t.join();
  StreamResult r;
  r.wallS = std::chrono::duration<double>(Clock::now() - t0).count();
  r.cpuS = cpuSeconds() - cpu0;
  r.eventsPerS = static_cast<double>(events) / r.wallS;
  std::vector<double> all;
  for (auto& v : ttfe) all.insert(all.end(), v.begin(), v.end());
  r.ttfeP50Ms = percentile(all, 0.50);
  r.ttfeP99Ms = percentile(all, 0.99);
  r.errors = errors;
  return r;
}

struct DisconnectResult {
  double medianMs = 0, maxMs = 0;
  int detected = 0, trials = 0;
};

DisconnectResult benchDisconnect(int port, int trials) {
  const std::string request = postRequest("/stream");
  std::vector<double> ms;
  DisconnectResult r;
  r.trials = trials;
  for (int i = 0; i < trials; ++i) {
    gCancelNs = 0;
    Client client(port);
    EventCounter counter;
    auto res = client.roundtrip(request, [&](std::string_view d) {
      counter.feed(d);
      return counter.events < 5;
    });
    int64_t closedAt = nowNs();
    client.close();
    if (res != Client::Result::Stopped) continue;
    auto deadline = Clock::now() + std::chrono::seconds(2);
    while (gCancelNs == 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::microseconds(50));
    if (gCancelNs != 0) {
      ++r.detected;
      ms.push_back(static_cast<double>(gCancelNs - closedAt) * 1e-6);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!ms.empty()) {
    r.maxMs = *std::max_element(ms.begin(), ms.end());
    r.medianMs = percentile(ms, 0.5);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2.0;
  int rounds = 4, trials = 10;
  size_t httplibThreads = 72;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--duration") seconds = std::atof(argv[i + 1]);
    else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    else if (a == "--threads") httplibThreads = static_cast<size_t>(std::atoi(argv[i + 1]));
    else if (a == "--trials") trials = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--duration S] [--rounds R] [--threads N] [--trials T]\n", argv[0]);
      return 2;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);

  std::string probe;
  appendEvent(probe, 0);
  std::printf("payloads: /json reply %zu bytes, SSE event %zu bytes, %d events + [DONE] per stream, engine step 1 ms\n",
              jsonReply().size(), probe.size(), kEvents);
  std::printf("server threads: cpp-httplib %s ThreadPool(%zu); libmicrohttpd %s thread per connection + listener; "
              "Boost.Beast (Boost %d.%d) sync, thread per connection + acceptor; plus 1 engine thread\n"
              "server lines: the server class (routes, SSE, start/stop), counted from __LINE__\n",
              CPPHTTPLIB_VERSION, httplibThreads, MHD_get_version(), BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000);

  Engine engine;
  HttplibServer httplibServer(engine, httplibThreads, false);
  HttplibServer httplibBacklogServer(engine, httplibThreads, true);
  MhdServer mhdServer(engine);
  BeastServer beastServer(engine);
  struct Lib {
    const char* name;
    int port;
    int lines;
  };
  const int httplibLines = kHttplibEnd - kHttplibBegin - 1;
  const Lib libs[] = {{"cpp-httplib", httplibServer.port(), httplibLines},
                      {"cpp-httplib, backlog raised", httplibBacklogServer.port(), httplibLines},
                      {"libmicrohttpd", mhdServer.port(), kMhdEnd - kMhdBegin - 1},
                      {"Boost.Beast", beastServer.port(), kBeastEnd - kBeastBegin - 1}};

  // Warm-up: a few requests of each kind on each server.
  for (const auto& lib : libs) {
    benchJson(lib.port, 4, 0.2);
    benchStream(lib.port, 4, 1);
  }

  const int concurrencies[] = {1, 16, 64};
  constexpr int kLibs = sizeof libs / sizeof libs[0];
  JsonResult json[kLibs][3];
  for (int c = 0; c < 3; ++c)
    for (int l = 0; l < kLibs; ++l) json[l][c] = benchJson(libs[l].port, concurrencies[c], seconds);
  StreamResult stream[kLibs];
  for (int l = 0; l < kLibs; ++l) stream[l] = benchStream(libs[l].port, 64, rounds);
  DisconnectResult disconnect[kLibs];
  for (int l = 0; l < kLibs; ++l) disconnect[l] = benchDisconnect(libs[l].port, trials);

  std::printf("\nPOST /json (300-byte reply), keep-alive, %.1f s per point; latency in us; CPU = whole process "
              "(client + server) per request\n\n",
              seconds);
  std::printf("| library | c | req/s | p50 us | p99 us | CPU us/req | errors |\n|---|---|---|---|---|---|---|\n");
  for (int l = 0; l < kLibs; ++l)
    for (int c = 0; c < 3; ++c)
      std::printf("| %s | %d | %.0f | %.0f | %.0f | %.1f | %llu |\n", libs[l].name, concurrencies[c], json[l][c].rps,
                  json[l][c].p50us, json[l][c].p99us, json[l][c].cpuUsPerReq,
                  static_cast<unsigned long long>(json[l][c].errors));

  std::printf("\nPOST /stream (SSE), 64 concurrent clients x %d streams each x %d events; disconnect: close after 5 "
              "events, %d trials\n\n",
              rounds, kEvents, trials);
  std::printf("| library | wall s | events/s | TTFE p50 ms | TTFE p99 ms | CPU s | errors | disconnect noticed "
              "(median / max ms) | server lines |\n|---|---|---|---|---|---|---|---|---|\n");
  for (int l = 0; l < kLibs; ++l)
    std::printf("| %s | %.3f | %.0f | %.2f | %.2f | %.2f | %llu | %d/%d (%.2f / %.2f) | %d |\n", libs[l].name,
                stream[l].wallS, stream[l].eventsPerS, stream[l].ttfeP50Ms, stream[l].ttfeP99Ms, stream[l].cpuS,
                static_cast<unsigned long long>(stream[l].errors), disconnect[l].detected, disconnect[l].trials,
                disconnect[l].medianMs, disconnect[l].maxMs, libs[l].lines);
  std::fflush(stdout);
  return 0;
}
