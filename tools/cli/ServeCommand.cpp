// `pagedc serve`: the OpenAI-compatible HTTP server on the CPU backend. SIGINT/SIGTERM stop it
// gracefully: new requests are refused, running ones get --shutdown-grace to finish, the rest
// are aborted, and the process exits 0.
#include <pthread.h>
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "cli/Commands.h"
#include "cli/EngineOptions.h"
#include "ir/Error.h"
#include "runtime/server/ApiServer.h"
#include "runtime/tokenizer/TokenizerDetokenizer.h"

namespace pagedc::cli {

namespace {

struct ServeOptions {
  std::string artifact;
  std::string servedModelName;
  std::string apiKey;
  double shutdownGraceSeconds = 10.0;
  bool disableLogRequests = false;
  server::ApiServerConfig server;
  EngineOptions engine;
};

// The model's name for clients: the artifact directory's stem ("default" for default.pgc).
std::string nameFromPath(const std::string& path) {
  std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  return p.stem().string();
}

void run(ServeOptions& options) {
  // Signals go to one waiting thread (below), never to the HTTP or engine threads: block them
  // before any thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Artifact artifact = loadModelForCommand(options.artifact);
  const std::string name = !options.servedModelName.empty() ? options.servedModelName
                           : options.artifact.empty()        ? std::string("default")
                                                             : nameFromPath(options.artifact);
  server::ServedModel model = server::ServedModel::load(artifact.path, name, artifact.facts().vocabSize, 0);
  if (!model.tokenizer)
    std::cerr << "pagedc serve: note: " << artifact.path << " has no tokenizer.json: prompts must be token ids, outputs carry no text, "
                                                            "and chat is unavailable\n";
  LoadedEngine loaded = buildEngine(std::move(artifact), options.engine, model.tokenizer ? makeDetokenizer(*model.tokenizer) : Detokenizer{});
  model.maxModelLen = loaded.engine->scheduler().config().maxModelLen;

  if (!options.apiKey.empty()) options.server.apiKey = options.apiKey;
  else if (const char* key = std::getenv("PAGEDC_API_KEY"); key && *key) options.server.apiKey = key;
  options.server.shutdownGrace = std::chrono::milliseconds(static_cast<int64_t>(options.shutdownGraceSeconds * 1000));
  options.server.logRequests = !options.disableLogRequests;
  server::ApiServer api(model, *loaded.engine, options.server);
  const int port = api.bind();
  const BlockStats blocks = loaded.engine->blockManager().stats();
  std::cerr << "pagedc serve: model '" << model.name << "' (max_model_len " << model.maxModelLen << ", " << blocks.totalBlocks
            << " KV blocks of " << blocks.blockSize << " tokens) on http://" << options.server.host << ":" << port
            << (options.server.apiKey ? " (API key required)" : "") << "\n"
            << "pagedc serve: try: curl http://" << options.server.host << ":" << port
            << "/v1/completions -H 'Content-Type: application/json' -d '{\"prompt\": \"Once upon a time\", \"max_tokens\": 32}'\n";

  std::thread signalWaiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    if (received == SIGINT || received == SIGTERM) {
      std::cerr << "pagedc serve: " << (received == SIGINT ? "SIGINT" : "SIGTERM") << ": finishing running requests (up to "
                << options.shutdownGraceSeconds << " s), refusing new ones\n";
      api.shutdown();
    }
  });
  api.serve();
  // serve() returns after shutdown(); should it return on its own, wake the waiter to let it exit.
  pthread_kill(signalWaiter.native_handle(), SIGTERM);
  signalWaiter.join();
  std::cerr << "pagedc serve: stopped\n";
}

}  // namespace

void addServeCommand(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  auto* command = app.add_subcommand("serve", "serve the model over an OpenAI-compatible HTTP API (docs/SERVING.md)");
  command->add_option("artifact", o->artifact, "the compiled model (default: the bundled model)");
  command->add_option("--host", o->server.host, "address to listen on")->capture_default_str();
  command->add_option("--port", o->server.port, "port to listen on (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  command->add_option("--api-key", o->apiKey, "require \"Authorization: Bearer KEY\" on /v1/*, /tokenize, /detokenize (default: $PAGEDC_API_KEY)");
  command->add_option("--served-model-name", o->servedModelName, "the model name clients send (default: the artifact's name)");
  command->add_option("--max-body-bytes", o->server.maxBodyBytes, "larger request bodies get 413")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--max-tokens-limit", o->server.limits.maxTokens, "largest max_tokens a request may ask for (0: the context length)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command->add_option("--max-n", o->server.limits.maxN, "largest n / best_of a request may ask for")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--max-prompts", o->server.limits.maxPrompts, "most prompts in one completions request")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--max-waiting-requests", o->server.maxWaitingRequests, "requests waiting beyond this get 429")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--http-threads", o->server.httpThreads, "HTTP worker threads: requests open at once (waiting or streaming)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  command->add_option("--shutdown-grace", o->shutdownGraceSeconds, "seconds running requests get to finish on SIGINT/SIGTERM")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  command->add_flag("--disable-log-requests", o->disableLogRequests, "no per-request line on stderr");
  o->engine.addTo(*command);
  command->callback([o] { run(*o); });
}

}  // namespace pagedc::cli
