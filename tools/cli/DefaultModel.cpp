// Locating the bundled default model.
#include "cli/DefaultModel.h"

#include <cstdlib>
#include <filesystem>

namespace pagedc::cli {

std::string modelsDir() {
  if (const char* dir = std::getenv("PAGEDC_MODELS_DIR"); dir && *dir) return dir;
  return std::string(PAGEDC_SOURCE_DIR) + "/models";
}

// A tiny Llama trained on the `fortunes` quotations, with its tokenizer (models/README.md).
std::string defaultOnnxModel() { return modelsDir() + "/default/model.onnx"; }

std::string defaultArtifactPath(const std::string& onnxModel) {
  std::filesystem::path model = std::filesystem::absolute(onnxModel).lexically_normal();
  std::string name = model.stem().string();
  if (name == "model" && model.parent_path().has_filename()) name = model.parent_path().filename().string();
  return name + ".pgc";
}

}  // namespace pagedc::cli
