// Attribute kinds and equality (used by CSE and tests).
#include "ir/Attribute.h"

#include <array>
#include <type_traits>

namespace pagedc {

std::string_view attrKindName(AttrKind kind) {
  static constexpr std::array<std::string_view, 8> kNames = {"int", "float", "string", "ints", "floats", "strings", "type", "tensor"};
  return kNames[static_cast<size_t>(kind)];
}

Attribute::Attribute(std::vector<double> v) {
  for (double& x : v) x = static_cast<double>(static_cast<float>(x));
  value_ = std::move(v);
}

bool Attribute::operator==(const Attribute& other) const {
  if (kind() != other.kind()) return false;
  return std::visit(
      [&](const auto& a) {
        using T = std::decay_t<decltype(a)>;
        const T& b = std::get<T>(other.value_);
        if constexpr (std::is_same_v<T, Tensor>) {
          return a.dtype() == b.dtype() && a.shape() == b.shape() &&
                 (a.byteSize() == 0 || std::memcmp(a.bytes(), b.bytes(), a.byteSize()) == 0);
        } else {
          return a == b;
        }
      },
      value_);
}

}  // namespace pagedc
