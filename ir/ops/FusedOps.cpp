// pagedc's own fused ops (rms_norm, layer_norm, gelu, silu, gated_act, rope): what the fusion passes produce.
//
// Each is declared once here with its shape rule and reference kernel. The kernels accumulate row
// statistics in double, so they differ from the unfused f32 chains only by summation order.
#include <cmath>
#include <numbers>
#include <optional>
#include <string>

#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {

// ---- rms_norm / layer_norm ----------------------------------------------------------------------

// Operand layout: rms_norm(x, weight, residual?) and layer_norm(x, weight, bias?, residual?).
// Result 0 is the normalised tensor; result 1, when present, is the normalised sum x + residual.
void inferNorm(InferContext& ctx, std::optional<size_t> biasOperand, size_t residualOperand) {
  requireFloat(ctx, 0, "x");
  const TensorType& x = ctx.operandType(0);
  if (!x.hasRank() || x.rank() == 0) ctx.error("x must have rank >= 1, got ", x.str());
  const Dim& hidden = x.dim(x.rank() - 1);
  requireFloat(ctx, 1, "weight");
  requireRank(ctx, 1, {1}, "weight");
  requireSameDim(ctx, ctx.operandType(1).dim(0), hidden, "weight must have the size of x's last axis");
  if (biasOperand && ctx.hasOperand(*biasOperand)) {
    requireFloat(ctx, *biasOperand, "bias");
    requireRank(ctx, *biasOperand, {1}, "bias");
    requireSameDim(ctx, ctx.operandType(*biasOperand).dim(0), hidden, "bias must have the size of x's last axis");
  }
  bool hasResidual = ctx.hasOperand(residualOperand);
  if (hasResidual) {
    requireFloat(ctx, residualOperand, "residual");
    const TensorType& residual = ctx.operandType(residualOperand);
    if (!residual.hasRank() || residual.rank() != x.rank()) ctx.error("residual ", residual.str(), " must have the shape of x ", x.str());
    for (size_t i = 0; i < x.rank(); ++i) requireSameDim(ctx, residual.dim(i), x.dim(i), "residual must have the shape of x");
  }
  if (ctx.numResults() > 1 && !hasResidual) ctx.error("the sum result needs a residual operand");
  for (size_t r = 0; r < ctx.numResults(); ++r) ctx.setResult(r, x);
}

void evaluateNorm(EvalContext& ctx, bool subtractMean, std::optional<size_t> biasOperand, size_t residualOperand) {
  Tensor sum = ctx.input(0);
  int64_t hidden = sum.rank() == 0 ? 1 : sum.shape().back();
  if (ctx.hasInput(residualOperand)) {
    const Tensor& residual = ctx.input(residualOperand);
    if (residual.shape() != sum.shape()) ctx.error("residual ", residual.shapeStr(), " must have the shape of x ", sum.shapeStr());
    float* s = sum.mutableData<float>();
    for (int64_t i = 0; i < sum.numElements(); ++i) s[i] += residual.data<float>()[i];
  }
  const Tensor& weight = ctx.input(1);
  const Tensor* bias = biasOperand && ctx.hasInput(*biasOperand) ? &ctx.input(*biasOperand) : nullptr;
  if (weight.numElements() != hidden) ctx.error("weight has ", weight.numElements(), " elements, x's last axis ", hidden);
  if (bias && bias->numElements() != hidden) ctx.error("bias has ", bias->numElements(), " elements, x's last axis ", hidden);
  double epsilon = ctx.op().floatAttr("epsilon", 1e-5);
  Tensor y = Tensor::zeros(DType::F32, sum.shape());
  const float* in = sum.data<float>();
  float* out = y.mutableData<float>();
  int64_t rows = hidden == 0 ? 0 : sum.numElements() / hidden;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = in + r * hidden;
    double mean = 0;
    if (subtractMean) {
      for (int64_t i = 0; i < hidden; ++i) mean += row[i];
      mean /= static_cast<double>(hidden);
    }
    double squares = 0;
    for (int64_t i = 0; i < hidden; ++i) squares += (row[i] - mean) * (row[i] - mean);
    double invStd = 1.0 / std::sqrt(squares / static_cast<double>(hidden) + epsilon);
    for (int64_t i = 0; i < hidden; ++i) {
      double value = (row[i] - mean) * invStd * weight.data<float>()[i];
      if (bias) value += bias->data<float>()[i];
      out[r * hidden + i] = static_cast<float>(value);
    }
  }
  ctx.setOutput(0, y);
  if (ctx.op().results.size() > 1) ctx.setOutput(1, sum);
}

// ---- activations ---------------------------------------------------------------------------------

