// A host tensor with concrete shape: constants, weights (views into mapped files) and interpreter values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ir/DType.h"
#include "ir/Error.h"

namespace pagedc {

class Tensor {
public:
  Tensor() = default;  // the null tensor: stands for an omitted optional operand

  // Owning, zero-initialised storage.
  static Tensor zeros(DType dtype, std::vector<int64_t> shape);
  // A view of memory kept alive by `owner` (a mapped file, a protobuf buffer); never copied.
  static Tensor view(DType dtype, std::vector<int64_t> shape, const void* data, std::shared_ptr<const void> owner);
  // Owning tensor from host values whose C++ type matches the dtype's size (float for f32, int64_t for i64, ...).
  template <class T>
  static Tensor fromValues(DType dtype, std::vector<int64_t> shape, const std::vector<T>& values);

  bool isNull() const { return null_; }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  size_t rank() const { return shape_.size(); }
  int64_t numElements() const;
  size_t byteSize() const { return static_cast<size_t>(numElements()) * dtypeSize(dtype_); }

  const std::byte* bytes() const { return data_; }
  // Writable storage; copies first when the buffer is borrowed or shared (copy-on-write).
  std::byte* mutableBytes();
  template <class T>
  const T* data() const { return reinterpret_cast<const T*>(data_); }
  template <class T>
  T* mutableData() { return reinterpret_cast<T*>(mutableBytes()); }

  // Element i converted whatever the dtype (for constants, folding, printing).
  double elementAsDouble(int64_t i) const;
  int64_t elementAsInt(int64_t i) const;
  std::vector<int64_t> toInt64Vector() const;

  // Element-by-element conversion (floats round to nearest even).
  Tensor convertTo(DType target) const;
  // Same storage, new shape with the same element count.
  Tensor reshaped(std::vector<int64_t> shape) const;

  std::string shapeStr() const;

private:
  bool null_ = true;
  DType dtype_ = DType::F32;
  std::vector<int64_t> shape_;
  const std::byte* data_ = nullptr;
  std::shared_ptr<const void> owner_;
  bool owned_ = false;  // data_ is a buffer this tensor allocated (writable when not shared)
};

template <class T>
Tensor Tensor::fromValues(DType dtype, std::vector<int64_t> shape, const std::vector<T>& values) {
  if (sizeof(T) != dtypeSize(dtype)) fail("Tensor::fromValues: host type size does not match ", dtypeName(dtype));
  Tensor tensor = zeros(dtype, std::move(shape));
  if (static_cast<int64_t>(values.size()) != tensor.numElements())
    fail("Tensor::fromValues: ", values.size(), " values for shape ", tensor.shapeStr());
  if (!values.empty()) std::memcpy(tensor.mutableBytes(), values.data(), values.size() * sizeof(T));
  return tensor;
}

// Conversions of one element between a dtype's storage and double.
double loadAsDouble(DType dtype, const std::byte* element);
void storeFromDouble(DType dtype, std::byte* element, double value);

}  // namespace pagedc
