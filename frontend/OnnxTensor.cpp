// TensorProto decoding: element types, the storage fields and their sizes.
#include "frontend/OnnxTensor.h"

#include <bit>
#include <cstring>
#include <limits>

#include "ir/Error.h"

namespace pagedc {

static_assert(std::endian::native == std::endian::little, "ONNX raw_data is little-endian; big-endian hosts need byte swapping");

namespace {
using onnx::TensorProto;

struct TypePair {
  int32_t onnx;
  DType dtype;
};
constexpr TypePair kTypes[] = {
    {TensorProto::FLOAT, DType::F32},   {TensorProto::FLOAT16, DType::F16}, {TensorProto::BFLOAT16, DType::BF16},
    {TensorProto::DOUBLE, DType::F64},  {TensorProto::INT64, DType::I64},   {TensorProto::INT32, DType::I32},
    {TensorProto::INT16, DType::I16},   {TensorProto::INT8, DType::I8},     {TensorProto::UINT64, DType::U64},
    {TensorProto::UINT32, DType::U32},  {TensorProto::UINT16, DType::U16},  {TensorProto::UINT8, DType::U8},
    {TensorProto::BOOL, DType::Bool},
};

// Copies `count` typed-field values into the tensor's storage, converting each to the dtype.
template <class Field, class Convert>
void fillFrom(Tensor& tensor, const Field& field, const char* fieldName, const std::string& what, Convert convert) {
  if (field.size() != tensor.numElements())
    fail("tensor '", what, "': ", fieldName, " holds ", field.size(), " values but ", dtypeName(tensor.dtype()),
         tensor.shapeStr(), " has ", tensor.numElements(), " elements");
  std::byte* out = tensor.mutableBytes();
  size_t size = dtypeSize(tensor.dtype());
  for (int i = 0; i < field.size(); ++i) convert(field.Get(i), out + static_cast<size_t>(i) * size);
}

template <class T>
auto storeAs() {
  return [](auto value, std::byte* out) {
    T converted = static_cast<T>(value);
    std::memcpy(out, &converted, sizeof(T));
  };
}
}  // namespace

std::optional<DType> dtypeFromOnnx(int32_t onnxType) {
  for (const auto& pair : kTypes)
    if (pair.onnx == onnxType) return pair.dtype;
  return std::nullopt;
}

int32_t onnxFromDType(DType dtype) {
  for (const auto& pair : kTypes)
    if (pair.dtype == dtype) return pair.onnx;
  fail("no ONNX type for ", dtypeName(dtype));
}

std::string onnxTypeName(int32_t onnxType) {
  // Types newer than the ONNX headers this build uses (1.12) are named from the current spec.
  switch (onnxType) {
    case 17: return "FLOAT8E4M3FN";
    case 18: return "FLOAT8E4M3FNUZ";
    case 19: return "FLOAT8E5M2";
    case 20: return "FLOAT8E5M2FNUZ";
    case 21: return "UINT4";
    case 22: return "INT4";
    case 23: return "FLOAT4E2M1";
    case 24: return "FLOAT8E8M0";
    default: break;
  }
  if (TensorProto::DataType_IsValid(onnxType)) return TensorProto::DataType_Name(static_cast<TensorProto::DataType>(onnxType));
  return "type " + std::to_string(onnxType);
}

Tensor tensorFromOnnx(const onnx::TensorProto& proto, const TensorSource& source, const std::string& what) {
  std::optional<DType> dtype = dtypeFromOnnx(proto.data_type());
  if (!dtype) fail("tensor '", what, "': element type ", onnxTypeName(proto.data_type()), " is not supported");
  if (proto.has_segment()) fail("tensor '", what, "': segmented tensors are not supported");

  std::vector<int64_t> shape(proto.dims().begin(), proto.dims().end());
  int64_t elements = 1;
  for (int64_t d : shape) {
    if (d < 0) fail("tensor '", what, "': negative dimension ", d);
    if (d != 0 && elements > std::numeric_limits<int64_t>::max() / 8 / d) fail("tensor '", what, "': too many elements");
    elements *= d;
  }

  if (proto.data_location() == TensorProto::EXTERNAL) {
    if (!source.externalData) fail("tensor '", what, "': external data is not allowed here");
    return source.externalData->read(proto, *dtype, std::move(shape));
  }

  if (proto.has_raw_data()) {
    const std::string& raw = proto.raw_data();
    size_t needed = static_cast<size_t>(elements) * dtypeSize(*dtype);
    if (raw.size() != needed)
      fail("tensor '", what, "': raw_data has ", raw.size(), " bytes but ", dtypeName(*dtype),
           Tensor::view(*dtype, shape, nullptr, nullptr).shapeStr(), " needs ", needed);
    bool aligned = reinterpret_cast<uintptr_t>(raw.data()) % dtypeSize(*dtype) == 0;
    if (source.rawDataOwner && aligned && !raw.empty())
      return Tensor::view(*dtype, std::move(shape), raw.data(), source.rawDataOwner);
    Tensor tensor = Tensor::zeros(*dtype, std::move(shape));
    if (!raw.empty()) std::memcpy(tensor.mutableBytes(), raw.data(), raw.size());
    return tensor;
  }

  Tensor tensor = Tensor::zeros(*dtype, std::move(shape));
  switch (*dtype) {
    case DType::F32: fillFrom(tensor, proto.float_data(), "float_data", what, storeAs<float>()); break;
    case DType::F64: fillFrom(tensor, proto.double_data(), "double_data", what, storeAs<double>()); break;
    case DType::I64: fillFrom(tensor, proto.int64_data(), "int64_data", what, storeAs<int64_t>()); break;
    case DType::U64: fillFrom(tensor, proto.uint64_data(), "uint64_data", what, storeAs<uint64_t>()); break;
    case DType::U32: fillFrom(tensor, proto.uint64_data(), "uint64_data", what, storeAs<uint32_t>()); break;
    case DType::I32: fillFrom(tensor, proto.int32_data(), "int32_data", what, storeAs<int32_t>()); break;
    case DType::I16: fillFrom(tensor, proto.int32_data(), "int32_data", what, storeAs<int16_t>()); break;
    case DType::I8: fillFrom(tensor, proto.int32_data(), "int32_data", what, storeAs<int8_t>()); break;
    case DType::U16: fillFrom(tensor, proto.int32_data(), "int32_data", what, storeAs<uint16_t>()); break;
    case DType::U8: fillFrom(tensor, proto.int32_data(), "int32_data", what, storeAs<uint8_t>()); break;
    // int32_data carries the 16 bits of each half-precision value and 0/1 for bools.
    case DType::F16:
    case DType::BF16: fillFrom(tensor, proto.int32_data(), "int32_data", what, storeAs<uint16_t>()); break;
    case DType::Bool:
      fillFrom(tensor, proto.int32_data(), "int32_data", what, [](int32_t value, std::byte* out) { *out = std::byte{value != 0}; });
      break;
  }
  return tensor;
}

}  // namespace pagedc
