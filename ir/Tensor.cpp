// Host tensor storage, views and element conversions.
#include "ir/Tensor.h"

#include <cmath>

#include "ir/HalfFloat.h"

namespace pagedc {

int64_t Tensor::numElements() const {
  int64_t count = 1;
  for (int64_t d : shape_) count *= d;
  return count;
}

Tensor Tensor::zeros(DType dtype, std::vector<int64_t> shape) {
  Tensor tensor;
  tensor.null_ = false;
  tensor.dtype_ = dtype;
  tensor.shape_ = std::move(shape);
  for (int64_t d : tensor.shape_)
    if (d < 0) fail("negative dimension ", d, " in tensor shape ", tensor.shapeStr());
  size_t size = std::max<size_t>(tensor.byteSize(), 1);
  auto buffer = std::shared_ptr<std::byte[]>(new std::byte[size]());
  tensor.data_ = buffer.get();
  tensor.owner_ = std::shared_ptr<const void>(buffer, buffer.get());
  tensor.owned_ = true;
  return tensor;
}

Tensor Tensor::view(DType dtype, std::vector<int64_t> shape, const void* data, std::shared_ptr<const void> owner) {
  Tensor tensor;
  tensor.null_ = false;
  tensor.dtype_ = dtype;
  tensor.shape_ = std::move(shape);
  tensor.data_ = static_cast<const std::byte*>(data);
  tensor.owner_ = std::move(owner);
  tensor.owned_ = false;
  return tensor;
}

std::byte* Tensor::mutableBytes() {
  if (null_) fail("write to a null tensor");
  if (!owned_ || owner_.use_count() > 1) {
    Tensor copy = zeros(dtype_, shape_);
    if (byteSize()) std::memcpy(const_cast<std::byte*>(copy.data_), data_, byteSize());
    *this = std::move(copy);
  }
  return const_cast<std::byte*>(data_);
}

double loadAsDouble(DType dtype, const std::byte* p) {
  switch (dtype) {
    case DType::F32: { float v; std::memcpy(&v, p, 4); return v; }
    case DType::F64: { double v; std::memcpy(&v, p, 8); return v; }
    case DType::F16: { uint16_t v; std::memcpy(&v, p, 2); return f16ToFloat(v); }
    case DType::BF16: { uint16_t v; std::memcpy(&v, p, 2); return bf16ToFloat(v); }
    case DType::I64: { int64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
    case DType::I32: { int32_t v; std::memcpy(&v, p, 4); return v; }
    case DType::I16: { int16_t v; std::memcpy(&v, p, 2); return v; }
    case DType::I8: { int8_t v; std::memcpy(&v, p, 1); return v; }
    case DType::U64: { uint64_t v; std::memcpy(&v, p, 8); return static_cast<double>(v); }
    case DType::U32: { uint32_t v; std::memcpy(&v, p, 4); return v; }
    case DType::U16: { uint16_t v; std::memcpy(&v, p, 2); return v; }
    case DType::U8: { uint8_t v; std::memcpy(&v, p, 1); return v; }
    case DType::Bool: { uint8_t v; std::memcpy(&v, p, 1); return v ? 1.0 : 0.0; }
  }
  return 0;
}

namespace {
template <class T>
void storeInt(std::byte* p, double value) {
  T v = std::isfinite(value) ? static_cast<T>(value) : T{};
  std::memcpy(p, &v, sizeof(T));
}
}  // namespace

void storeFromDouble(DType dtype, std::byte* p, double value) {
  switch (dtype) {
    case DType::F32: { float v = static_cast<float>(value); std::memcpy(p, &v, 4); return; }
    case DType::F64: std::memcpy(p, &value, 8); return;
    case DType::F16: { uint16_t v = floatToF16(static_cast<float>(value)); std::memcpy(p, &v, 2); return; }
    case DType::BF16: { uint16_t v = floatToBf16(static_cast<float>(value)); std::memcpy(p, &v, 2); return; }
    case DType::I64: storeInt<int64_t>(p, value); return;
    case DType::I32: storeInt<int32_t>(p, value); return;
    case DType::I16: storeInt<int16_t>(p, value); return;
    case DType::I8: storeInt<int8_t>(p, value); return;
    case DType::U64: storeInt<uint64_t>(p, value); return;
    case DType::U32: storeInt<uint32_t>(p, value); return;
    case DType::U16: storeInt<uint16_t>(p, value); return;
    case DType::U8: storeInt<uint8_t>(p, value); return;
    case DType::Bool: { uint8_t v = value != 0.0; std::memcpy(p, &v, 1); return; }
  }
}

double Tensor::elementAsDouble(int64_t i) const { return loadAsDouble(dtype_, data_ + i * dtypeSize(dtype_)); }

int64_t Tensor::elementAsInt(int64_t i) const {
  const std::byte* p = data_ + i * dtypeSize(dtype_);
  switch (dtype_) {
    case DType::I64: { int64_t v; std::memcpy(&v, p, 8); return v; }
    case DType::U64: { uint64_t v; std::memcpy(&v, p, 8); return static_cast<int64_t>(v); }
    default: return static_cast<int64_t>(loadAsDouble(dtype_, p));
  }
}

std::vector<int64_t> Tensor::toInt64Vector() const {
  std::vector<int64_t> values(static_cast<size_t>(numElements()));
  for (size_t i = 0; i < values.size(); ++i) values[i] = elementAsInt(static_cast<int64_t>(i));
  return values;
}

namespace {
// The conversions weights and caches go through in bulk (compile --dtype, the interpreter's f32
// storage), without the per-element dispatch of the general path.
template <class From, class To, class Convert>
void convertAll(const std::byte* in, std::byte* out, int64_t count, Convert convert) {
  for (int64_t i = 0; i < count; ++i) {
    From x;
    std::memcpy(&x, in + i * static_cast<int64_t>(sizeof(From)), sizeof(From));
    To y = convert(x);
    std::memcpy(out + i * static_cast<int64_t>(sizeof(To)), &y, sizeof(To));
  }
}
}  // namespace

Tensor Tensor::convertTo(DType target) const {
  if (target == dtype_) return *this;
  Tensor result = zeros(target, shape_);
  std::byte* out = result.mutableBytes();
  int64_t count = numElements();
  if (dtype_ == DType::F32 && target == DType::BF16) {
    convertAll<float, uint16_t>(data_, out, count, floatToBf16);
    return result;
  }
  if (dtype_ == DType::F32 && target == DType::F16) {
    convertAll<float, uint16_t>(data_, out, count, floatToF16);
    return result;
  }
  if (dtype_ == DType::BF16 && target == DType::F32) {
    convertAll<uint16_t, float>(data_, out, count, bf16ToFloat);
    return result;
  }
  if (dtype_ == DType::F16 && target == DType::F32) {
    convertAll<uint16_t, float>(data_, out, count, f16ToFloat);
    return result;
  }
  bool integral = isInteger(dtype_) && isInteger(target);
  for (int64_t i = 0; i < count; ++i) {
    if (integral) {
      int64_t v = elementAsInt(i);
      switch (target) {
        case DType::I64: case DType::U64: std::memcpy(out + i * 8, &v, 8); break;
        default: storeFromDouble(target, out + i * dtypeSize(target), static_cast<double>(v)); break;
      }
    } else {
      storeFromDouble(target, out + i * dtypeSize(target), elementAsDouble(i));
    }
  }
  return result;
}

Tensor Tensor::reshaped(std::vector<int64_t> shape) const {
  Tensor result = *this;
  result.shape_ = std::move(shape);
  if (result.numElements() != numElements())
    fail("cannot reshape tensor of shape ", shapeStr(), " to ", result.shapeStr());
  return result;
}

std::string Tensor::shapeStr() const {
  std::string text = "[";
  for (size_t i = 0; i < shape_.size(); ++i) text += (i ? ", " : "") + std::to_string(shape_[i]);
  return text + "]";
}

}  // namespace pagedc
