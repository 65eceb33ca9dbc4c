// Normalization ops: LayerNormalization, RMSNormalization, ORT's SimplifiedLayerNormalization and
// the com.microsoft Skip(Simplified)LayerNormalization fusions.
#include <cmath>
#include <optional>

#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {

// The DType of an ONNX TensorProto data-type code (stash_type), if it is a floating-point one.
std::optional<DType> dtypeFromOnnxCode(int64_t code) {
  switch (code) {
    case 1: return DType::F32;
    case 10: return DType::F16;
    case 11: return DType::F64;
    case 16: return DType::BF16;
    default: return std::nullopt;
  }
}

// The type of the saved statistics (Mean, InvStdDev): stash_type names it.
DType stashDType(const InferContext& ctx) {
  int64_t code = ctx.op().intAttr("stash_type", 1);
  auto dtype = dtypeFromOnnxCode(code);
  if (!dtype) ctx.error("stash_type ", code, " is not a floating-point ONNX data type");
  return *dtype;
}

// X's shape with the normalized axes [axis, rank) replaced by 1: the shape of the statistics.
Shape statisticsShape(const Shape& x, size_t axis) {
  Shape shape(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(axis));
  shape.resize(x.size(), Dim(1));
  return shape;
}

// Shared shape rule of the ops that normalize X over [axis, rank) with a scale (and maybe a bias)
// that broadcasts to X; `statResults` lists the results that hold per-row statistics.
void inferAxisNormalization(InferContext& ctx, std::vector<size_t> affineOperands, std::vector<size_t> statResults) {
  requireFloat(ctx, 0, "X");
  const TensorType& x = ctx.operandType(0);
  if (!x.hasRank()) ctx.error("X has unknown rank");
  int64_t axis = normalizeAxis(ctx.op().intAttr("axis", -1), static_cast<int64_t>(x.rank()), ctx.op());
  for (size_t i : affineOperands) {
    if (!ctx.hasOperand(i)) continue;
    requireFloat(ctx, i, i == 1 ? "scale" : "bias");
    requireUnidirectionalBroadcast(ctx, i, *x.shape, i == 1 ? "scale" : "bias");
  }
  ctx.setResult(0, x);
  DType statType = stashDType(ctx);
  for (size_t r : statResults)
    if (r < ctx.numResults()) ctx.setResult(r, TensorType(statType, statisticsShape(*x.shape, static_cast<size_t>(axis))));
}

struct RowStatistics {
  std::vector<float> mean;    // zero when the mean is not subtracted
  std::vector<float> invStd;  // 1 / sqrt(variance + epsilon), or 1 / sqrt(mean square + epsilon)
};

// Statistics of x viewed as [rows, rowSize]; RMS variants use the mean square, not the variance.
RowStatistics rowStatistics(const float* x, int64_t rows, int64_t rowSize, bool subtractMean, double epsilon) {
  RowStatistics stats{std::vector<float>(rows, 0.0f), std::vector<float>(rows, 0.0f)};
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * rowSize;
    double mean = 0;
    if (subtractMean) {
      for (int64_t i = 0; i < rowSize; ++i) mean += row[i];
      mean /= static_cast<double>(rowSize);
    }
    double squares = 0;
    for (int64_t i = 0; i < rowSize; ++i) squares += (row[i] - mean) * (row[i] - mean);
    squares /= static_cast<double>(rowSize);
    stats.mean[r] = static_cast<float>(mean);
    stats.invStd[r] = static_cast<float>(1.0 / std::sqrt(squares + epsilon));
  }
  return stats;
}

// Y = (X - mean) * invStd * scale (+ bias), with scale and bias broadcast to X's full shape.
Tensor normalizeAndScale(const Tensor& x, int64_t rowSize, const RowStatistics& stats, const Tensor& scale, const Tensor* bias) {
  Tensor y = Tensor::zeros(DType::F32, x.shape());
  const float* in = x.data<float>();
  float* out = y.mutableData<float>();
  BroadcastIndexer scaleIndex(scale.shape(), x.shape());
  std::optional<BroadcastIndexer> biasIndex;
  if (bias) biasIndex.emplace(bias->shape(), x.shape());
  for (int64_t i = 0; i < x.numElements(); ++i) {
    int64_t row = i / rowSize;
    float value = (in[i] - stats.mean[row]) * stats.invStd[row] * scale.data<float>()[scaleIndex(i)];
    if (bias) value += bias->data<float>()[(*biasIndex)(i)];
    out[i] = value;
  }
  return y;
}

