// ONNX node attributes converted to IR attributes (before op-specific normalisation).
#pragma once

#include <onnx/onnx_pb.h>

#include <functional>
#include <string>

#include "ir/Attribute.h"

namespace pagedc {

using TensorConverter = std::function<Tensor(const onnx::TensorProto&, const std::string& what)>;

// INT->Int, FLOAT->Float, STRING->String, INTS->Ints, FLOATS->Floats, STRINGS->Strings,
// TENSOR->Tensor. Graph, sparse-tensor and type-proto attributes throw (the caller names the node).
// Attributes written without a type field (old exporters) are typed by the field that is set.
Attribute attributeFromOnnx(const onnx::AttributeProto& proto, const TensorConverter& convertTensor);

// True for GRAPH and GRAPHS attributes: the control-flow subgraphs of If, Loop and Scan.
bool isSubgraphAttribute(const onnx::AttributeProto& proto);

}  // namespace pagedc
