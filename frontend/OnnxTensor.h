// ONNX element types and TensorProto contents converted to the IR's DType and Tensor.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "frontend/ExternalData.h"
#include "ir/Tensor.h"

namespace pagedc {

// The IR type of an ONNX TensorProto.DataType value, or nullopt for types the IR lacks
// (string, complex, float8, 4-bit, ...).
std::optional<DType> dtypeFromOnnx(int32_t onnxType);
// The ONNX TensorProto.DataType value of an IR type.
int32_t onnxFromDType(DType dtype);
// "FLOAT16", "STRING", ... for diagnostics; "type N" for values this build does not name.
std::string onnxTypeName(int32_t onnxType);

// Where TensorProto bytes come from and who keeps them alive.
struct TensorSource {
  // When set, raw_data is viewed in place and this owner (the ModelProto) kept alive;
  // otherwise the bytes are copied.
  std::shared_ptr<const void> rawDataOwner;
  ExternalDataReader* externalData = nullptr;  // required for EXTERNAL tensors
};

// Converts every supported dtype from raw_data, the typed fields (float_data, int32_data,
// int64_data, double_data, uint64_data) or external data. `what` names the tensor in errors.
Tensor tensorFromOnnx(const onnx::TensorProto& proto, const TensorSource& source, const std::string& what);

}  // namespace pagedc
