// Rotary position embeddings: ONNX RotaryEmbedding (opset 23) and com.microsoft.RotaryEmbedding,
// which differ in operand order, cache shapes and how positions are given.
#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {

// Where the heads of X live: 4-D [batch, heads, seq, head] or 3-D [batch, seq, heads * head].
struct HeadLayout {
  int64_t batch, heads, seq, headSize;
  bool bnsh;
  float* head(float* data, int64_t b, int64_t n, int64_t s) const {
    return data + (bnsh ? ((b * heads + n) * seq + s) : ((b * seq + s) * heads + n)) * headSize;
  }
};

// Rotates every head of x; cosRow/sinRow give the rot/2 cache values for token (b, s).
template <class RowOf>
Tensor rotateAll(const Tensor& x, const HeadLayout& layout, int64_t rotaryDim, bool interleaved, const Tensor& cos, const Tensor& sin,
                 RowOf rowOf) {
  Tensor y = x;
  float* data = y.mutableData<float>();
  int64_t half = rotaryDim / 2;
  for (int64_t b = 0; b < layout.batch; ++b)
    for (int64_t s = 0; s < layout.seq; ++s) {
      int64_t row = rowOf(b, s);
      const float* c = cos.data<float>() + row * half;
      const float* sn = sin.data<float>() + row * half;
      for (int64_t n = 0; n < layout.heads; ++n) rotateHead(layout.head(data, b, n, s), c, sn, rotaryDim, interleaved);
    }
  return y;
}

void requireCacheWidth(const InferContext& ctx, size_t operand, std::string_view name, std::optional<int64_t> rotaryDim) {
  const TensorType& cache = ctx.operandType(operand);
  if (!rotaryDim || !cache.hasRank()) return;
  requireSameDim(ctx, cache.dim(cache.rank() - 1), Dim(*rotaryDim / 2), std::string(name) + " last dimension must be rotary_embedding_dim / 2");
}

// ---- ONNX RotaryEmbedding: X, cos_cache, sin_cache, position_ids --------------------------------

void inferOnnxRotary(InferContext& ctx) {
  requireFloat(ctx, 0, "X");
  size_t rank = requireRank(ctx, 0, {3, 4}, "X");
  const TensorType& x = ctx.operandType(0);
  std::optional<int64_t> headSize;
  if (rank == 4) {
    headSize = x.dim(3).constant();
  } else {
    if (!ctx.op().hasAttr("num_heads")) ctx.error("3-D X needs the num_heads attribute");
    Dim head = divideDim(ctx, x.dim(2), Dim(positiveIntAttr(ctx, "num_heads", 0)), "hidden size over num_heads");
    headSize = head.constant();
  }
  int64_t rotaryAttr = ctx.op().intAttr("rotary_embedding_dim", 0);
  std::optional<int64_t> rotaryDim = rotaryAttr > 0 ? std::optional<int64_t>(rotaryAttr) : headSize;
  if (rotaryDim && *rotaryDim % 2 != 0) ctx.error("the rotary dimension ", *rotaryDim, " must be even");
  if (rotaryDim && headSize && *rotaryDim > *headSize) ctx.error("rotary_embedding_dim ", *rotaryDim, " exceeds the head size ", *headSize);
  size_t cacheRank = ctx.hasOperand(3) ? 2 : 3;
  requireFloat(ctx, 1, "cos_cache");
  requireFloat(ctx, 2, "sin_cache");
  requireRank(ctx, 1, {cacheRank}, "cos_cache");
  requireRank(ctx, 2, {cacheRank}, "sin_cache");
  requireCacheWidth(ctx, 1, "cos_cache", rotaryDim);
  requireCacheWidth(ctx, 2, "sin_cache", rotaryDim);
  if (ctx.hasOperand(3)) {
    requireInteger(ctx, 3, "position_ids");
    requireRank(ctx, 3, {2}, "position_ids");
  }
  ctx.setResult(0, x);
}

void evaluateOnnxRotary(EvalContext& ctx) {
  const Tensor& x = ctx.input(0);
  HeadLayout layout{};
  if (x.rank() == 4) {
    layout = {x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3], true};
  } else {
    int64_t heads = ctx.op().intAttr("num_heads", 0);
    layout = {x.shape()[0], heads, x.shape()[1], x.shape()[2] / heads, false};
  }
  int64_t rotaryDim = ctx.op().intAttr("rotary_embedding_dim", 0);
  if (rotaryDim <= 0) rotaryDim = layout.headSize;
  const Tensor& cos = ctx.input(1);
  const Tensor& sin = ctx.input(2);
  if (cos.shape().back() != rotaryDim / 2) ctx.error("cos_cache last dimension ", cos.shape().back(), " is not rotary dim / 2 = ", rotaryDim / 2);
  bool interleaved = ctx.op().intAttr("interleaved", 0) != 0;
  if (ctx.hasInput(3)) {
    const Tensor& positions = ctx.input(3);
    int64_t maxPosition = cos.shape()[0];
    ctx.setOutput(0, rotateAll(x, layout, rotaryDim, interleaved, cos, sin, [&](int64_t b, int64_t s) {
      int64_t p = positions.data<int64_t>()[b * layout.seq + s];
      if (p < 0 || p >= maxPosition) ctx.error("position id ", p, " is outside the cos/sin cache of ", maxPosition, " rows");
      return p;
    }));
  } else {
    if (cos.shape()[0] != layout.batch || cos.shape()[1] != layout.seq)
      ctx.error("cos_cache ", cos.shapeStr(), " must be [batch, seq, rot/2] when position_ids is absent");
    ctx.setOutput(0, rotateAll(x, layout, rotaryDim, interleaved, cos, sin, [&](int64_t b, int64_t s) { return b * layout.seq + s; }));
  }
}

