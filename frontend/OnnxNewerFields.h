// Fields newer than the ONNX 1.12 headers this build compiles against, read from unknown fields.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

namespace pagedc {

// FunctionProto.attribute_proto (field 11, ONNX 1.13): attributes with their default values.
std::vector<onnx::AttributeProto> functionAttributeDefaults(const onnx::FunctionProto& function);
// FunctionProto.overload (field 13) and NodeProto.overload (field 8), ONNX 1.16: with domain
// and name they identify which local function a node calls. Empty when absent.
std::string functionOverload(const onnx::FunctionProto& function);
std::string nodeOverload(const onnx::NodeProto& node);

}  // namespace pagedc
