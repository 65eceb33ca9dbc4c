// The cleanup pipeline: folding, canonicalisation, CSE and DCE repeated until nothing changes.
#include "passes/Cleanup.h"

#include <algorithm>

#include "ir/OpDef.h"
#include "ir/TypeInference.h"
#include "passes/Canonicalize.h"
#include "passes/CommonSubexpressionElimination.h"
#include "passes/ConstantFolding.h"
#include "passes/DeadCodeElimination.h"
#include "passes/ShapeArithmeticFolding.h"

namespace pagedc {

namespace {
bool isGraphInput(const Graph& graph, const Value* value) {
  return std::find(graph.inputs.begin(), graph.inputs.end(), value) != graph.inputs.end();
}
bool isGraphOutput(const Graph& graph, const Value* value) {
  return std::find(graph.outputs.begin(), graph.outputs.end(), value) != graph.outputs.end();
}
}  // namespace

bool canReplaceKeepingOutputNames(const Graph& graph, const Value* from, const Value* to) {
  if (from == to) return false;
  if (!isGraphOutput(graph, from)) return true;
  return !isGraphInput(graph, to) && !isGraphOutput(graph, to);
}

bool replaceKeepingOutputNames(Graph& graph, Value* from, Value* to) {
  if (!canReplaceKeepingOutputNames(graph, from, to)) return false;
  // The output keeps its name: `to` takes it, and `from` (now unused) takes `to`'s old one.
  if (isGraphOutput(graph, from)) std::swap(from->name, to->name);
  graph.replaceAllUsesWith(from, to);
  return true;
}

bool hasSideEffects(const Op& op) { return op.opName() == "kv_cache_write"; }

const Tensor* constantData(const Graph& graph, const Value* value, int64_t maxWeightElements) {
  if (!value || !value->producer) return nullptr;
  const Op& producer = *value->producer;
  if (producer.opName() == "Constant") {
    const Attribute* attribute = producer.attr("value");
    return attribute && attribute->kind() == AttrKind::Tensor ? &attribute->asTensor() : nullptr;
  }
  if (producer.opName() == "weight" && graph.weights) {
    const Tensor* data = graph.weights->find(producer.stringAttr("name", ""));
    return data && data->numElements() <= maxWeightElements ? data : nullptr;
  }
  return nullptr;
}

std::unordered_set<const Value*> usedValues(const Graph& graph) {
  std::unordered_set<const Value*> used(graph.outputs.begin(), graph.outputs.end());
  for (const auto& op : graph.ops())
    for (const Value* operand : op->operands)
      if (operand) used.insert(operand);
  return used;
}

Value* insertConstant(Graph& graph, size_t index, Tensor tensor, const std::string& nameHint) {
  Op* op = graph.insertOp(index, "Constant", {}, {{"value", Attribute(std::move(tensor))}}, {nameHint});
  inferOpTypes(graph, *op);
  return op->result(0);
}

CleanupResult runCleanup(Graph& graph, size_t maxRounds) {
  CleanupResult result;
  while (result.rounds < maxRounds) {
    ++result.rounds;
    size_t rewrites = 0;
    // Each pass reads types (knownInts, symbolic shapes) that the previous one may have improved.
    inferTypes(graph);
    rewrites += foldShapeArithmetic(graph);
    inferTypes(graph);
    rewrites += foldConstants(graph);
    inferTypes(graph);
    rewrites += canonicalize(graph);
    inferTypes(graph);
    rewrites += eliminateCommonSubexpressions(graph);
    rewrites += eliminateDeadCode(graph);
    result.rewrites += rewrites;
    if (rewrites == 0) break;
  }
  inferTypes(graph);
  return result;
}

}  // namespace pagedc
