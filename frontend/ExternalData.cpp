// Resolution, bounds checks and mapping of ONNX external-data tensors.
#include "frontend/ExternalData.h"

#include <charconv>
#include <cstring>
#include <optional>

#include "ir/Error.h"

namespace pagedc {

namespace {
uint64_t parseByteCount(const std::string& text, const std::string& key, const std::string& tensorName) {
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty())
    fail("tensor '", tensorName, "': external data ", key, " '", text, "' is not a non-negative integer");
  return value;
}

// A location must name a file inside the model's directory: relative, with no '..' component.
void checkLocation(const std::string& location, const std::string& tensorName) {
  std::filesystem::path path(location);
  if (location.empty()) fail("tensor '", tensorName, "': external data has no location");
  if (path.is_absolute() || path.has_root_name() || path.has_root_directory())
    fail("tensor '", tensorName, "': external data location '", location, "' is absolute; it must be relative to the model's directory");
  for (const auto& part : path)
    if (part == "..") fail("tensor '", tensorName, "': external data location '", location, "' escapes the model's directory");
}
}  // namespace

std::shared_ptr<const MappedFile> ExternalDataReader::mapping(const std::string& location, const std::string& tensorName) {
  auto it = files_.find(location);
  if (it != files_.end()) return it->second;
  std::filesystem::path full = directory_ / location;
  std::shared_ptr<const MappedFile> file;
  try {
    file = MappedFile::open(full.string());
  } catch (const Error& e) {
    fail("tensor '", tensorName, "': external data: ", e.what());
  }
  files_.emplace(location, file);
  return file;
}

Tensor ExternalDataReader::read(const onnx::TensorProto& proto, DType dtype, std::vector<int64_t> shape) {
  const std::string& name = proto.name();
  std::string location;
  bool hasLocation = false;
  uint64_t offset = 0;
  std::optional<uint64_t> length;
  for (const auto& entry : proto.external_data()) {
    if (entry.key() == "location") {
      location = entry.value();
      hasLocation = true;
    } else if (entry.key() == "offset") {
      offset = parseByteCount(entry.value(), "offset", name);
    } else if (entry.key() == "length") {
      length = parseByteCount(entry.value(), "length", name);
    }
    // "checksum" and unknown keys are advisory.
  }
  if (!hasLocation) fail("tensor '", name, "': external data has no location");
  checkLocation(location, name);

  Tensor shapeOnly = Tensor::view(dtype, shape, nullptr, nullptr);
  uint64_t expected = shapeOnly.byteSize();
  if (length && *length != expected)
    fail("tensor '", name, "': external data in '", location, "' has length ", *length, " but the tensor (",
         dtypeName(dtype), shapeOnly.shapeStr(), ") needs ", expected, " bytes");
  uint64_t size = length.value_or(expected);

  auto file = mapping(location, name);
  if (offset > file->size() || size > file->size() - offset)
    fail("tensor '", name, "': external data offset ", offset, " + length ", size, " is past the end of '", location,
         "' (", file->size(), " bytes)");
  if (size == 0) return Tensor::zeros(dtype, std::move(shape));

  const std::byte* data = file->data() + offset;
  if (reinterpret_cast<uintptr_t>(data) % dtypeSize(dtype) != 0) {
    Tensor copy = Tensor::zeros(dtype, std::move(shape));
    std::memcpy(copy.mutableBytes(), data, size);
    return copy;
  }
  return Tensor::view(dtype, std::move(shape), data, file);
}

}  // namespace pagedc
