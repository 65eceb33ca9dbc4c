// Element types of IR tensors, their names in the textual form and their sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pagedc {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, I16, I8, U64, U32, U16, U8, Bool };
inline constexpr int kNumDTypes = 13;

std::string_view dtypeName(DType type);
std::optional<DType> parseDType(std::string_view name);
size_t dtypeSize(DType type);
bool isFloatingPoint(DType type);
bool isInteger(DType type);  // signed or unsigned, not bool

}  // namespace pagedc
