// A `pagedc serve` API server on an ephemeral loopback port, on the bundled default model
// (models/default, compiled once per process) with the CPU backend: for tests that talk HTTP to it.
#pragma once

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "codegen/ArtifactWriter.h"
#include "frontend/OnnxImporter.h"
#include "passes/CompilePipeline.h"
#include "runtime/Artifact.h"
#include "runtime/GenerationDefaults.h"
#include "runtime/cpu/CpuModelRunner.h"
#include "runtime/server/ApiServer.h"
#include "runtime/tokenizer/TokenizerDetokenizer.h"

namespace pagedc::server::testing {

inline const std::filesystem::path kDefaultModelDir = std::filesystem::path(PAGEDC_SOURCE_DIR) / "models" / "default";

// The default model compiled once per process (as `pagedc compile` would), loaded as an artifact.
inline const Artifact& defaultArtifact() {
  static std::unique_ptr<Artifact> artifact;
  static std::filesystem::path dir;
  if (!artifact) {
    auto graph = importOnnx((kDefaultModelDir / "model.onnx").string());
    CompileResult compiled = compileGraph(*graph, {});
    ArtifactContents contents;
    contents.sourceModel = (kDefaultModelDir / "model.onnx").string();
    contents.facts = compiled.facts;
    contents.opCountsBefore = compiled.opCountsBefore;
    contents.opCountsAfter = compiled.opCountsAfter;
    dir = std::filesystem::temp_directory_path() / ("pagedc_server_test_" + std::to_string(::getpid()) + ".pgc");
    writeArtifact(*graph, contents, dir.string());
    artifact = std::make_unique<Artifact>(loadArtifact(dir.string()));
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    });
  }
  return *artifact;
}

struct TestServerOptions {
  int64_t kvBlocks = 256;
  int64_t maxNumSeqs = 64;
  ApiServerConfig server;
};

// A server on an ephemeral loopback port, serving on its own thread.
class TestServer {
public:
  explicit TestServer(TestServerOptions options = {}) {
    const Artifact& artifact = defaultArtifact();
    model_ = std::make_unique<ServedModel>(ServedModel::load(artifact.path, "default", artifact.facts().vocabSize, 0));
    cpu::CpuRunnerConfig config;
    config.numDeviceBlocks = options.kvBlocks;
    config.maxNumSeqs = options.maxNumSeqs;
    // As `pagedc serve` does: the position table, capped at the trained context.
    config.maxModelLen = std::min(artifact.facts().maxPositions, readGenerationDefaults(artifact.path).maxPositionEmbeddings.value_or(INT64_MAX));
    config.threads = 1;
    runner_ = std::make_unique<cpu::CpuModelRunner>(artifact, config);
    EngineConfig engineConfig;
    engineConfig.scheduler.maxNumSeqs = options.maxNumSeqs;
    engineConfig.detokenize = makeDetokenizer(*model_->tokenizer);
    engine_ = std::make_unique<Engine>(*runner_, engineConfig);
    model_->maxModelLen = engine_->scheduler().config().maxModelLen;
    options.server.port = 0;
    options.server.logRequests = false;
    server_ = std::make_unique<ApiServer>(*model_, *engine_, options.server);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
  }
  ~TestServer() { stop(); }

  void stop() {
    if (!thread_.joinable()) return;
    server_->shutdown();
    thread_.join();
  }

  httplib::Client client(const std::string& apiKey = "") const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120);
    if (!apiKey.empty()) c.set_bearer_token_auth(apiKey);
    return c;
  }
  httplib::Result post(const std::string& path, const nlohmann::json& body, const std::string& apiKey = "") const {
    return client(apiKey).Post(path, body.dump(), "application/json");
  }
  int port() const { return port_; }
  ApiServer& api() { return *server_; }
  const ServedModel& model() const { return *model_; }

private:
  std::unique_ptr<ServedModel> model_;
  std::unique_ptr<cpu::CpuModelRunner> runner_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ApiServer> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace pagedc::server::testing
