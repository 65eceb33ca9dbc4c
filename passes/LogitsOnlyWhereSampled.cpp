// Moving the token selection in front of the LM head.
#include "passes/LogitsOnlyWhereSampled.h"

#include <set>

#include "ir/Error.h"
#include "ir/RaggedInterface.h"
#include "ir/TypeInference.h"

namespace pagedc {

namespace {
// True when the value is computed from weights and constants alone (a tied embedding's transpose,
// say): it is the same for every token.
bool isConstantLike(const Value* value, int depth = 0) {
  if (!value || !value->producer || depth > 32) return false;
  const Op* op = value->producer;
  if (op->opName() == "Constant" || op->opName() == "weight") return true;
  for (const Value* operand : op->operands)
    if (operand && !isConstantLike(operand, depth + 1)) return false;
  return true;
}
}  // namespace

void computeLogitsOnlyWhereSampled(Graph& graph) {
  Value* logits = nullptr;
  for (Value* output : graph.outputs)
    if (output->name == ragged::kLogits) logits = output;
  if (!logits) fail("the graph has no 'logits' output");

  // From the logits back through per-token elementwise ops with constant other operands (bias,
  // soft-capping, casts) to the projection MatMul/Gemm with a constant weight.
  static const std::set<std::string> kPerToken = {"Add", "Sub", "Mul", "Div", "Tanh", "Cast", "Identity"};
  Value* value = logits;
  Op* projection = nullptr;
  for (int steps = 0; steps < 16 && value->producer; ++steps) {
    Op* op = value->producer;
    if ((op->opName() == "MatMul" || op->opName() == "Gemm") && isConstantLike(op->operand(1))) {
      projection = op;
      break;
    }
    if (!kPerToken.count(op->opName())) break;
    Value* next = nullptr;
    for (Value* operand : op->operands) {
      if (!operand || isConstantLike(operand)) continue;
      if (next) fail(op->describe(), ": between the hidden states and the logits, but it combines two computed tensors");
      next = operand;
    }
    if (!next) break;
    if (graph.users(value).size() > 1 && value != logits) fail(op->describe(), ": a value on the LM head path is used elsewhere");
    value = next;
  }
  if (!projection) fail("cannot find the LM head (a MatMul or Gemm with a constant weight) above the 'logits' output");
  Value* hidden = projection->operands[0];
  if (!hidden->type.hasRank() || hidden->type.rank() != 3 || hidden->type.dim(0) != Dim(1))
    fail(projection->describe(), ": the LM head input must be [1, num_tokens, hidden] in the ragged form, got ", hidden->type.str());

  Value* indices = graph.addInput(ragged::kLogitsIndices, {DType::I64, Shape{Dim::symbol(ragged::kNumLogits)}});
  size_t index = 0;
  while (graph.ops()[index].get() != projection) ++index;
  Op* gather = graph.insertOp(index, "Gather", {hidden, indices}, {{"axis", int64_t{1}}}, {graph.uniqueName(hidden->name + ".sampled")});
  projection->operands[0] = gather->result();

  // The output drops the batch axis of one: [num_logits, vocab].
  graph.renameValue(logits, graph.uniqueName("logits.batched"));
  Op* squeezeAxes = graph.appendOp("Constant", {}, {{"value", Tensor::fromValues(DType::I64, {1}, std::vector<int64_t>{0})}}, {graph.uniqueName("logits.axes")});
  Op* squeeze = graph.appendOp("Squeeze", {logits, squeezeAxes->result()}, {}, {ragged::kLogits});
  for (Value*& output : graph.outputs)
    if (output == logits) output = squeeze->result();
  inferTypes(graph);
}

}  // namespace pagedc
