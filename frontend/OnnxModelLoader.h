// Reads an ONNX ModelProto from a file and checks that it is a model the importer can read.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <memory>
#include <string>

namespace pagedc {

// ModelProto.ir_version range: 3 introduced opset_import; newer versions only add fields.
inline constexpr int64_t kMinOnnxIrVersion = 3;
inline constexpr int64_t kMaxOnnxIrVersion = 13;

// Throws Error naming `path` for files that are empty, do not parse as a ModelProto (corrupt,
// truncated, not ONNX), have no graph, no opset imports or an ir_version outside the range.
// Shared so that zero-copy weight views of raw_data can keep the model alive.
std::shared_ptr<const onnx::ModelProto> loadOnnxModel(const std::string& path);

}  // namespace pagedc
