// Dead-code elimination by a backward liveness sweep.
#include "passes/DeadCodeElimination.h"

#include <unordered_set>

namespace pagedc {

size_t eliminateDeadCode(Graph& graph) {
  std::unordered_set<const Value*> live(graph.outputs.begin(), graph.outputs.end());
  std::unordered_set<const Op*> keep;
  const auto& ops = graph.ops();
  for (auto it = ops.rbegin(); it != ops.rend(); ++it) {
    const Op& op = **it;
    bool used = false;
    for (const Value* result : op.results) used = used || live.count(result);
    if (!used) continue;
    keep.insert(&op);
    for (const Value* operand : op.operands)
      if (operand) live.insert(operand);
  }
  size_t before = ops.size();
  graph.eraseOpsIf([&](const Op& op) { return !keep.count(&op); });
  return before - graph.ops().size();
}

}  // namespace pagedc
