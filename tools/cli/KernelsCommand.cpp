// `pagedc kernels list|emit|build|bench` (and `check`, tools/cli/KernelsCheckCommand.cpp): the CUDA
// kernel variants a model needs or CI builds, their source, building them with NVRTC + nvJitLink
// through the cache (registers, spills, shared memory, build time, cache hit or miss), and timing
// the attention kernels. docs/KERNELS.md describes keys, the cache and these commands.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli/Commands.h"
#include "cli/KernelsBench.h"
#include "codegen/CudaKernelBuilder.h"
#include "codegen/KernelSource.h"
#include "ir/Error.h"
#include "runtime/Artifact.h"
#include "runtime/cuda/CudaKernelPlan.h"
#include "runtime/kernels/KernelCatalog.h"

namespace pagedc::cli {

namespace {

struct ListArguments {
  std::string artifact;
  bool all = false;
  std::string dtype;
};

struct EmitArguments {
  std::string key;
  bool flatten = false;
  std::string output;
};

struct BuildArguments {
  std::vector<std::string> keys;
  std::string model;
  bool grid = false;
  std::string archs = "80,86,89,90";
  bool noCache = false;
  std::string cacheDir;
  int jobs = 0;
  bool failOnSpill = false;
  bool lineInfo = false;
  bool quiet = false;
};

// The variants `artifact` needs on the CUDA backend (runtime/cuda/CudaKernelPlan.h), in the
// artifact's dtype unless `dtype` overrides it.
std::vector<KernelKey> modelKernels(const std::string& artifactPath, const std::string& dtype) {
  ArtifactLoadOptions load;
  load.verifyChecksums = false;  // listing reads the graph only; `pagedc inspect` verifies
  Artifact artifact = loadArtifact(artifactPath, load);
  cuda::CudaKernelChoices choices = cuda::CudaKernelChoices::forModel(artifact.facts());
  if (!dtype.empty()) {
    auto parsed = parseDType(dtype);
    if (!parsed || (*parsed != DType::F32 && *parsed != DType::F16 && *parsed != DType::BF16)) {
      fail("--dtype must be f32, f16 or bf16 (got '", dtype, "')");
    }
    choices.activation = *parsed;
  }
  return cuda::requiredKernels(*artifact.graph, choices);
}

// Whether any of the key's type parameters is `dtype` (the grid filter of `list --dtype`).
bool usesDType(const KernelKey& key, const std::string& dtype) {
  const KernelSpec& spec = kernelSpec(key.kernel);
  for (size_t i = 0; i < spec.params.size(); ++i) {
    if (spec.params[i].kind == KernelParamKind::DType && key.params[i].second == dtype) return true;
  }
  return false;
}

void runList(const ListArguments& args) {
  std::vector<KernelKey> keys;
  if (!args.artifact.empty() && !args.all) {
    keys = modelKernels(args.artifact, args.dtype);
  } else {
    if (!args.dtype.empty() && args.dtype != "f32" && args.dtype != "f16" && args.dtype != "bf16") {
      fail("--dtype must be f32, f16 or bf16 (got '", args.dtype, "')");
    }
    for (KernelKey& key : kernelGrid()) {
      if (args.dtype.empty() || usesDType(key, args.dtype)) keys.push_back(std::move(key));
    }
  }
  for (const KernelKey& key : keys) std::cout << key.str() << "\n";
}

void runEmit(const EmitArguments& args) {
  const std::string source = emitKernelSource(KernelKey::parse(args.key), args.flatten);
  if (args.output.empty() || args.output == "-") {
    std::cout << source;
    return;
  }
  std::ofstream out(args.output, std::ios::binary | std::ios::trunc);
  out << source;
  out.close();
  if (!out) fail(args.output, ": cannot write the kernel source");
}

std::string formatSeconds(double seconds) {
  char text[32];
  if (seconds < 1) {
    std::snprintf(text, sizeof text, "%.1f ms", seconds * 1e3);
  } else {
    std::snprintf(text, sizeof text, "%.2f s", seconds);
  }
  return text;
}

void runBuild(const BuildArguments& args) {
  std::vector<KernelKey> keys;
  const int sources = (!args.keys.empty() ? 1 : 0) + (!args.model.empty() ? 1 : 0) + (args.grid ? 1 : 0);
  if (sources != 1) fail("kernels build: give kernel keys, --model ARTIFACT or --grid (exactly one)");
  if (args.grid) {
    keys = kernelGrid();
  } else if (!args.model.empty()) {
    keys = modelKernels(args.model, "");
  } else {
    std::set<std::string> seen;
    for (const std::string& text : args.keys) {
      KernelKey key = KernelKey::parse(text);
      if (seen.insert(key.str()).second) keys.push_back(std::move(key));
    }
  }
  const std::vector<int> archs = parseArchList(args.archs);
  requireCudaToolkit("pagedc kernels build");

  CudaKernelBuildOptions options;
  options.useCache = !args.noCache;
  options.cacheDir = args.cacheDir;
  options.nvrtc.lineInfo = args.lineInfo;
  options.link.lineInfo = args.lineInfo;
  const CudaKernelBuilder builder(options);
  const int jobs = args.jobs > 0 ? args.jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  std::printf("building %zu variant%s for", keys.size(), keys.size() == 1 ? "" : "s");
  for (int arch : archs) std::printf(" sm_%d", arch);
  std::printf(" (NVRTC %s [%s], nvJitLink %s, %d job%s, cache %s)\n", NvrtcCompiler::version().c_str(), options.nvrtc.text().c_str(),
              NvJitLinker::version().c_str(), jobs, jobs == 1 ? "" : "s", options.useCache ? builder.cache().dir().c_str() : "off");
  std::printf("%-6s %5s %13s %6s %7s %6s %10s %8s  %s\n", "arch", "regs", "spill st/ld", "stack", "smem", "lmem", "time", "cache", "kernel");
  std::fflush(stdout);
  size_t spills = 0;
  const KernelBuildReport report = buildKernels(builder, keys, archs, jobs, [&](const std::vector<BuiltKernel>& built, const KernelBuildFailure* failure) {
    if (failure) {
      std::printf("FAILED %s\n", failure->key.str().c_str());
      if (!args.quiet) std::printf("%s\n", failure->message.c_str());
    }
    for (const BuiltKernel& kernel : built) {
      const KernelResources& r = kernel.resources;
      spills += r.spills() ? 1 : 0;
      if (args.quiet && !r.spills()) continue;
      const double seconds = kernel.cacheHit ? kernel.loadSeconds : kernel.compileSeconds + kernel.linkSeconds;
      char spill[32];
      std::snprintf(spill, sizeof spill, "%lld/%lld", static_cast<long long>(r.spillStores), static_cast<long long>(r.spillLoads));
      std::printf("sm_%-3d %5lld %13s %6lld %7lld %6lld %10s %8s  %s%s\n", kernel.arch, static_cast<long long>(r.registers), spill,
                  static_cast<long long>(r.stackBytes), static_cast<long long>(r.sharedBytes), static_cast<long long>(r.localBytes),
                  formatSeconds(seconds).c_str(), !options.useCache ? "off" : kernel.cacheHit ? "hit" : "miss", kernel.key.str().c_str(),
                  r.spills() ? "  SPILLS" : "");
    }
    std::fflush(stdout);
  });
  size_t hits = 0;
  double compile = 0, link = 0;
  for (const BuiltKernel& kernel : report.built) {
    hits += kernel.cacheHit ? 1 : 0;
    compile += kernel.compileSeconds;
    link += kernel.linkSeconds;
  }
  std::printf("%zu built (%zu cache hits), %zu failed, %zu spilling, in %s (NVRTC %s, nvJitLink %s of CPU time over %d job%s)\n",
              report.built.size(), hits, report.failures.size(), spills, formatSeconds(report.seconds).c_str(), formatSeconds(compile).c_str(),
              formatSeconds(link).c_str(), jobs, jobs == 1 ? "" : "s");
  if (!report.failures.empty()) {
    std::string names;
    for (const KernelBuildFailure& failure : report.failures) names += "\n  " + failure.key.str();
    fail(report.failures.size(), " kernel variant", report.failures.size() == 1 ? "" : "s", " failed to build:", names);
  }
  if (args.failOnSpill && spills > 0) fail(spills, " kernel build", spills == 1 ? "" : "s", " spill registers (--fail-on-spill)");
}

}  // namespace

void addKernelsCommand(CLI::App& app) {
  auto* kernels = app.add_subcommand("kernels", "the CUDA kernel variants: list, emit their source, build them (NVRTC), check, bench");
  kernels->require_subcommand(1);

  auto list = std::make_shared<ListArguments>();
  auto* listCommand = kernels->add_subcommand("list", "list kernel keys: the variants a compiled model needs on the CUDA backend, or the CI grid");
  listCommand->add_option("artifact", list->artifact, "a compiled model (model.pgc); without one, the grid");
  listCommand->add_flag("--all", list->all, "the whole grid of variants CI builds (kernelGrid), even with a model");
  listCommand->add_option("--dtype", list->dtype, "with a model: the activation dtype (default: the artifact's); with the grid: only variants using it");
  listCommand->callback([list] { runList(*list); });

  auto emit = std::make_shared<EmitArguments>();
  auto* emitCommand = kernels->add_subcommand("emit", "print the CUDA source of a kernel variant");
  emitCommand->add_option("key", emit->key, "kernel key, e.g. rms_norm:dtype=bf16 (defaults fill the rest)")->required();
  emitCommand->add_flag("--flatten", emit->flatten, "inline the template headers: self-contained source for nvcc");
  emitCommand->add_option("-o,--output", emit->output, "write to this file instead of stdout");
  emitCommand->callback([emit] { runEmit(*emit); });

  auto build = std::make_shared<BuildArguments>();
  auto* buildCommand = kernels->add_subcommand("build", "compile and link kernel variants (NVRTC + nvJitLink, no GPU needed) through the cache");
  buildCommand->add_option("keys", build->keys, "kernel keys");
  buildCommand->add_option("--model", build->model, "every variant this compiled model (model.pgc) needs");
  buildCommand->add_flag("--grid", build->grid, "the whole CI grid (kernelGrid)");
  buildCommand->add_option("--arch", build->archs, "target GPU architectures")->capture_default_str();
  buildCommand->add_flag("--no-cache", build->noCache, "neither read nor write the kernel cache");
  buildCommand->add_option("--cache-dir", build->cacheDir, "kernel cache directory (default $PAGEDC_CACHE_DIR, else $XDG_CACHE_HOME/pagedc/kernels, else ~/.cache/pagedc/kernels)");
  buildCommand->add_option("-j,--jobs", build->jobs, "variants built at once (default: the CPU count)");
  buildCommand->add_flag("--fail-on-spill", build->failOnSpill, "exit with an error when any variant spills registers");
  buildCommand->add_flag("--lineinfo", build->lineInfo, "keep source line information (for profilers)");
  buildCommand->add_flag("-q,--quiet", build->quiet, "print only spilling or failing variants and the summary");
  buildCommand->callback([build] { runBuild(*build); });

  addKernelsBenchCommand(*kernels);
  addKernelsCheckCommand(*kernels);
}

}  // namespace pagedc::cli
