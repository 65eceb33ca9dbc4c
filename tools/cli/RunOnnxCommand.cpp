// `pagedc run-onnx`: runs an ONNX model through the reference executor on inputs from an .npz file.
#include <iostream>

#include "cli/Commands.h"
#include "frontend/OnnxImporter.h"
#include "ir/Interpreter.h"
#include "ir/NpzFile.h"

namespace pagedc::cli {

void addRunOnnxCommand(CLI::App& app) {
  auto* command = app.add_subcommand("run-onnx", "run an ONNX model with the reference executor");
  auto model = std::make_shared<std::string>();
  auto inputsPath = std::make_shared<std::string>();
  auto outputsPath = std::make_shared<std::string>();
  command->add_option("model", *model, "the .onnx file")->required();
  command->add_option("--inputs", *inputsPath, "an .npz file with one array per graph input")->required();
  command->add_option("--outputs", *outputsPath, "where to write the outputs (.npz); default: print a summary");
  command->callback([=] {
    auto graph = importOnnx(*model);
    Interpreter interpreter(*graph);
    auto outputs = interpreter.run(readNpz(*inputsPath));
    if (!outputsPath->empty()) writeNpz(*outputsPath, outputs);
    for (const auto& [name, tensor] : outputs)
      std::cout << name << ": " << dtypeName(tensor.dtype()) << tensor.shapeStr() << "\n";
  });
}

}  // namespace pagedc::cli