Tensor statisticsTensor(const std::vector<float>& values, const std::vector<int64_t>& xShape, size_t axis) {
  std::vector<int64_t> shape(xShape.begin(), xShape.begin() + static_cast<std::ptrdiff_t>(axis));
  shape.resize(xShape.size(), 1);
  return Tensor::fromValues(DType::F32, shape, values);
}

// Evaluates an axis-based normalization; statistics go to the results listed (mean may be absent).
void evaluateAxisNormalization(EvalContext& ctx, bool subtractMean, const Tensor* bias, std::optional<size_t> meanResult,
                               std::optional<size_t> invStdResult) {
  const Tensor& x = ctx.input(0);
  size_t axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", -1), static_cast<int64_t>(x.rank()), ctx.op()));
  int64_t rowSize = 1;
  for (size_t i = axis; i < x.rank(); ++i) rowSize *= x.shape()[i];
  int64_t rows = rowSize == 0 ? 0 : x.numElements() / rowSize;
  RowStatistics stats = rowStatistics(x.data<float>(), rows, rowSize, subtractMean, ctx.op().floatAttr("epsilon", 1e-5));
  ctx.setOutput(0, normalizeAndScale(x, rowSize, stats, ctx.input(1), bias));
  size_t numResults = ctx.op().results.size();
  if (meanResult && *meanResult < numResults) ctx.setOutput(*meanResult, statisticsTensor(stats.mean, x.shape(), axis));
  if (invStdResult && *invStdResult < numResults) ctx.setOutput(*invStdResult, statisticsTensor(stats.invStd, x.shape(), axis));
}

// Shape rule of the com.microsoft Skip* fusions: input [..., hidden] plus a skip that broadcasts to
// it, gamma/beta/bias of shape [hidden].
void inferSkipNormalization(InferContext& ctx, const std::vector<std::pair<size_t, const char*>>& vectors) {
  requireFloat(ctx, 0, "input");
  size_t rank = requireRank(ctx, 0, {2, 3}, "input");
  const TensorType& input = ctx.operandType(0);
  requireFloat(ctx, 1, "skip");
  size_t skipRank = requireRank(ctx, 1, {2, 3}, "skip");
  if (skipRank > rank) ctx.error("skip ", ctx.operandType(1).str(), " has higher rank than input ", input.str());
  requireUnidirectionalBroadcast(ctx, 1, *input.shape, "skip");
  const Dim& hidden = input.dim(rank - 1);
  for (auto [index, name] : vectors) {
    if (!ctx.hasOperand(index)) continue;
    requireFloat(ctx, index, name);
    requireRank(ctx, index, {1}, name);
    requireSameDim(ctx, ctx.operandType(index).dim(0), hidden, std::string(name) + " must have the hidden size");
  }
  ctx.setResult(0, input);
  Shape statShape = *input.shape;
  statShape.back() = Dim(1);
  for (size_t r = 1; r < 3 && r < ctx.numResults(); ++r) ctx.setResult(r, TensorType(DType::F32, statShape));
  if (ctx.numResults() > 3) ctx.setResult(3, input);
}

// input + skip (+ bias), the residual sum the Skip* ops normalize and may return.
Tensor skipSum(const EvalContext& ctx, size_t biasOperand) {
  const Tensor& input = ctx.input(0);
  const Tensor& skip = ctx.input(1);
  Tensor sum = Tensor::zeros(DType::F32, input.shape());
  float* out = sum.mutableData<float>();
  BroadcastIndexer skipIndex(skip.shape(), input.shape());
  int64_t hidden = input.shape().back();
  const Tensor* bias = ctx.hasInput(biasOperand) ? &ctx.input(biasOperand) : nullptr;
  for (int64_t i = 0; i < input.numElements(); ++i) {
    out[i] = input.data<float>()[i] + skip.data<float>()[skipIndex(i)];
    if (bias) out[i] += bias->data<float>()[i % hidden];
  }
  return sum;
}

