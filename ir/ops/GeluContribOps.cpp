// onnxruntime's Gelu-family contrib activations: com.microsoft.FastGelu, BiasGelu and QuickGelu.
#include <cmath>
#include <numbers>

#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {
// Shape rule of an activation with an optional bias that broadcasts onto operand 0.
void inferBiasedActivation(InferContext& ctx) {
  requireFloat(ctx, 0, "X");
  if (ctx.hasOperand(1)) {
    requireFloat(ctx, 1, "bias");
    const TensorType& x = ctx.operandType(0);
    if (x.hasRank()) requireUnidirectionalBroadcast(ctx, 1, *x.shape, "bias");
  }
  ctx.setResult(0, ctx.operandType(0));
}

template <class Function>
void evaluateBiasedActivation(EvalContext& ctx, Function f) {
  const Tensor& x = ctx.input(0);
  Tensor y = Tensor::zeros(DType::F32, x.shape());
  float* out = y.mutableData<float>();
  const Tensor* bias = ctx.hasInput(1) ? &ctx.input(1) : nullptr;
  std::optional<BroadcastIndexer> biasIndex;
  if (bias) biasIndex.emplace(bias->shape(), x.shape());
  for (int64_t i = 0; i < x.numElements(); ++i) {
    double v = x.data<float>()[i];
    if (bias) v += bias->data<float>()[(*biasIndex)(i)];
    out[i] = static_cast<float>(f(v));
  }
  ctx.setOutput(0, y);
}
}  // namespace

void registerGeluContribOps(OpRegistry& registry) {
  registry.add({
      .name = "com.microsoft.FastGelu",
      .minOperands = 1,
      .maxOperands = 2,
      .infer = inferBiasedActivation,
      .evaluate =
          [](EvalContext& ctx) {
            evaluateBiasedActivation(ctx, [](double x) {
              return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
            });
          },
      .summary = "tanh-approximated Gelu of X + bias",
  });
  registry.add({
      .name = "com.microsoft.BiasGelu",
      .minOperands = 2,
      .maxOperands = 2,
      .infer = inferBiasedActivation,
      .evaluate =
          [](EvalContext& ctx) { evaluateBiasedActivation(ctx, [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }); },
      .summary = "exact (erf) Gelu of A + B",
  });
  registry.add({
      .name = "com.microsoft.QuickGelu",
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = {{"alpha", AttrKind::Float}},
      .infer = inferBiasedActivation,
      .evaluate =
          [](EvalContext& ctx) {
            double alpha = ctx.op().floatAttr("alpha", 1.702);
            evaluateBiasedActivation(ctx, [alpha](double x) { return x / (1.0 + std::exp(-alpha * x)); });
          },
      .summary = "X * sigmoid(alpha * X), alpha defaulting to 1.702",
  });
}

}  // namespace pagedc
