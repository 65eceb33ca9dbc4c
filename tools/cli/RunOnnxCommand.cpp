// `pagedc run-onnx`: runs an ONNX model through the reference executor on inputs from an .npz file,
// optionally comparing with expected outputs (onnxruntime goldens).
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "cli/Commands.h"
#include "cli/DefaultModel.h"
#include "frontend/OnnxImporter.h"
#include "ir/Error.h"
#include "ir/Interpreter.h"
#include "ir/NpzFile.h"

namespace pagedc::cli {

namespace {
struct RunOnnxOptions {
  std::string model;
  std::string inputs;
  std::string outputs;
  std::string expected;
};

// The last position's most likely token per sequence: what greedy decoding would pick next.
void printNextTokens(const Tensor& logits) {
  if (logits.rank() != 3) return;
  int64_t batch = logits.shape()[0], seq = logits.shape()[1], vocab = logits.shape()[2];
  std::cout << "next token (argmax of the last position):";
  for (int64_t b = 0; b < batch; ++b) {
    const float* row = logits.data<float>() + (b * seq + seq - 1) * vocab;
    std::cout << " " << std::distance(row, std::max_element(row, row + vocab));
  }
  std::cout << "\n";
}

void run(const RunOnnxOptions& options) {
  namespace fs = std::filesystem;
  std::string model = options.model.empty() ? defaultOnnxModel() : options.model;
  std::string inputs = options.inputs;
  std::string expected = options.expected;
  if (inputs.empty()) {
    // The bundled fixtures carry golden inputs and onnxruntime's outputs beside the model.
    fs::path golden = fs::path(model).parent_path() / "golden";
    if (!fs::exists(golden / "prefill_inputs.npz")) fail("no --inputs given and ", model, " has no golden/prefill_inputs.npz beside it");
    inputs = (golden / "prefill_inputs.npz").string();
    if (expected.empty() && fs::exists(golden / "prefill_outputs.npz")) expected = (golden / "prefill_outputs.npz").string();
  }
  std::cout << "model:  " << model << "\ninputs: " << inputs << "\n";
  auto graph = importOnnx(model);
  std::cout << "imported " << graph->ops().size() << " ops, " << graph->weights->size() << " weights ("
            << graph->weights->totalBytes() << " bytes)\n";
  auto outputs = Interpreter(*graph).run(readNpz(inputs));
  if (!options.outputs.empty()) writeNpz(options.outputs, outputs);
  for (const auto& [name, tensor] : outputs) std::cout << "  " << name << ": " << dtypeName(tensor.dtype()) << tensor.shapeStr() << "\n";
  if (outputs.count("logits")) printNextTokens(outputs.at("logits"));
  if (expected.empty()) return;
  std::cout << "compared with " << expected << " (max |error| / max |expected|):\n";
  bool allClose = true;
  for (const auto& [name, reference] : readNpz(expected)) {
    auto it = outputs.find(name);
    if (it == outputs.end() || it->second.shape() != reference.shape()) {
      std::cout << "  " << name << ": missing or different shape\n";
      allClose = false;
      continue;
    }
    Tensor ours = it->second.convertTo(DType::F32), theirs = reference.convertTo(DType::F32);
    double maxError = 0, maxValue = 0;
    for (int64_t i = 0; i < theirs.numElements(); ++i) {
      maxError = std::max(maxError, static_cast<double>(std::abs(ours.data<float>()[i] - theirs.data<float>()[i])));
      maxValue = std::max(maxValue, static_cast<double>(std::abs(theirs.data<float>()[i])));
    }
    double relative = maxValue > 0 ? maxError / maxValue : maxError;
    allClose = allClose && relative < 1e-4;
    std::cout << "  " << name << ": " << std::scientific << std::setprecision(2) << relative << std::defaultfloat << "\n";
  }
  if (!allClose) fail("outputs differ from ", expected, " by more than 1e-4");
}
}  // namespace

void addRunOnnxCommand(CLI::App& app) {
  auto options = std::make_shared<RunOnnxOptions>();
  auto* command = app.add_subcommand("run-onnx", "run an ONNX model with the reference executor (f32, op by op)");
  command->add_option("model", options->model, "the .onnx file (default: the bundled model)");
  command->add_option("--inputs", options->inputs, "an .npz file with one array per graph input (default: the model's golden inputs)");
  command->add_option("--outputs", options->outputs, "write the outputs to this .npz file");
  command->add_option("--expected", options->expected, "an .npz of expected outputs to compare with (tolerance 1e-4 relative)");
  command->callback([options] { run(*options); });
}

}  // namespace pagedc::cli