void evaluateSkipNormalization(EvalContext& ctx, bool subtractMean, size_t betaOperand, size_t biasOperand) {
  Tensor sum = skipSum(ctx, biasOperand);
  int64_t hidden = sum.shape().back();
  int64_t rows = hidden == 0 ? 0 : sum.numElements() / hidden;
  RowStatistics stats = rowStatistics(sum.data<float>(), rows, hidden, subtractMean, ctx.op().floatAttr("epsilon", 1e-5));
  const Tensor* beta = betaOperand && ctx.hasInput(betaOperand) ? &ctx.input(betaOperand) : nullptr;
  ctx.setOutput(0, normalizeAndScale(sum, hidden, stats, ctx.input(2), beta));
  size_t numResults = ctx.op().results.size();
  std::vector<int64_t> statShape = sum.shape();
  statShape.back() = 1;
  if (numResults > 1) {
    // The RMS variant has no mean; its `mean` result reports the plain mean of the sum.
    std::vector<float> mean = stats.mean;
    if (!subtractMean) mean = rowStatistics(sum.data<float>(), rows, hidden, true, 0.0).mean;
    ctx.setOutput(1, Tensor::fromValues(DType::F32, statShape, mean));
  }
  if (numResults > 2) ctx.setOutput(2, Tensor::fromValues(DType::F32, statShape, stats.invStd));
  if (numResults > 3) ctx.setOutput(3, sum);
}
}  // namespace

void registerNormalizationOps(OpRegistry& registry) {
  registry.add({
      .name = "LayerNormalization",
      .minOperands = 2,
      .maxOperands = 3,
      .minResults = 1,
      .maxResults = 3,
      .attrs = {{"axis", AttrKind::Int}, {"epsilon", AttrKind::Float}, {"stash_type", AttrKind::Int}},
      .infer = [](InferContext& ctx) { inferAxisNormalization(ctx, {1, 2}, {1, 2}); },
      .evaluate =
          [](EvalContext& ctx) {
            evaluateAxisNormalization(ctx, true, ctx.hasInput(2) ? &ctx.input(2) : nullptr, 1, 2);
          },
      .summary = "(X - mean) / sqrt(var + epsilon) * Scale + B over the axes [axis, rank)",
  });
  registry.add({
      .name = "RMSNormalization",
      .minOperands = 2,
      .maxOperands = 2,
      .attrs = {{"axis", AttrKind::Int}, {"epsilon", AttrKind::Float}, {"stash_type", AttrKind::Int}},
      .infer = [](InferContext& ctx) { inferAxisNormalization(ctx, {1}, {}); },
      .evaluate = [](EvalContext& ctx) { evaluateAxisNormalization(ctx, false, nullptr, std::nullopt, std::nullopt); },
      .summary = "X / sqrt(mean(X^2) + epsilon) * scale over the axes [axis, rank)",
  });
  registry.add({
      .name = "SimplifiedLayerNormalization",
      .minOperands = 2,
      .maxOperands = 2,
      .minResults = 1,
      .maxResults = 2,
      .attrs = {{"axis", AttrKind::Int}, {"epsilon", AttrKind::Float}, {"stash_type", AttrKind::Int}},
      .infer = [](InferContext& ctx) { inferAxisNormalization(ctx, {1}, {1}); },
      .evaluate = [](EvalContext& ctx) { evaluateAxisNormalization(ctx, false, nullptr, std::nullopt, 1); },
      .summary = "onnxruntime's RMS norm: X / sqrt(mean(X^2) + epsilon) * scale; result 1 is inv_std_var",
  });
  registry.add({
      .name = "com.microsoft.SkipLayerNormalization",
      .minOperands = 3,
      .maxOperands = 5,
      .minResults = 1,
      .maxResults = 4,
      .attrs = {{"epsilon", AttrKind::Float}},
      .infer = [](InferContext& ctx) { inferSkipNormalization(ctx, {{2, "gamma"}, {3, "beta"}, {4, "bias"}}); },
      .evaluate = [](EvalContext& ctx) { evaluateSkipNormalization(ctx, true, 3, 4); },
      .summary = "s = input + skip + bias; LayerNorm(s) * gamma + beta over the last axis; result 3 is s",
  });
  registry.add({
      .name = "com.microsoft.SkipSimplifiedLayerNormalization",
      .minOperands = 3,
      .maxOperands = 4,
      .minResults = 1,
      .maxResults = 4,
      .attrs = {{"epsilon", AttrKind::Float}},
      .infer = [](InferContext& ctx) { inferSkipNormalization(ctx, {{2, "gamma"}, {3, "bias"}}); },
      .evaluate = [](EvalContext& ctx) { evaluateSkipNormalization(ctx, false, 0, 3); },
      .summary = "s = input + skip + bias; s / sqrt(mean(s^2) + epsilon) * gamma over the last axis; result 3 is s",
  });
}

}  // namespace pagedc
