#include "runtime/CompiledDim.h"

#include <algorithm>

namespace pagedc {

int64_t CompiledDim::evaluate(const std::vector<int64_t>& values) const {
  int64_t total = 0;
  for (const Term& term : terms) {
    int64_t product = term.coefficient;
    for (int s : term.symbols) product *= values[static_cast<size_t>(s)];
    total += product;
  }
  return total;
}

int64_t CompiledDim::upperBound(const std::vector<int64_t>& bounds) const {
  int64_t total = 0;
  for (const Term& term : terms) {
    if (term.coefficient < 0 && !term.symbols.empty()) continue;
    int64_t product = term.coefficient;
    for (int s : term.symbols) product *= bounds[static_cast<size_t>(s)];
    total += product;
  }
  return std::max<int64_t>(total, 0);
}

int symbolIndex(std::vector<std::string>& symbols, const std::string& name) {
  auto it = std::ranges::find(symbols, name);
  if (it != symbols.end()) return static_cast<int>(it - symbols.begin());
  symbols.push_back(name);
  return static_cast<int>(symbols.size() - 1);
}

std::optional<CompiledDim> compileDim(const Dim& dim, const std::vector<std::string>& symbols) {
  CompiledDim compiled;
  for (const auto& [monomial, coefficient] : dim.terms()) {
    CompiledDim::Term term{coefficient, {}};
    for (const std::string& name : monomial) {
      auto it = std::ranges::find(symbols, name);
      if (it == symbols.end()) return std::nullopt;
      term.symbols.push_back(static_cast<int>(it - symbols.begin()));
    }
    compiled.terms.push_back(std::move(term));
  }
  return compiled;
}

}  // namespace pagedc
