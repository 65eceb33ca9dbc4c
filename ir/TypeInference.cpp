// Forward type inference over a graph.
#include "ir/TypeInference.h"

#include "ir/Error.h"
#include "ir/OpDef.h"

namespace pagedc {

namespace {
// Fresh symbols are numbered after any _uN already present in the graph inputs.
int firstFreeFreshIndex(const Graph& graph) {
  int next = 0;
  for (const Value* input : graph.inputs) {
    if (!input->type.shape) continue;
    for (const Dim& dim : *input->type.shape)
      for (const std::string& name : dim.symbols())
        if (name.size() > 2 && name.rfind("_u", 0) == 0 && name.find_first_not_of("0123456789", 2) == std::string::npos)
          next = std::max(next, std::stoi(name.substr(2)) + 1);
  }
  return next;
}
}  // namespace

void inferOpTypes(Graph& graph, Op& op) {
  const OpDef& def = op.def();
  int numOperands = static_cast<int>(op.operands.size());
  if (numOperands < def.minOperands || (def.maxOperands >= 0 && numOperands > def.maxOperands))
    fail(op.describe(), ": takes ", def.minOperands, def.maxOperands < 0 ? "+" : (def.maxOperands == def.minOperands ? "" : "-" + std::to_string(def.maxOperands)),
         " operands, got ", numOperands);
  InferContext ctx(op, graph);
  def.infer(ctx);
}

void inferTypes(Graph& graph) {
  InferContext::freshCounter() = firstFreeFreshIndex(graph);
  for (const auto& op : graph.ops()) inferOpTypes(graph, *op);
}

}  // namespace pagedc
