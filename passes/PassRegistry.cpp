// The list of passes pagedc-opt can run by name.
#include "passes/PassRegistry.h"

#include "ir/TypeInference.h"
#include "ir/Verifier.h"
#include "passes/DeadCodeElimination.h"

namespace pagedc {

const std::vector<PassInfo>& allPasses() {
  static const std::vector<PassInfo> passes = {
      {"infer-types", "recompute every result type with the ops' shape rules", [](Graph& g) { inferTypes(g); }},
      {"verify", "check the graph's invariants", [](Graph& g) { verifyOrThrow(g); }},
      {"dce", "remove ops whose results nothing uses", [](Graph& g) { eliminateDeadCode(g); }},
  };
  return passes;
}

const PassInfo* findPass(std::string_view name) {
  for (const auto& pass : allPasses())
    if (pass.name == name) return &pass;
  return nullptr;
}

}  // namespace pagedc
