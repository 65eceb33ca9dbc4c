// The type of an IR value: an element type and a shape of symbolic dimensions (or unknown rank).
#pragma once

#include <optional>
#include <string>

#include "ir/DType.h"
#include "ir/Dim.h"

namespace pagedc {

struct TensorType {
  DType dtype = DType::F32;
  std::optional<Shape> shape;  // nullopt: rank unknown, printed as [*]

  TensorType() = default;
  TensorType(DType elementType, std::optional<Shape> dims) : dtype(elementType), shape(std::move(dims)) {}

  bool hasRank() const { return shape.has_value(); }
  size_t rank() const { return shape->size(); }
  const Dim& dim(size_t i) const { return (*shape)[i]; }
  // The product of all dims (symbolic), or nullopt when the rank is unknown.
  std::optional<Dim> numElements() const;

  bool operator==(const TensorType& other) const = default;
  std::string str() const;  // "f32[batch, seq, 64]", "i64[]", "f16[*]"
};

}  // namespace pagedc
