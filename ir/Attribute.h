// Op attributes: the compile-time parameters of an op (axis, perm, epsilon, a constant's value, ...).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ir/DType.h"
#include "ir/Tensor.h"

namespace pagedc {

enum class AttrKind { Int, Float, String, Ints, Floats, Strings, Type, Tensor };
std::string_view attrKindName(AttrKind kind);

class Attribute {
public:
  using Storage = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>,
                               std::vector<std::string>, DType, Tensor>;

  Attribute() = default;
  Attribute(int64_t v) : value_(v) {}  // NOLINT: attributes are built from plain values
  Attribute(int v) : value_(static_cast<int64_t>(v)) {}  // NOLINT
  // Float attributes have float32 precision, as in ONNX, so the textual form round-trips exactly.
  Attribute(double v) : value_(static_cast<double>(static_cast<float>(v))) {}  // NOLINT
  Attribute(std::string v) : value_(std::move(v)) {}  // NOLINT
  Attribute(const char* v) : value_(std::string(v)) {}  // NOLINT
  Attribute(std::vector<int64_t> v) : value_(std::move(v)) {}  // NOLINT
  Attribute(std::vector<double> v);  // NOLINT: rounded to float32 like single floats
  Attribute(std::vector<std::string> v) : value_(std::move(v)) {}  // NOLINT
  Attribute(DType v) : value_(v) {}  // NOLINT
  Attribute(Tensor v) : value_(std::move(v)) {}  // NOLINT

  AttrKind kind() const { return static_cast<AttrKind>(value_.index()); }
  int64_t asInt() const { return std::get<int64_t>(value_); }
  double asFloat() const { return std::get<double>(value_); }
  const std::string& asString() const { return std::get<std::string>(value_); }
  const std::vector<int64_t>& asInts() const { return std::get<std::vector<int64_t>>(value_); }
  const std::vector<double>& asFloats() const { return std::get<std::vector<double>>(value_); }
  const std::vector<std::string>& asStrings() const { return std::get<std::vector<std::string>>(value_); }
  DType asType() const { return std::get<DType>(value_); }
  const Tensor& asTensor() const { return std::get<Tensor>(value_); }

  bool operator==(const Attribute& other) const;

private:
  Storage value_;
};

// Attributes by name, sorted so that printing is deterministic.
using AttrMap = std::map<std::string, Attribute>;

}  // namespace pagedc
