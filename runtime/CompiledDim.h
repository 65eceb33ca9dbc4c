// Symbolic dimensions (ir/Dim) compiled against an executor's symbol table, so that evaluating a
// planned shape per step is integer arithmetic over an array, without allocation or name lookup.
// Shared by the CPU and CUDA executors, which plan a graph's shapes once at load.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/Dim.h"

namespace pagedc {

struct CompiledDim {
  struct Term {
    int64_t coefficient = 0;
    std::vector<int> symbols;  // indices into the symbol table, repeated for powers
  };
  std::vector<Term> terms;

  int64_t evaluate(const std::vector<int64_t>& values) const;
  // An upper bound for symbols in [0, bound]: positive terms at the bounds, negative ones at 0.
  int64_t upperBound(const std::vector<int64_t>& bounds) const;
};

// The index of `name` in `symbols`, appended when absent.
int symbolIndex(std::vector<std::string>& symbols, const std::string& name);

// `dim` over `symbols`; nullopt when it names a symbol the table does not have.
std::optional<CompiledDim> compileDim(const Dim& dim, const std::vector<std::string>& symbols);

}  // namespace pagedc
