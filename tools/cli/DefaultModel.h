// Where the bundled default model lives, for commands run without a model argument.
#pragma once

#include <string>

namespace pagedc::cli {

// The models/ directory: $PAGEDC_MODELS_DIR, else the source tree's models/ this binary was built from.
std::string modelsDir();
// The ONNX file used when a command gets no model: models/default/model.onnx.
std::string defaultOnnxModel();
// Where `pagedc compile` writes when given no -o, and what `pagedc inspect` reads when given no
// artifact: <name>.pgc in the current directory, where <name> is the ONNX file's stem, or its
// directory's name when the stem is the generic "model" (models/default/model.onnx gives
// default.pgc, models/fixtures/llama-past/model.onnx gives llama-past.pgc).
std::string defaultArtifactPath(const std::string& onnxModel);

}  // namespace pagedc::cli
