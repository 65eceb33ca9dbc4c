// Printing and element counts of tensor types.
#include "ir/TensorType.h"

namespace pagedc {

std::optional<Dim> TensorType::numElements() const {
  if (!shape) return std::nullopt;
  Dim product(1);
  for (const auto& d : *shape) product = product * d;
  return product;
}

std::string TensorType::str() const {
  return std::string(dtypeName(dtype)) + (shape ? shapeStr(*shape) : std::string("[*]"));
}

}  // namespace pagedc
