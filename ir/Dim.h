// A tensor dimension: an integer polynomial over named symbols (batch, seq, past + seq, 2*batch, ...).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pagedc {

// Dimensions are kept in canonical polynomial form so that equal sizes compare equal however the
// exporter spelled them ("past + seq" and "seq + past"), and so that the textual form round-trips.
class Dim {
public:
  using Monomial = std::vector<std::string>;  // sorted symbol names, repeated for powers

  Dim() = default;  // the constant 0
  Dim(int64_t value);  // NOLINT: constants convert implicitly, as in shape literals
  static Dim symbol(std::string name);

  bool isConstant() const;
  std::optional<int64_t> constant() const;
  // The symbol's name when this dim is exactly one symbol with coefficient 1.
  std::optional<std::string> singleSymbol() const;
  std::vector<std::string> symbols() const;

  Dim operator+(const Dim& other) const;
  Dim operator-(const Dim& other) const;
  Dim operator*(const Dim& other) const;
  Dim operator-() const;
  // Exact division: succeeds when every coefficient divides (constant divisor) or when the
  // divisor is a single monomial that divides every term. Otherwise nullopt.
  std::optional<Dim> divideExactly(const Dim& divisor) const;
  // True when the value cannot be negative whatever the symbols are: every symbol is a size
  // (>= 0), so a polynomial with no negative coefficient qualifies. False means "not provable".
  bool isKnownNonNegative() const;

  bool operator==(const Dim& other) const { return terms_ == other.terms_; }
  bool operator!=(const Dim& other) const { return !(*this == other); }
  bool operator<(const Dim& other) const { return terms_ < other.terms_; }

  // Substitutes known symbol values; the result is constant when every symbol is bound.
  Dim substitute(const std::map<std::string, int64_t>& bindings) const;
  // The canonical polynomial: coefficient of each monomial (constant term under the empty one).
  const std::map<Monomial, int64_t>& terms() const { return terms_; }

  std::string str() const;
  // Parses "seq + past", "2*batch", "n - 1", "(a + 1)*b". Throws Error on malformed text.
  static Dim parse(std::string_view text);
  // True when `name` can be a symbol in the textual form.
  static bool isValidSymbolName(std::string_view name);

private:
  void addTerm(const Monomial& monomial, int64_t coefficient);
  std::map<Monomial, int64_t> terms_;  // no zero coefficients; constant term under the empty monomial
};

using Shape = std::vector<Dim>;
std::string shapeStr(const Shape& shape);

}  // namespace pagedc
