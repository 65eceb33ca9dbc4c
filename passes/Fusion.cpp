// The fusion stage: every fusion pass in order, then DCE.
#include "passes/Fusion.h"

#include "passes/DeadCodeElimination.h"
#include "passes/FuseActivations.h"
#include "passes/FuseNormalization.h"

namespace pagedc {

std::map<std::string, int64_t> runFusions(Graph& graph, const FusionOptions& options) {
  std::map<std::string, int64_t> counts;
  // Norms first: their chains contain Mul/Add that the other matchers never need to look at.
  for (const auto& [kind, n] : fuseNormalization(graph)) counts[kind] += n;
  for (const auto& [kind, n] : fuseActivations(graph)) counts[kind] += n;
  for (const auto& [kind, n] : fuseRotary(graph, options.rotary)) counts[kind] += n;
  eliminateDeadCode(graph);
  return counts;
}

}  // namespace pagedc
