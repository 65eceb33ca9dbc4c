// Where the bundled default model lives, for commands run without a model argument.
#pragma once

#include <string>

namespace pagedc::cli {

// The models/ directory: $PAGEDC_MODELS_DIR, else the source tree's models/ this binary was built from.
std::string modelsDir();
// The ONNX file used when a command gets no model.
std::string defaultOnnxModel();

}  // namespace pagedc::cli
