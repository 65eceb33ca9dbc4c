#include "codegen/CudaKernelBuilder.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "codegen/KernelSource.h"
#include "ir/Error.h"

namespace pagedc {

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// A cache payload: 4-byte length of the text part, the text part (entry name, newline, the
// linker's info log), then the cubin.
std::vector<char> encodePayload(const std::string& entryName, const std::string& infoLog, const std::vector<char>& cubin) {
  const std::string text = entryName + "\n" + infoLog;
  const uint32_t length = static_cast<uint32_t>(text.size());
  // One allocation and plain copies (GCC 12 misreads vector::insert chains with -Warray-bounds).
  std::vector<char> payload(sizeof length + text.size() + cubin.size());
  std::memcpy(payload.data(), &length, sizeof length);
  std::memcpy(payload.data() + sizeof length, text.data(), text.size());
  if (!cubin.empty()) std::memcpy(payload.data() + sizeof length + text.size(), cubin.data(), cubin.size());
  return payload;
}

bool decodePayload(const std::vector<char>& payload, std::string& entryName, std::string& infoLog, std::vector<char>& cubin) {
  uint32_t length = 0;
  if (payload.size() < sizeof length) return false;
  std::memcpy(&length, payload.data(), sizeof length);
  if (payload.size() < sizeof length + length) return false;
  const std::string text(payload.data() + sizeof length, length);
  const size_t newline = text.find('\n');
  if (newline == std::string::npos || newline == 0) return false;
  entryName = text.substr(0, newline);
  infoLog = text.substr(newline + 1);
  cubin.assign(payload.begin() + sizeof length + length, payload.end());
  return !cubin.empty();
}

KernelResources resourcesOf(const std::string& infoLog, const std::string& entryName) {
  const auto all = parseKernelResources(infoLog);
  auto found = all.find(entryName);
  return found != all.end() ? found->second : KernelResources{};
}

}  // namespace

std::vector<int> parseArchList(const std::string& text) {
  std::vector<int> archs;
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    std::string digits = item;
    if (digits.rfind("sm_", 0) == 0) digits = digits.substr(3);
    int arch = 0;
    try {
      size_t used = 0;
      arch = std::stoi(digits, &used);
      if (used != digits.size()) arch = 0;
    } catch (...) {
      arch = 0;
    }
    if (arch < 50 || arch > 200) fail("architecture '", item, "': expected a compute capability like 80, 86, 89 or 90");
    archs.push_back(arch);
  }
  if (archs.empty()) fail("no architectures given (expected a list like 80,90)");
  return archs;
}

CudaKernelBuilder::CudaKernelBuilder(CudaKernelBuildOptions options)
    : options_(std::move(options)), cache_(options_.cacheDir), compiler_(options_.nvrtc), linker_(options_.link) {}

std::string CudaKernelBuilder::cacheKeyText(const KernelKey& key, int arch) const {
  return "pagedc kernel cubin\nkey=" + key.str() + "\ntemplates=" + templateSourceHash() + "\nnvrtc=" + NvrtcCompiler::version() +
         " " + options_.nvrtc.text() + "\nnvjitlink=" + NvJitLinker::version() + " " + options_.link.text(arch) +
         "\narch=sm_" + std::to_string(arch) + "\n";
}

BuiltKernel CudaKernelBuilder::build(const KernelKey& key, int arch) const { return build(key, std::vector<int>{arch}).front(); }

std::vector<BuiltKernel> CudaKernelBuilder::build(const KernelKey& key, const std::vector<int>& archs) const {
  requireCudaToolkit("building kernel " + key.str());
  std::vector<BuiltKernel> results;
  std::optional<NvrtcOutput> compiled;  // compiled on the first miss, shared by the other archs
  for (int arch : archs) {
    BuiltKernel built;
    built.key = key;
    built.arch = arch;
    const std::string keyText = cacheKeyText(key, arch);
    if (options_.useCache) {
      const auto start = Clock::now();
      std::optional<std::vector<char>> payload = cache_.load(keyText);
      std::string infoLog;
      if (payload && decodePayload(*payload, built.entryName, infoLog, built.cubin)) {
        built.resources = resourcesOf(infoLog, built.entryName);
        built.cacheHit = true;
        built.loadSeconds = secondsSince(start);
        results.push_back(std::move(built));
        continue;
      }
      built.loadSeconds = secondsSince(start);
    }
    if (!compiled) {
      compiled = compiler_.compile({key});
      built.compileSeconds = compiled->seconds;
    }
    built.entryName = compiled->loweredNames.front();
    if (options_.nvrtc.lto != options_.link.lto) fail("building ", key.str(), ": NVRTC and nvJitLink must agree on -dlto / -lto");
    LinkedCubin linked = linker_.link(options_.nvrtc.lto ? compiled->ltoIr : compiled->ptx, arch, key.str());
    built.linkSeconds = linked.seconds;
    built.resources = resourcesOf(linked.infoLog, built.entryName);
    built.cubin = std::move(linked.cubin);
    if (options_.useCache) cache_.store(keyText, encodePayload(built.entryName, linked.infoLog, built.cubin));
    results.push_back(std::move(built));
  }
  return results;
}

KernelBuildReport buildKernels(const CudaKernelBuilder& builder, const std::vector<KernelKey>& keys, const std::vector<int>& archs,
                               int jobs, const std::function<void(const std::vector<BuiltKernel>&, const KernelBuildFailure*)>& onKernel) {
  const auto start = Clock::now();
  std::vector<std::vector<BuiltKernel>> results(keys.size());
  std::vector<std::optional<KernelBuildFailure>> failures(keys.size());
  std::atomic<size_t> next{0};
  std::mutex reportMutex;
  auto worker = [&] {
    for (size_t i = next++; i < keys.size(); i = next++) {
      try {
        results[i] = builder.build(keys[i], archs);
      } catch (const std::exception& error) {
        failures[i] = KernelBuildFailure{keys[i], error.what()};
      }
      if (onKernel) {
        std::lock_guard lock(reportMutex);
        onKernel(results[i], failures[i] ? &*failures[i] : nullptr);
      }
    }
  };
  const size_t threads = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(jobs, 1)), keys.size()));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& thread : pool) thread.join();
  KernelBuildReport report;
  for (size_t i = 0; i < keys.size(); ++i) {
    for (BuiltKernel& built : results[i]) report.built.push_back(std::move(built));
    if (failures[i]) report.failures.push_back(std::move(*failures[i]));
  }
  report.seconds = secondsSince(start);
  return report;
}

}  // namespace pagedc
