#include "bench/serving/CostModelSource.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ir/Error.h"
#include "runtime/cpu/CpuModelRunner.h"

namespace pagedc::bench {

StepCostModel loadOrCalibrate(const Artifact& artifact, const CostModelRequest& request) {
  if (!request.path.empty() && !request.recalibrate && std::filesystem::exists(request.path)) {
    std::ifstream in(request.path);
    nlohmann::json j;
    try {
      in >> j;
    } catch (const nlohmann::json::exception& e) {
      fail(request.path, ": not JSON: ", e.what());
    }
    try {
      return StepCostModel::fromJson(j);
    } catch (const Error& e) {
      fail(request.path, ": ", e.what());
    }
  }
  const ModelFacts& facts = artifact.facts();
  cpu::CpuRunnerConfig config;
  // Room for the calibration's longest decode batch (32768 tokens of context) and its swaps.
  config.numDeviceBlocks = (32768 + 4 * 2048) / facts.blockSize + request.calibration.maxSeqs;
  config.numHostBlocks = 128;  // the largest calibrated swap
  config.maxNumBatchedTokens = std::max(request.calibration.maxTokens, request.calibration.maxSeqs);
  config.maxNumSeqs = request.calibration.maxSeqs;
  config.maxModelLen = request.calibration.maxModelLen;
  config.threads = request.threads;
  std::cerr << "pagedc bench: calibrating the step cost of the CPU backend on " << artifact.path << " (about a minute)\n";
  cpu::CpuModelRunner runner(artifact, config);
  const auto start = std::chrono::steady_clock::now();
  StepCostModel model = calibrateStepCost(runner, request.calibration);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  std::ostringstream description;
  description << "CPU backend, " << facts.numLayers << " layers, hidden " << facts.hiddenSize << ", " << dtypeName(facts.weightDType)
              << " weights, " << dtypeName(facts.kvDType) << " KV, block size " << facts.blockSize << ", "
              << (request.threads > 0 ? std::to_string(request.threads) : std::string("all")) << " threads, calibrated " << date;
  model.description = description.str();
  std::cerr << "pagedc bench: calibrated in " << seconds << " s; fit median error " << model.medianRelativeError() * 100 << "%, max "
            << model.maxRelativeError() * 100 << "%\n";
  if (!request.path.empty()) {
    std::ofstream out(request.path);
    if (!out) fail(request.path, ": cannot write the cost model");
    out << model.toJson().dump(1) << "\n";
  }
  return model;
}

}  // namespace pagedc::bench
