// Names and sizes of element types.
#include "ir/DType.h"

#include <array>

namespace pagedc {
namespace {
struct DTypeInfo {
  DType type;
  std::string_view name;
  size_t size;
};
constexpr std::array<DTypeInfo, kNumDTypes> kInfo = {{
    {DType::F32, "f32", 4},  {DType::F16, "f16", 2}, {DType::BF16, "bf16", 2}, {DType::F64, "f64", 8},
    {DType::I64, "i64", 8},  {DType::I32, "i32", 4}, {DType::I16, "i16", 2},   {DType::I8, "i8", 1},
    {DType::U64, "u64", 8},  {DType::U32, "u32", 4}, {DType::U16, "u16", 2},   {DType::U8, "u8", 1},
    {DType::Bool, "bool", 1},
}};
static_assert(kInfo.size() == kNumDTypes, "every dtype needs a name and a size");
}  // namespace

std::string_view dtypeName(DType type) { return kInfo[static_cast<size_t>(type)].name; }
size_t dtypeSize(DType type) { return kInfo[static_cast<size_t>(type)].size; }

std::optional<DType> parseDType(std::string_view name) {
  for (const auto& info : kInfo)
    if (info.name == name) return info.type;
  return std::nullopt;
}

bool isFloatingPoint(DType type) {
  return type == DType::F32 || type == DType::F16 || type == DType::BF16 || type == DType::F64;
}
bool isInteger(DType type) { return !isFloatingPoint(type) && type != DType::Bool; }

}  // namespace pagedc
