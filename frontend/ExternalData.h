// ONNX external data: tensor bytes stored in files beside the model, read as views of mappings.
#pragma once

#include <onnx/onnx_pb.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ir/MappedFile.h"
#include "ir/Tensor.h"

namespace pagedc {

class ExternalDataReader {
public:
  // Locations are resolved relative to `modelDirectory` and may not leave it.
  explicit ExternalDataReader(std::filesystem::path modelDirectory) : directory_(std::move(modelDirectory)) {}

  // The bytes of a TensorProto with data_location EXTERNAL (keys location, offset, length).
  // The result views the mapped file, each file being mapped once; it is copied once only when
  // the offset leaves the elements misaligned. Throws Error naming the tensor, file and numbers.
  Tensor read(const onnx::TensorProto& proto, DType dtype, std::vector<int64_t> shape);

private:
  std::shared_ptr<const MappedFile> mapping(const std::string& location, const std::string& tensorName);

  std::filesystem::path directory_;
  std::map<std::string, std::shared_ptr<const MappedFile>> files_;
};

}  // namespace pagedc
