// Imports an ONNX ModelProto file (with external data) into an IR graph.
#pragma once

#include <memory>
#include <string>

#include "ir/Graph.h"

namespace pagedc {

struct OnnxImportOptions {
  // Initializers and Constant nodes with at most this many elements are inlined as Constant ops;
  // larger ones go to the weight store and are referenced by `weight` ops.
  int64_t maxInlineElements = 64;
  // Runs type inference and the verifier on the result.
  bool verify = true;
};

// Reads `path` (and external-data files relative to it). Throws Error with a message naming the
// file, and for graph problems the ONNX node name, op type, domain and opset.
std::unique_ptr<Graph> importOnnx(const std::string& path, const OnnxImportOptions& options = {});

}  // namespace pagedc
