// Ops that carry data into the graph or pass it through: Constant, weight, Identity.
#include "ir/OpDef.h"
#include "ir/ops/KnownInts.h"
#include "ir/ops/OpRegistration.h"

namespace pagedc {

namespace {
TensorType typeOfTensor(const Tensor& tensor) {
  Shape shape;
  for (int64_t d : tensor.shape()) shape.emplace_back(d);
  return {tensor.dtype(), shape};
}
}  // namespace

void registerStructuralOps(OpRegistry& registry) {
  registry.add({
      .name = "Constant",
      .minOperands = 0,
      .maxOperands = 0,
      .attrs = {{"value", AttrKind::Tensor, true}},
      .infer =
          [](InferContext& ctx) {
            const Tensor& value = ctx.op().attr("value")->asTensor();
            ctx.setResult(0, typeOfTensor(value), knownIntsOf(value));
          },
      .evaluate = [](EvalContext& ctx) { ctx.setOutput(0, ctx.op().attr("value")->asTensor()); },
      .summary = "a small tensor held inline in the IR",
  });
  registry.add({
      .name = "weight",
      .minOperands = 0,
      .maxOperands = 0,
      .attrs = {{"name", AttrKind::String, true}},
      // A weight's type is declared where it is created (frontend, parser) and checked against the
      // store when the data is loaded; the rule keeps the declared type.
      .infer =
          [](InferContext& ctx) {
            if (!ctx.op().result(0)->type.hasRank()) ctx.error("weight needs a declared type");
          },
      .evaluate = [](EvalContext& ctx) { ctx.error("weights are bound by the interpreter, not evaluated"); },
      .summary = "a named tensor in the graph's weight store, referenced, never copied",
  });
  registry.add({
      .name = "Identity",
      .minOperands = 1,
      .maxOperands = 1,
      .infer = [](InferContext& ctx) { ctx.setResult(0, ctx.operandType(0), ctx.operandInts(0)); },
      .evaluate = [](EvalContext& ctx) { ctx.setOutput(0, ctx.input(0)); },
      .summary = "passes its operand through",
  });
}

}  // namespace pagedc
