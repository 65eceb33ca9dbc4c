// Canonical polynomial arithmetic, printing and parsing for symbolic dimensions.
#include "ir/Dim.h"

#include <algorithm>
#include <cctype>

#include "ir/Error.h"

namespace pagedc {

Dim::Dim(int64_t value) {
  if (value != 0) terms_[{}] = value;
}

Dim Dim::symbol(std::string name) {
  Dim dim;
  dim.terms_[{std::move(name)}] = 1;
  return dim;
}

bool Dim::isConstant() const { return terms_.empty() || (terms_.size() == 1 && terms_.begin()->first.empty()); }

std::optional<int64_t> Dim::constant() const {
  if (terms_.empty()) return 0;
  if (isConstant()) return terms_.begin()->second;
  return std::nullopt;
}

std::optional<std::string> Dim::singleSymbol() const {
  if (terms_.size() != 1) return std::nullopt;
  const auto& [monomial, coefficient] = *terms_.begin();
  if (monomial.size() != 1 || coefficient != 1) return std::nullopt;
  return monomial.front();
}

std::vector<std::string> Dim::symbols() const {
  std::vector<std::string> names;
  for (const auto& [monomial, coefficient] : terms_)
    for (const auto& name : monomial)
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  return names;
}

void Dim::addTerm(const Monomial& monomial, int64_t coefficient) {
  if (coefficient == 0) return;
  auto [it, inserted] = terms_.emplace(monomial, coefficient);
  if (!inserted) {
    it->second += coefficient;
    if (it->second == 0) terms_.erase(it);
  }
}

Dim Dim::operator+(const Dim& other) const {
  Dim sum = *this;
  for (const auto& [monomial, coefficient] : other.terms_) sum.addTerm(monomial, coefficient);
  return sum;
}

Dim Dim::operator-() const {
  Dim negated;
  for (const auto& [monomial, coefficient] : terms_) negated.terms_[monomial] = -coefficient;
  return negated;
}

Dim Dim::operator-(const Dim& other) const { return *this + (-other); }

Dim Dim::operator*(const Dim& other) const {
  Dim product;
  for (const auto& [left, leftCoefficient] : terms_) {
    for (const auto& [right, rightCoefficient] : other.terms_) {
      Monomial monomial = left;
      monomial.insert(monomial.end(), right.begin(), right.end());
      std::sort(monomial.begin(), monomial.end());
      product.addTerm(monomial, leftCoefficient * rightCoefficient);
    }
  }
  return product;
}

std::optional<Dim> Dim::divideExactly(const Dim& divisor) const {
  if (divisor.terms_.size() != 1) {
    if (*this == divisor) return Dim(1);
    return std::nullopt;
  }
  const auto& [divisorMonomial, divisorCoefficient] = *divisor.terms_.begin();
  Dim quotient;
  for (const auto& [monomial, coefficient] : terms_) {
    if (coefficient % divisorCoefficient != 0) return std::nullopt;
    Monomial remaining = monomial;
    for (const auto& name : divisorMonomial) {
      auto it = std::find(remaining.begin(), remaining.end(), name);
      if (it == remaining.end()) return std::nullopt;
      remaining.erase(it);
    }
    quotient.addTerm(remaining, coefficient / divisorCoefficient);
  }
  return quotient;
}

bool Dim::isKnownNonNegative() const {
  return std::all_of(terms_.begin(), terms_.end(), [](const auto& term) { return term.second > 0; });
}

Dim Dim::substitute(const std::map<std::string, int64_t>& bindings) const {
  Dim result;
  for (const auto& [monomial, coefficient] : terms_) {
    Dim term(coefficient);
    for (const auto& name : monomial) {
      auto it = bindings.find(name);
      term = term * (it == bindings.end() ? Dim::symbol(name) : Dim(it->second));
    }
    result = result + term;
  }
  return result;
}

std::string Dim::str() const {
  if (terms_.empty()) return "0";
  // Symbolic terms first, by degree then name; the constant last: "past + seq + 1".
  std::vector<std::pair<Monomial, int64_t>> ordered(terms_.begin(), terms_.end());
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    if (a.first.empty() != b.first.empty()) return b.first.empty();
    if (a.first.size() != b.first.size()) return a.first.size() > b.first.size();
    return a.first < b.first;
  });
  std::string text;
  bool first = true;
  for (const auto& [monomial, coefficient] : ordered) {
    int64_t magnitude = coefficient < 0 ? -coefficient : coefficient;
    if (first) {
      if (coefficient < 0) text += "-";
    } else {
      text += coefficient < 0 ? " - " : " + ";
    }
    first = false;
    std::string factors;
    for (const auto& name : monomial) factors += (factors.empty() ? "" : "*") + name;
    if (monomial.empty()) text += std::to_string(magnitude);
    else if (magnitude == 1) text += factors;
    else text += std::to_string(magnitude) + "*" + factors;
  }
  return text;
}

bool Dim::isValidSymbolName(std::string_view name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

namespace {
// Recursive-descent parser for dimension expressions: sum := product (('+'|'-') product)*,
// product := unary ('*' unary)*, unary := '-' unary | atom, atom := integer | symbol | '(' sum ')'.
class DimExprParser {
public:
  explicit DimExprParser(std::string_view text) : text_(text) {}

  Dim parseAll() {
    Dim result = parseSum();
    skipSpace();
    if (pos_ != text_.size()) error("unexpected '" + std::string(1, text_[pos_]) + "'");
    return result;
  }

private:
  [[noreturn]] void error(const std::string& what) {
    fail("malformed dimension '", text_, "' at column ", pos_ + 1, ": ", what);
  }
  void skipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool accept(char c) {
    skipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  Dim parseSum() {
    Dim result = parseProduct();
    for (;;) {
      if (accept('+')) result = result + parseProduct();
      else if (accept('-')) result = result - parseProduct();
      else return result;
    }
  }
  Dim parseProduct() {
    Dim result = parseUnary();
    while (accept('*')) result = result * parseUnary();
    return result;
  }
  Dim parseUnary() {
    if (accept('-')) return -parseUnary();
    return parseAtom();
  }
  Dim parseAtom() {
    skipSpace();
    if (pos_ >= text_.size()) error("expected a number or a symbol");
    if (accept('(')) {
      Dim inner = parseSum();
      if (!accept(')')) error("expected ')'");
      return inner;
    }
    char c = text_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      int64_t value = 0;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_])))
        value = value * 10 + (text_[pos_++] - '0');
      return Dim(value);
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = pos_;
      while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) ++pos_;
      return Dim::symbol(std::string(text_.substr(start, pos_ - start)));
    }
    error("unexpected '" + std::string(1, c) + "'");
  }

  std::string_view text_;
  size_t pos_ = 0;
};
}  // namespace

Dim Dim::parse(std::string_view text) { return DimExprParser(text).parseAll(); }

std::string shapeStr(const Shape& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + shape[i].str();
  return text + "]";
}

}  // namespace pagedc