float geluErf(float x) { return static_cast<float>(0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2))); }
float geluTanh(float x) {
  double k = std::sqrt(2.0 / std::numbers::pi);
  return static_cast<float>(0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x))));
}
float silu(float x) { return static_cast<float>(x / (1.0 + std::exp(-static_cast<double>(x)))); }

using Activation = float (*)(float);

// The activation an attribute value names; nullptr when it names none.
Activation activationNamed(const std::string& name) {
  if (name == "silu") return silu;
  if (name == "gelu") return geluErf;
  if (name == "gelu_tanh") return geluTanh;
  return nullptr;
}

Activation geluVariant(const Op& op) {
  std::string approximate = op.stringAttr("approximate", "none");
  if (approximate == "none") return geluErf;
  if (approximate == "tanh") return geluTanh;
  return nullptr;
}

void inferUnaryFloat(InferContext& ctx) {
  requireFloat(ctx, 0, "x");
  ctx.setResult(0, ctx.operandType(0));
}

Tensor mapUnary(const Tensor& x, Activation fn) {
  Tensor y = Tensor::zeros(DType::F32, x.shape());
  for (int64_t i = 0; i < x.numElements(); ++i) y.mutableData<float>()[i] = fn(x.data<float>()[i]);
  return y;
}

void inferGatedAct(InferContext& ctx) {
  if (!activationNamed(ctx.op().stringAttr("activation", "")))
    ctx.error("activation must be \"silu\", \"gelu\" or \"gelu_tanh\", got \"", ctx.op().stringAttr("activation", ""), "\"");
  requireFloat(ctx, 0, "gate");
  requireFloat(ctx, 1, "up");
  requireSameDType(ctx, 0, 2);
  auto shape = broadcastShapes(ctx.operandType(0).shape, ctx.operandType(1).shape, ctx);
  ctx.setResult(0, TensorType(ctx.operandType(0).dtype, shape));
}

void evaluateGatedAct(EvalContext& ctx) {
  Activation fn = activationNamed(ctx.op().stringAttr("activation", ""));
  const Tensor& gate = ctx.input(0);
  const Tensor& up = ctx.input(1);
  std::vector<int64_t> shape = broadcastConcrete({gate.shape(), up.shape()}, ctx);
  Tensor y = Tensor::zeros(DType::F32, shape);
  float* out = y.mutableData<float>();
  forEachIndex(shape, {broadcastStrides(gate.shape(), shape), broadcastStrides(up.shape(), shape)},
               [&](int64_t i, const int64_t* offsets) { out[i] = fn(gate.data<float>()[offsets[0]]) * up.data<float>()[offsets[1]]; });
  ctx.setOutput(0, y);
}

// ---- rope ----------------------------------------------------------------------------------------

// rope(x [batch, heads, seq, head_dim], positions [batch or 1, seq], cos_table, sin_table
// [max_positions, rotary_dim / 2]): the one layout fused rotary embeddings use.
void inferRope(InferContext& ctx) {
  requireFloat(ctx, 0, "x");
  requireRank(ctx, 0, {4}, "x");
  requireIndexInteger(ctx, 1, "positions");
  requireRank(ctx, 1, {2}, "positions");
  requireFloat(ctx, 2, "cos_table");
  requireFloat(ctx, 3, "sin_table");
  requireRank(ctx, 2, {2}, "cos_table");
  requireRank(ctx, 3, {2}, "sin_table");
  const TensorType& x = ctx.operandType(0);
  const TensorType& positions = ctx.operandType(1);
  if (positions.dim(0).constant() != 1) requireSameDim(ctx, positions.dim(0), x.dim(0), "positions batch must be 1 or x's batch");
  requireSameDim(ctx, positions.dim(1), x.dim(2), "positions must have x's sequence length");
  std::optional<int64_t> headDim = x.dim(3).constant();
  int64_t rotaryDim = ctx.op().intAttr("rotary_dim", 0);
  if (rotaryDim < 0 || rotaryDim % 2 != 0) ctx.error("rotary_dim ", rotaryDim, " must be even and non-negative");
  if (rotaryDim > 0 && headDim && rotaryDim > *headDim) ctx.error("rotary_dim ", rotaryDim, " exceeds the head size ", *headDim);
  std::optional<int64_t> effective = rotaryDim > 0 ? std::optional<int64_t>(rotaryDim) : headDim;
  if (effective && *effective % 2 != 0) ctx.error("the rotary dimension ", *effective, " must be even");
  for (size_t t : {2u, 3u}) {
    if (effective) requireSameDim(ctx, ctx.operandType(t).dim(1), Dim(*effective / 2), "table width must be rotary_dim / 2");
    requireSameDim(ctx, ctx.operandType(t).dim(0), ctx.operandType(2).dim(0), "cos_table and sin_table must have the same rows");
  }
  ctx.setResult(0, x);
}

