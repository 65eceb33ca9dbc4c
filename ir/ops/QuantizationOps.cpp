// Weight-quantized matmul: com.microsoft.MatMulNBits (block-wise 2..8-bit weights along K).
#include "ir/OpDef.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {
enum Operand : size_t { kA, kB, kScales, kZeroPoints, kGIdx, kBias };

// Value number `index` of a little-endian bit stream of `bits`-wide fields (the packing of B and of
// packed zero points: for 4 bits, the low nibble of a byte comes first). Bytes arrive as i64.
int64_t unpackField(const int64_t* bytes, int64_t index, int64_t bits) {
  int64_t value = 0;
  for (int64_t bit = 0; bit < bits; ++bit) {
    int64_t position = index * bits + bit;
    value |= ((bytes[position / 8] >> (position % 8)) & 1) << bit;
  }
  return value;
}

struct NBitsShape {
  int64_t k, n, bits, blockSize, blocks, blobSize;
};

NBitsShape nbitsShape(const Op& op) {
  NBitsShape s{};
  s.k = op.intAttr("K", 0);
  s.n = op.intAttr("N", 0);
  s.bits = op.intAttr("bits", 4);
  s.blockSize = op.intAttr("block_size", 0);
  if (s.k <= 0 || s.n <= 0) fail(op.describe(), ": attributes K and N must be positive, got K = ", s.k, ", N = ", s.n);
  if (s.bits < 2 || s.bits > 8) fail(op.describe(), ": bits must be between 2 and 8, got ", s.bits);
  if (s.blockSize < 16 || (s.blockSize & (s.blockSize - 1)) != 0)
    fail(op.describe(), ": block_size must be a power of two of at least 16, got ", s.blockSize);
  s.blocks = (s.k + s.blockSize - 1) / s.blockSize;
  s.blobSize = s.blockSize * s.bits / 8;
  return s;
}

void inferMatMulNBits(InferContext& ctx) {
  NBitsShape s = nbitsShape(ctx.op());
  if (ctx.op().intAttr("weight_prepacked", 0) != 0) ctx.error("prepacked (EP-specific) weights are not supported");
  requireFloat(ctx, kA, "A");
  const TensorType& a = ctx.operandType(kA);
  if (!a.hasRank() || a.rank() == 0) ctx.error("A must have rank at least 1, got ", a.str());
  requireSameDim(ctx, a.dim(a.rank() - 1), Dim(s.k), "the last dimension of A must be K");
  requireInteger(ctx, kB, "B");
  const TensorType& b = ctx.operandType(kB);
  if (b.hasRank()) {
    auto elements = b.numElements();
    if (elements && elements->isConstant() && *elements != Dim(s.n * s.blocks * s.blobSize))
      ctx.error("B ", b.str(), " must hold N * ceil(K / block_size) * block_size * bits / 8 = ", s.n * s.blocks * s.blobSize, " bytes");
  }
  requireFloat(ctx, kScales, "scales");
  if (auto elements = ctx.operandType(kScales).numElements(); elements && elements->isConstant() && *elements != Dim(s.n * s.blocks))
    ctx.error("scales ", ctx.operandType(kScales).str(), " must hold N * k_blocks = ", s.n * s.blocks, " values");
  if (ctx.hasOperand(kZeroPoints)) {
    const TensorType& zp = ctx.operandType(kZeroPoints);
    int64_t expected = isFloatingPoint(zp.dtype) ? s.n * s.blocks : s.n * ((s.blocks * s.bits + 7) / 8);
    if (auto elements = zp.numElements(); elements && elements->isConstant() && *elements != Dim(expected))
      ctx.error("zero_points ", zp.str(), " must hold ", expected, " values");
  }
  if (ctx.hasOperand(kBias)) {
    requireFloat(ctx, kBias, "bias");
    requireRank(ctx, kBias, {1}, "bias");
    requireSameDim(ctx, ctx.operandType(kBias).dim(0), Dim(s.n), "bias must have N elements");
  }
  Shape out = *a.shape;
  out.back() = Dim(s.n);
  ctx.setResult(0, TensorType(a.dtype, out));
}

