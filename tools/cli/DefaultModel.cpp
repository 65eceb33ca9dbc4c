// Locating the bundled default model.
#include "cli/DefaultModel.h"

#include <cstdlib>

namespace pagedc::cli {

std::string modelsDir() {
  if (const char* dir = std::getenv("PAGEDC_MODELS_DIR"); dir && *dir) return dir;
  return std::string(PAGEDC_SOURCE_DIR) + "/models";
}

std::string defaultOnnxModel() { return modelsDir() + "/fixtures/llama-past/model.onnx"; }

}  // namespace pagedc::cli
