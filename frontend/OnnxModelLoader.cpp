// ModelProto parsing from a mapped file, with protobuf's default size limits raised.
#include "frontend/OnnxModelLoader.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <climits>

#include "ir/MappedFile.h"
#include "ir/Error.h"

namespace pagedc {

std::shared_ptr<const onnx::ModelProto> loadOnnxModel(const std::string& path) {
  auto file = MappedFile::open(path);
  if (file->size() == 0) fail(path, ": empty file, not an ONNX model");
  // One protobuf message cannot exceed 2 GiB; larger models keep their weights in external data.
  if (file->size() > static_cast<size_t>(INT_MAX))
    fail(path, ": ", file->size(), " bytes is over protobuf's 2 GiB message limit (large ONNX models store weights as external data)");

  auto model = std::make_shared<onnx::ModelProto>();
  google::protobuf::io::ArrayInputStream stream(file->data(), static_cast<int>(file->size()));
  google::protobuf::io::CodedInputStream coded(&stream);
  coded.SetTotalBytesLimit(INT_MAX);
  bool parsed = model->ParseFromCodedStream(&coded) && coded.ConsumedEntireMessage() &&
                coded.CurrentPosition() == static_cast<int>(file->size());
  if (!parsed) fail(path, ": not a valid ONNX model: the protobuf does not parse (corrupt, truncated or not an ONNX file)");

  if (!model->has_ir_version())
    fail(path, ": not an ONNX model: no ir_version (", file->size(), " bytes parsed as protobuf but lack the ModelProto fields)");
  if (model->ir_version() < kMinOnnxIrVersion || model->ir_version() > kMaxOnnxIrVersion)
    fail(path, ": ONNX ir_version ", model->ir_version(), " is not supported (supported: ", kMinOnnxIrVersion, "..",
         kMaxOnnxIrVersion, ")");
  if (!model->has_graph()) fail(path, ": the ONNX model has no graph");
  if (model->opset_import_size() == 0) fail(path, ": the ONNX model imports no opset");
  return model;
}

}  // namespace pagedc