void evaluateRope(EvalContext& ctx) {
  Tensor y = ctx.input(0);
  const Tensor& positions = ctx.input(1);
  const Tensor& cos = ctx.input(2);
  const Tensor& sin = ctx.input(3);
  const auto& shape = y.shape();
  int64_t batch = shape[0], heads = shape[1], seq = shape[2], headDim = shape[3];
  int64_t rotaryDim = ctx.op().intAttr("rotary_dim", 0);
  if (rotaryDim <= 0) rotaryDim = headDim;
  if (rotaryDim > headDim || rotaryDim % 2 != 0) ctx.error("rotary_dim ", rotaryDim, " does not fit the head size ", headDim);
  if (cos.shape() != sin.shape() || cos.shape()[1] != rotaryDim / 2)
    ctx.error("tables ", cos.shapeStr(), " / ", sin.shapeStr(), " must be [max_positions, ", rotaryDim / 2, "]");
  bool positionsBroadcast = positions.shape()[0] == 1;
  if ((!positionsBroadcast && positions.shape()[0] != batch) || positions.shape()[1] != seq)
    ctx.error("positions ", positions.shapeStr(), " must be [", batch, " or 1, ", seq, "]");
  bool interleaved = ctx.op().intAttr("interleaved", 0) != 0;
  int64_t maxPositions = cos.shape()[0];
  int64_t half = rotaryDim / 2;
  float* data = y.mutableData<float>();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s) {
      int64_t p = positions.data<int64_t>()[(positionsBroadcast ? 0 : b) * seq + s];
      if (p < 0 || p >= maxPositions) ctx.error("position ", p, " is outside the tables' ", maxPositions, " rows");
      for (int64_t n = 0; n < heads; ++n)
        rotateHead(data + ((b * heads + n) * seq + s) * headDim, cos.data<float>() + p * half, sin.data<float>() + p * half, rotaryDim,
                   interleaved);
    }
  ctx.setOutput(0, y);
}

}  // namespace

void registerFusedOps(OpRegistry& registry) {
  registry.add({
      .name = "rms_norm",
      .minOperands = 2,
      .maxOperands = 3,
      .minResults = 1,
      .maxResults = 2,
      .attrs = {{"epsilon", AttrKind::Float}},
      .infer = [](InferContext& ctx) { inferNorm(ctx, std::nullopt, 2); },
      .evaluate = [](EvalContext& ctx) { evaluateNorm(ctx, false, std::nullopt, 2); },
      .summary = "s = x (+ residual); s / sqrt(mean(s^2) + epsilon) * weight over the last axis; result 1 is s",
  });
  registry.add({
      .name = "layer_norm",
      .minOperands = 2,
      .maxOperands = 4,
      .minResults = 1,
      .maxResults = 2,
      .attrs = {{"epsilon", AttrKind::Float}},
      .infer = [](InferContext& ctx) { inferNorm(ctx, 2, 3); },
      .evaluate = [](EvalContext& ctx) { evaluateNorm(ctx, true, 2, 3); },
      .summary = "s = x (+ residual); (s - mean) / sqrt(var + epsilon) * weight (+ bias) over the last axis; result 1 is s",
  });
  registry.add({
      .name = "gelu",
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = {{"approximate", AttrKind::String}},
      .infer =
          [](InferContext& ctx) {
            if (!geluVariant(ctx.op())) ctx.error("approximate must be \"none\" or \"tanh\"");
            inferUnaryFloat(ctx);
          },
      .evaluate = [](EvalContext& ctx) { ctx.setOutput(0, mapUnary(ctx.input(0), geluVariant(ctx.op()))); },
      .summary = "0.5 x (1 + erf(x / sqrt 2)), or with approximate = \"tanh\" 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
  });
  registry.add({
      .name = "silu",
      .minOperands = 1,
      .maxOperands = 1,
      .infer = inferUnaryFloat,
      .evaluate = [](EvalContext& ctx) { ctx.setOutput(0, mapUnary(ctx.input(0), silu)); },
      .summary = "x * sigmoid(x)",
  });
  registry.add({
      .name = "gated_act",
      .minOperands = 2,
      .maxOperands = 2,
      .attrs = {{"activation", AttrKind::String, true}},
      .infer = inferGatedAct,
      .evaluate = evaluateGatedAct,
      .summary = "act(gate) * up with act = silu, gelu or gelu_tanh (SwiGLU, GeGLU)",
  });
  registry.add({
      .name = "rope",
      .minOperands = 4,
      .maxOperands = 4,
      .attrs = {{"interleaved", AttrKind::Int}, {"rotary_dim", AttrKind::Int}},
      .infer = inferRope,
      .evaluate = evaluateRope,
      .summary = "RoPE on x [batch, heads, seq, head_dim] at positions [batch, seq]; tables [max_positions, rotary_dim/2]",
  });
}

}  // namespace pagedc
