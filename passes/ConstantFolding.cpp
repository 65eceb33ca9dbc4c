// fold-constants: evaluates ops whose operands are all constants and stores the results as constants.
#include "passes/ConstantFolding.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "ir/Error.h"
#include "ir/Interpreter.h"
#include "ir/OpDef.h"
#include "ir/TypeInference.h"
#include "passes/Cleanup.h"

namespace pagedc {

namespace {

// The constant shape of a result when it has one and is small enough to materialise.
std::optional<std::vector<int64_t>> foldableShape(const TensorType& type) {
  if (!type.hasRank()) return std::nullopt;
  std::vector<int64_t> shape;
  int64_t count = 1;
  for (const Dim& d : *type.shape) {
    auto c = d.constant();
    if (!c || *c < 0) return std::nullopt;
    shape.push_back(*c);
    count *= *c;
    if (count > kMaxFoldedResultElements) return std::nullopt;
  }
  return shape;
}

bool sameBytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         (a.byteSize() == 0 || std::memcmp(a.bytes(), b.bytes(), a.byteSize()) == 0);
}

// The op's results, evaluated and converted to their declared dtypes, or nullopt when the op is
// not foldable: an operand is not constant, a result has no constant shape, the reference fails,
// or a result's declared dtype cannot hold the evaluated value exactly.
std::optional<std::vector<Tensor>> evaluateConstantOp(const Graph& graph, const Op& op) {
  const OpDef& def = op.def();
  if (!def.evaluate || op.opName() == "Constant" || op.opName() == "weight" || hasSideEffects(op)) return std::nullopt;
  std::vector<Tensor> inputs;
  bool anyOperand = false;
  for (const Value* operand : op.operands) {
    if (!operand) {
      inputs.emplace_back();
      continue;
    }
    const Tensor* data = constantData(graph, operand, kMaxFoldedWeightElements);
    if (!data) return std::nullopt;
    inputs.push_back(toCanonical(*data));
    anyOperand = true;
  }
  if (!anyOperand) return std::nullopt;  // nothing to fold that is not already a constant source
  std::vector<std::vector<int64_t>> shapes;
  for (const Value* result : op.results) {
    auto shape = foldableShape(result->type);
    if (!shape) return std::nullopt;
    shapes.push_back(*shape);
  }
  EvalContext ctx(op, std::move(inputs));
  try {
    def.evaluate(ctx);
  } catch (const Error&) {
    return std::nullopt;  // invalid at run time too: leave it for the interpreter or backend to report
  }
  std::vector<Tensor> results;
  for (size_t i = 0; i < op.results.size(); ++i) {
    const Tensor& canonical = ctx.outputs()[i];
    DType declared = op.results[i]->type.dtype;
    if (canonical.isNull() || canonical.dtype() != canonicalDType(declared) || canonical.shape() != shapes[i]) return std::nullopt;
    Tensor stored = canonical.convertTo(declared);
    // The reference keeps f16 intermediates in f32; rounding them here would change the model.
    if (!sameBytes(toCanonical(stored), canonical)) return std::nullopt;
    results.push_back(std::move(stored));
  }
  return results;
}

std::string freshWeightName(const WeightStore& store, const std::string& hint) {
  std::string base = "folded." + hint;
  if (!store.contains(base)) return base;
  for (size_t suffix = 1;; ++suffix) {
    std::string candidate = base + "_" + std::to_string(suffix);
    if (!store.contains(candidate)) return candidate;
  }
}

}  // namespace

size_t foldConstants(Graph& graph) {
  size_t folded = 0;
  // Uses only move from the results of ops already folded (never revisited) to fresh constants.
  auto used = usedValues(graph);
  for (size_t index = 0; index < graph.ops().size(); ++index) {
    Op* op = graph.ops()[index].get();
    bool anyUsed = false;
    for (const Value* result : op->results) anyUsed = anyUsed || used.count(result);
    if (!anyUsed) continue;  // dead: DCE's job, and folding it would never converge
    auto results = evaluateConstantOp(graph, *op);
    if (!results) continue;
    bool large = false;
    for (const Tensor& t : *results) large = large || t.numElements() > kMaxInlineConstantElements;
    if (large && !graph.weights) continue;
    for (size_t i = 0; i < op->results.size(); ++i) {
      Value* result = op->results[i];
      if (!used.count(result)) continue;
      Tensor& tensor = (*results)[i];
      Value* replacement = nullptr;
      // A result equal to an operand (Identity of a weight, a no-op Reshape) is that operand:
      // materialising it would copy the data.
      for (Value* operand : op->operands) {
        if (!operand || operand->type != result->type || !canReplaceKeepingOutputNames(graph, result, operand)) continue;
        const Tensor* data = constantData(graph, operand, kMaxFoldedWeightElements);
        if (data && sameBytes(*data, tensor)) replacement = operand;
        if (replacement) break;
      }
      if (replacement) {
        replaceKeepingOutputNames(graph, result, replacement);
        continue;
      }
      if (tensor.numElements() <= kMaxInlineConstantElements) {
        replacement = insertConstant(graph, index, std::move(tensor), result->name);
      } else {
        // Large results live in the weight store, like the model's own tensors.
        std::string weightName = freshWeightName(*graph.weights, result->name);
        graph.weights->add(weightName, std::move(tensor));
        Op* weightOp = graph.insertOp(index, "weight", {}, {{"name", Attribute(weightName)}}, {result->name});
        weightOp->result(0)->type = result->type;
        inferOpTypes(graph, *weightOp);
        replacement = weightOp->result(0);
      }
      ++index;  // `op` moved one place down
      replaceKeepingOutputNames(graph, result, replacement);  // a fresh value can always take an output's name
    }
    ++folded;
  }
  return folded;
}

}  // namespace pagedc
