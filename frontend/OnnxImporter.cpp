// Temporary: replaced by the real importer.
#include "frontend/OnnxImporter.h"

#include "ir/Error.h"

namespace pagedc {
std::unique_ptr<Graph> importOnnx(const std::string& path, const OnnxImportOptions&) { fail(path, ": ONNX import not written yet"); }
}  // namespace pagedc
