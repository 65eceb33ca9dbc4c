// `pagedc compile`: imports an ONNX decoder, compiles it to the paged, ragged form and writes the
// artifact directory (docs/ARTIFACT.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "cli/ByteSize.h"
#include "cli/Commands.h"
#include "cli/DefaultModel.h"
#include "codegen/ArtifactWriter.h"
#include "codegen/CudaKernelBuilder.h"
#include "codegen/NvrtcCompiler.h"
#include "frontend/OnnxImporter.h"
#include "ir/Error.h"
#include "passes/CompilePipeline.h"
#include "runtime/cuda/CudaKernelPlan.h"

namespace pagedc::cli {

namespace {
struct CompileCommandOptions {
  std::string model;
  std::string output;
  int64_t blockSize = 16;
  std::string dtype = "f32";
  std::string target = "cpu";
  // --target cuda: the GPU architectures to embed cubins for. An sm_80 cubin also runs on sm_86 and
  // sm_89 (same major version), so 80 and 90 cover every supported GPU.
  std::string arch = "80,90";
};

// --target cuda: every kernel variant the compiled graph needs on the CUDA backend, built (through
// the kernel cache) for each architecture, to be stored in the artifact's kernels/ directory.
std::vector<ArtifactKernel> buildModelKernels(const Graph& graph, const ModelFacts& facts, const std::string& archList) {
  requireCudaToolkit("pagedc compile --target cuda (embedding the model's kernels)");
  const std::vector<int> archs = parseArchList(archList);
  const std::vector<KernelKey> keys = cuda::requiredKernels(graph, cuda::CudaKernelChoices::forModel(facts));
  std::vector<ArtifactKernel> kernels;
  CudaKernelBuilder builder;
  for (const KernelKey& key : keys) {
    for (BuiltKernel& built : builder.build(key, archs)) {
      kernels.push_back(ArtifactKernel{.key = key.str(), .arch = built.arch, .entry = built.entryName, .cubin = std::move(built.cubin)});
    }
  }
  return kernels;
}

CompileOptions validate(const CompileCommandOptions& options) {
  CompileOptions compile;
  if (options.blockSize != 8 && options.blockSize != 16 && options.blockSize != 32)
    fail("--block-size must be 8, 16 or 32 (got ", options.blockSize, ")");
  compile.blockSize = options.blockSize;
  auto dtype = parseDType(options.dtype);
  if (!dtype || (*dtype != DType::F32 && *dtype != DType::BF16 && *dtype != DType::F16))
    fail("--dtype must be f32, bf16 or f16 (got '", options.dtype, "')");
  compile.dtype = *dtype;
  if (options.target != "cpu" && options.target != "cuda") fail("--target must be cpu or cuda (got '", options.target, "')");
  compile.target = options.target;
  return compile;
}

// One line per stage on a terminal, so a long compile shows where it is; silent in pipes and logs.
class Progress {
public:
  Progress() : enabled_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}
  void stage(std::string_view name) {
    if (!enabled_) return;
    std::fprintf(stderr, "[%7.2fs] %.*s\n", seconds(), static_cast<int>(name.size()), name.data());
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
};

int64_t total(const std::map<std::string, int64_t>& counts) {
  int64_t sum = 0;
  for (const auto& [name, count] : counts) sum += count;
  return sum;
}

void run(const CompileCommandOptions& options) {
  CompileOptions compile = validate(options);
  std::string model = options.model.empty() ? defaultOnnxModel() : options.model;
  std::string output = options.output.empty() ? defaultArtifactPath(model) : options.output;
  checkArtifactOutput(output);
  Progress progress;
  progress.stage("import " + model);
  auto graph = importOnnx(model);
  CompileResult result = compileGraph(*graph, compile, [&](std::string_view stage) { progress.stage(stage); });
  std::vector<ArtifactKernel> kernels;
  if (compile.target == "cuda") {
    progress.stage("build the CUDA kernels for sm " + options.arch);
    kernels = buildModelKernels(*graph, result.facts, options.arch);
  }
  progress.stage("write " + output);
  ArtifactContents contents{.sourceModel = model,
                            .options = {compile.blockSize, compile.dtype, compile.target},
                            .facts = result.facts,
                            .opCountsBefore = result.opCountsBefore,
                            .opCountsAfter = result.opCountsAfter,
                            .kernels = std::move(kernels)};
  ArtifactManifest manifest = writeArtifact(*graph, contents, output);
  std::cout << "compiled " << model << " -> " << output << " in " << std::fixed;
  std::cout.precision(2);
  std::cout << progress.seconds() << " s\n" << std::defaultfloat;
  std::cout << "  ops " << total(result.opCountsBefore) << " -> " << total(result.opCountsAfter) << ", "
            << manifest.weights.size() << " weights (" << formatBytes(manifest.parameterBytes()) << ", "
            << dtypeName(compile.dtype) << "), block size " << compile.blockSize << ", target " << compile.target << "\n";
  if (!manifest.kernels.empty()) std::cout << "  " << manifest.kernels.size() << " CUDA kernels embedded (sm " << options.arch << ")\n";
}
}  // namespace

void addCompileCommand(CLI::App& app) {
  auto options = std::make_shared<CompileCommandOptions>();
  auto* command = app.add_subcommand("compile", "compile an ONNX decoder into a paged-attention artifact directory (model.pgc)");
  command->add_option("model", options->model, "the .onnx file (default: the bundled model)");
  command->add_option("-o,--output", options->output,
                      "the artifact directory to write (default: <name>.pgc in the current directory, <name> being the "
                      "model file's stem, or its directory's name for model.onnx)");
  command->add_option("--block-size", options->blockSize, "tokens per KV cache block: 8, 16 or 32")->capture_default_str();
  command->add_option("--dtype", options->dtype, "weights and KV cache: f32, bf16 or f16")->capture_default_str();
  command->add_option("--target", options->target, "cpu or cuda (cuda also embeds the model's kernels, compiled with NVRTC)")
      ->capture_default_str();
  command->add_option("--arch", options->arch, "--target cuda: GPU architectures to embed cubins for (80, 86, 89, 90)")
      ->capture_default_str();
  command->callback([options] { run(*options); });
}

}  // namespace pagedc::cli