// The [N, K] float weight: (q - zero_point) * scale per block; g_idx, when given, names each k's block.
std::vector<float> dequantizeWeights(const EvalContext& ctx, const NBitsShape& s) {
  const int64_t* packed = ctx.input(kB).data<int64_t>();
  const float* scales = ctx.input(kScales).data<float>();
  const Tensor* zeroPoints = ctx.hasInput(kZeroPoints) ? &ctx.input(kZeroPoints) : nullptr;
  const bool packedZeroPoints = zeroPoints && zeroPoints->dtype() == DType::I64;
  const int64_t zeroPointRowBytes = (s.blocks * s.bits + 7) / 8;
  const float defaultZeroPoint = static_cast<float>(int64_t{1} << (s.bits - 1));
  const Tensor* groupIndex = ctx.hasInput(kGIdx) ? &ctx.input(kGIdx) : nullptr;
  if (groupIndex && groupIndex->numElements() != s.k) ctx.error("g_idx must have K = ", s.k, " entries, got ", groupIndex->numElements());
  std::vector<float> weights(static_cast<size_t>(s.n * s.k));
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t k = 0; k < s.k; ++k) {
      int64_t block = groupIndex ? groupIndex->data<int64_t>()[k] : k / s.blockSize;
      if (block < 0 || block >= s.blocks) ctx.error("g_idx names block ", block, " of ", s.blocks);
      const int64_t* blob = packed + (n * s.blocks + k / s.blockSize) * s.blobSize;
      float q = static_cast<float>(unpackField(blob, k % s.blockSize, s.bits));
      float zeroPoint = defaultZeroPoint;
      if (packedZeroPoints) zeroPoint = static_cast<float>(unpackField(zeroPoints->data<int64_t>() + n * zeroPointRowBytes, block, s.bits));
      else if (zeroPoints) zeroPoint = zeroPoints->data<float>()[n * s.blocks + block];
      weights[n * s.k + k] = (q - zeroPoint) * scales[n * s.blocks + block];
    }
  return weights;
}

void evaluateMatMulNBits(EvalContext& ctx) {
  NBitsShape s = nbitsShape(ctx.op());
  const Tensor& a = ctx.input(kA);
  if (a.shape().back() != s.k) ctx.error("A ", a.shapeStr(), " must end in K = ", s.k);
  if (ctx.input(kB).numElements() != s.n * s.blocks * s.blobSize) ctx.error("B has ", ctx.input(kB).numElements(), " bytes, expected ", s.n * s.blocks * s.blobSize);
  std::vector<float> weights = dequantizeWeights(ctx, s);
  std::vector<int64_t> outShape = a.shape();
  outShape.back() = s.n;
  Tensor y = Tensor::zeros(DType::F32, outShape);
  float* out = y.mutableData<float>();
  const float* bias = ctx.hasInput(kBias) ? ctx.input(kBias).data<float>() : nullptr;
  const int64_t rows = a.numElements() / s.k;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = a.data<float>() + r * s.k;
    for (int64_t n = 0; n < s.n; ++n) {
      double sum = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < s.k; ++k) sum += static_cast<double>(row[k]) * weights[n * s.k + k];
      out[r * s.n + n] = static_cast<float>(sum);
    }
  }
  ctx.setOutput(0, y);
}
}  // namespace

void registerQuantizationOps(OpRegistry& registry) {
  registry.add({
      .name = "com.microsoft.MatMulNBits",
      .minOperands = 3,
      .maxOperands = 6,
      .attrs = {{"K", AttrKind::Int, true},
                {"N", AttrKind::Int, true},
                {"accuracy_level", AttrKind::Int},
                {"bits", AttrKind::Int},
                {"block_size", AttrKind::Int, true},
                {"weight_prepacked", AttrKind::Int}},
      .infer = inferMatMulNBits,
      .evaluate = evaluateMatMulNBits,
      .summary = "A @ dequant(B)^T (+ bias) with B packed [N, k_blocks, blob] at 2..8 bits, per-block scales and zero points",
  });
}

}  // namespace pagedc