// ---- com.microsoft.RotaryEmbedding: input, position_ids, cos_cache, sin_cache -------------------

void inferContribRotary(InferContext& ctx) {
  requireFloat(ctx, 0, "input");
  size_t rank = requireRank(ctx, 0, {3, 4}, "input");
  requireInteger(ctx, 1, "position_ids");
  requireRank(ctx, 1, {1, 2}, "position_ids");
  requireRank(ctx, 2, {2}, "cos_cache");
  requireRank(ctx, 3, {2}, "sin_cache");
  if (ctx.op().intAttr("is_packed_batching", 0) != 0) ctx.error("is_packed_batching is not supported");
  if (ctx.op().floatAttr("scale", 1.0) != 1.0) ctx.error("a scale other than 1 is not supported");
  int64_t rotaryAttr = ctx.op().intAttr("rotary_embedding_dim", 0);
  if (rank == 3 && rotaryAttr > 0 && ctx.op().intAttr("num_heads", 0) <= 0)
    ctx.error("rotary_embedding_dim on a 3-D input needs num_heads");
  if (rotaryAttr > 0) requireCacheWidth(ctx, 2, "cos_cache", rotaryAttr);
  ctx.setResult(0, ctx.operandType(0));
}

void evaluateContribRotary(EvalContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& positions = ctx.input(1);
  const Tensor& cos = ctx.input(2);
  const Tensor& sin = ctx.input(3);
  int64_t cacheHalf = cos.shape()[1];
  HeadLayout layout{};
  if (x.rank() == 4) {
    layout = {x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3], true};
  } else {
    // Without num_heads the cache width gives the head size (full rotation).
    int64_t heads = ctx.op().intAttr("num_heads", 0);
    int64_t headSize = heads > 0 ? x.shape()[2] / heads : 2 * cacheHalf;
    if (headSize == 0 || x.shape()[2] % headSize != 0) ctx.error("hidden size ", x.shape()[2], " is not a multiple of the head size ", headSize);
    layout = {x.shape()[0], x.shape()[2] / headSize, x.shape()[1], headSize, false};
  }
  int64_t rotaryDim = ctx.op().intAttr("rotary_embedding_dim", 0);
  if (rotaryDim <= 0) rotaryDim = layout.headSize;
  if (cacheHalf != rotaryDim / 2) ctx.error("cos_cache width ", cacheHalf, " is not rotary dim / 2 = ", rotaryDim / 2);
  bool interleaved = ctx.op().intAttr("interleaved", 0) != 0;
  int64_t maxPosition = cos.shape()[0];
  // position_ids of shape [1] is the position of the first token; [batch, seq] gives each one.
  bool offsetForm = positions.rank() == 1;
  if (offsetForm && positions.numElements() != 1) ctx.error("1-D position_ids must have one element, got ", positions.shapeStr());
  if (!offsetForm && (positions.shape()[0] != layout.batch || positions.shape()[1] != layout.seq))
    ctx.error("position_ids ", positions.shapeStr(), " must be [batch, seq] = [", layout.batch, ", ", layout.seq, "]");
  ctx.setOutput(0, rotateAll(x, layout, rotaryDim, interleaved, cos, sin, [&](int64_t b, int64_t s) {
    int64_t p = offsetForm ? positions.data<int64_t>()[0] + s : positions.data<int64_t>()[b * layout.seq + s];
    if (p < 0 || p >= maxPosition) ctx.error("position id ", p, " is outside the cos/sin cache of ", maxPosition, " rows");
    return p;
  }));
}
}  // namespace

void registerRotaryEmbeddingOps(OpRegistry& registry) {
  registry.add({
      .name = "RotaryEmbedding",
      .minOperands = 3,
      .maxOperands = 4,
      .attrs = {{"interleaved", AttrKind::Int}, {"num_heads", AttrKind::Int}, {"rotary_embedding_dim", AttrKind::Int}},
      .infer = inferOnnxRotary,
      .evaluate = evaluateOnnxRotary,
      .summary = "RoPE on X [batch, heads, seq, head] or [batch, seq, hidden]; caches indexed by position_ids or per token",
  });
  registry.add({
      .name = "com.microsoft.RotaryEmbedding",
      .minOperands = 4,
      .maxOperands = 4,
      .attrs = {{"interleaved", AttrKind::Int},
                {"is_packed_batching", AttrKind::Int},
                {"num_heads", AttrKind::Int},
                {"rotary_embedding_dim", AttrKind::Int},
                {"scale", AttrKind::Float}},
      .infer = inferContribRotary,
      .evaluate = evaluateContribRotary,
      .summary = "onnxruntime RoPE: (input, position_ids, cos_cache, sin_cache), caches [max_pos, rot/2]",
  });
}

}  // namespace pagedc
