// Known integer contents of values (the symbolic ints shape rules propagate for shape arithmetic).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ir/OpDef.h"

namespace pagedc {

// Known integer contents are kept only for small vectors, like Constant's: they exist for shape
// arithmetic, and larger tensors would make type inference slow without helping it.
inline constexpr size_t kMaxKnownInts = 64;

inline std::optional<std::vector<Dim>> smallKnownInts(std::vector<Dim> values) {
  if (values.size() > kMaxKnownInts) return std::nullopt;
  return values;
}

// The contents of a small integer constant (0-D or 1-D), so shape arithmetic can see through it.
inline std::optional<std::vector<Dim>> knownIntsOf(const Tensor& tensor) {
  if (!isInteger(tensor.dtype()) || tensor.rank() > 1 || tensor.numElements() > static_cast<int64_t>(kMaxKnownInts)) return std::nullopt;
  std::vector<Dim> dims;
  for (int64_t v : tensor.toInt64Vector()) dims.emplace_back(v);
  return dims;
}

// The values when every one is a known constant.
inline std::optional<std::vector<int64_t>> allConstant(const std::vector<Dim>& values) {
  std::vector<int64_t> result;
  for (const Dim& d : values) {
    auto c = d.constant();
    if (!c) return std::nullopt;
    result.push_back(*c);
  }
  return result;
}

}  // namespace pagedc
