// Attention ops without onnxruntime's KV-cache conventions: ONNX Attention (opset 23) and
// com.microsoft.MultiHeadAttention; both share the reference loop in ScaledDotProductAttention.
#include <cmath>
#include <limits>

#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"
#include "ir/ops/ScaledDotProductAttention.h"

namespace pagedc {

namespace {
using kernels::HeadTensor;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---- ONNX Attention -------------------------------------------------------------------------
// Operands: Q, K, V, attn_mask, past_key, past_value. Results: Y, present_key, present_value,
// qk_matmul_output.

struct OnnxAttentionDims {
  Dim batch, queryHeads, kvHeads, querySeq, kvSeq, headSize, valueHeadSize, pastSeq;
  bool packedHeads = false;  // 3-D inputs: heads packed in the last axis
};

OnnxAttentionDims inferOnnxAttentionDims(InferContext& ctx) {
  for (size_t i = 0; i < 3; ++i) requireFloat(ctx, i, i == 0 ? "Q" : (i == 1 ? "K" : "V"));
  size_t rank = requireRank(ctx, 0, {3, 4}, "Q");
  requireRank(ctx, 1, {rank}, "K");
  requireRank(ctx, 2, {rank}, "V");
  const TensorType& q = ctx.operandType(0);
  const TensorType& k = ctx.operandType(1);
  const TensorType& v = ctx.operandType(2);
  OnnxAttentionDims dims;
  dims.batch = q.dim(0);
  if (rank == 3) {
    if (!ctx.op().hasAttr("q_num_heads") || !ctx.op().hasAttr("kv_num_heads"))
      ctx.error("3-D Q, K and V need the q_num_heads and kv_num_heads attributes");
    dims.packedHeads = true;
    dims.queryHeads = positiveIntAttr(ctx, "q_num_heads", 0);
    dims.kvHeads = positiveIntAttr(ctx, "kv_num_heads", 0);
    dims.querySeq = q.dim(1);
    dims.kvSeq = k.dim(1);
    dims.headSize = divideDim(ctx, q.dim(2), dims.queryHeads, "Q hidden size over q_num_heads");
    requireSameDim(ctx, divideDim(ctx, k.dim(2), dims.kvHeads, "K hidden size over kv_num_heads"), dims.headSize,
                            "K head size must equal Q head size");
    dims.valueHeadSize = divideDim(ctx, v.dim(2), dims.kvHeads, "V hidden size over kv_num_heads");
    requireSameDim(ctx, v.dim(1), dims.kvSeq, "V sequence length must equal K's");
  } else {
    dims.queryHeads = q.dim(1);
    dims.querySeq = q.dim(2);
    dims.headSize = q.dim(3);
    dims.kvHeads = k.dim(1);
    dims.kvSeq = k.dim(2);
    requireSameDim(ctx, k.dim(3), dims.headSize, "K head size must equal Q head size");
    requireSameDim(ctx, v.dim(1), dims.kvHeads, "V heads must equal K heads");
    requireSameDim(ctx, v.dim(2), dims.kvSeq, "V sequence length must equal K's");
    dims.valueHeadSize = v.dim(3);
  }
  for (size_t i = 1; i < 3; ++i) requireSameDim(ctx, ctx.operandType(i).dim(0), dims.batch, "batch sizes of Q, K and V");
  if (auto qh = dims.queryHeads.constant(), kh = dims.kvHeads.constant(); qh && kh && (*kh == 0 || *qh % *kh != 0))
    ctx.error(*qh, " query heads cannot be grouped over ", *kh, " key/value heads");

  dims.pastSeq = Dim(0);
  if (ctx.hasOperand(4) != ctx.hasOperand(5)) ctx.error("past_key and past_value must be given together");
  if (ctx.hasOperand(4)) {
    requireRank(ctx, 4, {4}, "past_key");
    requireRank(ctx, 5, {4}, "past_value");
    const TensorType& pastKey = ctx.operandType(4);
    const TensorType& pastValue = ctx.operandType(5);
    requireSameDim(ctx, pastKey.dim(1), dims.kvHeads, "past_key heads must equal kv_num_heads");
    requireSameDim(ctx, pastKey.dim(3), dims.headSize, "past_key head size must equal K's");
    requireSameDim(ctx, pastValue.dim(3), dims.valueHeadSize, "past_value head size must equal V's");
    requireSameDim(ctx, pastValue.dim(2), pastKey.dim(2), "past_value length must equal past_key's");
    dims.pastSeq = pastKey.dim(2);
  }
  if (ctx.hasOperand(3)) {
    const TensorType& mask = ctx.operandType(3);
    if (mask.hasRank() && mask.rank() > 4) ctx.error("attn_mask must have rank at most 4, got ", mask.str());
  }
  return dims;
}

void inferOnnxAttention(InferContext& ctx) {
  OnnxAttentionDims d = inferOnnxAttentionDims(ctx);
  DType dtype = ctx.operandType(0).dtype;
  Shape y = d.packedHeads ? Shape{d.batch, d.querySeq, d.queryHeads * d.valueHeadSize} : Shape{d.batch, d.queryHeads, d.querySeq, d.valueHeadSize};
  ctx.setResult(0, TensorType(dtype, y));
  Dim total = d.pastSeq + d.kvSeq;
  if (ctx.numResults() > 1) ctx.setResult(1, TensorType(ctx.operandType(1).dtype, Shape{d.batch, d.kvHeads, total, d.headSize}));
  if (ctx.numResults() > 2) ctx.setResult(2, TensorType(ctx.operandType(2).dtype, Shape{d.batch, d.kvHeads, total, d.valueHeadSize}));
  if (ctx.numResults() > 3) {
    int64_t mode = ctx.op().intAttr("qk_matmul_output_mode", 0);
    if (mode < 0 || mode > 3) ctx.error("qk_matmul_output_mode must be 0, 1, 2 or 3, got ", mode);
    ctx.setResult(3, TensorType(dtype, Shape{d.batch, d.queryHeads, d.querySeq, total}));
  }
}

void evaluateOnnxAttention(EvalContext& ctx) {
  const Tensor& qIn = ctx.input(0);
  const Tensor& kIn = ctx.input(1);
  const Tensor& vIn = ctx.input(2);
  bool packedHeads = qIn.rank() == 3;
  HeadTensor q, k, v;
  if (packedHeads) {
    int64_t queryHeads = ctx.op().intAttr("q_num_heads", 0), kvHeads = ctx.op().intAttr("kv_num_heads", 0);
    int64_t batch = qIn.shape()[0];
    int64_t headSize = qIn.shape()[2] / queryHeads, valueHeadSize = vIn.shape()[2] / kvHeads;
    q = HeadTensor::fromRows(qIn.data<float>(), batch, qIn.shape()[1], qIn.shape()[2], 0, queryHeads, headSize);
    k = HeadTensor::fromRows(kIn.data<float>(), batch, kIn.shape()[1], kIn.shape()[2], 0, kvHeads, kIn.shape()[2] / kvHeads);
    v = HeadTensor::fromRows(vIn.data<float>(), batch, vIn.shape()[1], vIn.shape()[2], 0, kvHeads, valueHeadSize);
  } else {
    q = HeadTensor::fromBnsh(qIn);
    k = HeadTensor::fromBnsh(kIn);
    v = HeadTensor::fromBnsh(vIn);
  }
  int64_t pastSeq = 0;
  if (ctx.hasInput(4)) {
    pastSeq = ctx.input(4).shape()[2];
    k = HeadTensor::concatSeq(HeadTensor::fromBnsh(ctx.input(4)), k);
    v = HeadTensor::concatSeq(HeadTensor::fromBnsh(ctx.input(5)), v);
  }
  const int64_t batch = q.batch(), queryHeads = q.heads(), querySeq = q.seq(), total = k.seq();

  kernels::AttentionSpec spec;
  spec.scale = ctx.op().hasAttr("scale") ? static_cast<float>(ctx.op().floatAttr("scale", 1.0))
                                         : static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.dim())));
  spec.softcap = static_cast<float>(ctx.op().floatAttr("softcap", 0.0));
  bool causal = ctx.op().intAttr("is_causal", 0) != 0;
  std::optional<BroadcastIndexer> maskIndex;
  const Tensor* mask = ctx.hasInput(3) ? &ctx.input(3) : nullptr;
  if (mask) maskIndex.emplace(mask->shape(), std::vector<int64_t>{batch, queryHeads, querySeq, total});
  // The causal frontier and the mask compose additively; a false boolean mask entry is -inf.
  spec.bias = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
    float bias = 0.0f;
    if (causal && j > i + pastSeq) bias = kNegInf;
    if (mask) {
      int64_t at = (*maskIndex)(((b * queryHeads + h) * querySeq + i) * total + j);
      if (mask->dtype() == DType::Bool) bias += mask->data<bool>()[at] ? 0.0f : kNegInf;
      else if (mask->dtype() == DType::I64) bias += static_cast<float>(mask->data<int64_t>()[at]);
      else bias += mask->data<float>()[at];
    }
    return bias;
  };
  size_t numResults = ctx.op().results.size();
  if (numResults > 3) {
    static constexpr kernels::ScoreStage stages[] = {kernels::ScoreStage::Scaled, kernels::ScoreStage::Capped,
                                                     kernels::ScoreStage::Biased, kernels::ScoreStage::Probabilities};
    int64_t mode = ctx.op().intAttr("qk_matmul_output_mode", 0);
    if (mode < 0 || mode > 3) ctx.error("qk_matmul_output_mode must be 0, 1, 2 or 3, got ", mode);
    spec.capture = stages[mode];
  }
  kernels::AttentionResult result = kernels::scaledDotProductAttention(q, k, v, spec);
  kernels::setAttentionResults(ctx, packedHeads ? result.output.toBsd() : result.output.toBnsh(), k, v, result,
                               {batch, queryHeads, querySeq, total});
}

// ---- com.microsoft.MultiHeadAttention -------------------------------------------------------
// Operands: query, key, value, bias, key_padding_mask, attention_bias, past_key, past_value,
// past_sequence_length, cache_indirection. Results: output, present_key, present_value, qk.

struct MhaDims {
  Dim batch, querySeq, kvSeq, heads, headSize, valueHeadSize, pastSeq;
  bool kvIsCache = false;  // key/value given as 4-D [batch, heads, kv_seq, head]: used as they are
};

MhaDims inferMhaDims(InferContext& ctx) {
  const int64_t heads = positiveIntAttr(ctx, "num_heads", 0);
  requireFloat(ctx, 0, "query");
  size_t queryRank = requireRank(ctx, 0, {3, 5}, "query");
  const TensorType& query = ctx.operandType(0);
  MhaDims d;
  d.batch = query.dim(0);
  d.querySeq = query.dim(1);
  d.heads = heads;
  if (ctx.hasOperand(8)) ctx.error("past_sequence_length (shared past/present buffers) is not supported");
  if (ctx.hasOperand(9)) ctx.error("cache_indirection (beam search) is not supported");
  if (queryRank == 5) {  // packed QKV [batch, seq, heads, 3, head]
    if (ctx.hasOperand(1) || ctx.hasOperand(2)) ctx.error("packed QKV query takes no key or value");
    requireSameDim(ctx, query.dim(2), d.heads, "packed QKV heads must equal num_heads");
    requireSameDim(ctx, query.dim(3), Dim(3), "packed QKV axis 3");
    d.headSize = d.valueHeadSize = query.dim(4);
    d.kvSeq = d.querySeq;
  } else {
    d.headSize = divideDim(ctx, query.dim(2), d.heads, "query hidden size over num_heads");
    if (!ctx.hasOperand(1)) ctx.error("key is required unless query is packed QKV");
    requireFloat(ctx, 1, "key");
    size_t keyRank = requireRank(ctx, 1, {3, 4, 5}, "key");
    const TensorType& key = ctx.operandType(1);
    requireSameDim(ctx, key.dim(0), d.batch, "key batch must equal query's");
    if (keyRank == 5) {  // packed KV [batch, kv_seq, heads, 2, head]
      if (ctx.hasOperand(2)) ctx.error("packed KV key takes no value");
      requireSameDim(ctx, key.dim(3), Dim(2), "packed KV axis 3");
      d.kvSeq = key.dim(1);
      requireSameDim(ctx, key.dim(4), d.headSize, "packed KV head size must equal query's");
      d.valueHeadSize = d.headSize;
    } else {
      if (!ctx.hasOperand(2)) ctx.error("value is required with a 3-D or 4-D key");
      requireFloat(ctx, 2, "value");
      requireRank(ctx, 2, {keyRank}, "value");
      const TensorType& value = ctx.operandType(2);
      if (keyRank == 4) {
        d.kvIsCache = true;
        requireSameDim(ctx, key.dim(1), d.heads, "key heads must equal num_heads");
        requireSameDim(ctx, key.dim(3), d.headSize, "key head size must equal query's");
        d.kvSeq = key.dim(2);
        d.valueHeadSize = value.dim(3);
      } else {
        d.kvSeq = key.dim(1);
        requireSameDim(ctx, key.dim(2), query.dim(2), "key hidden size must equal query's");
        d.valueHeadSize = divideDim(ctx, value.dim(2), d.heads, "value hidden size over num_heads");
      }
    }
  }
  d.pastSeq = Dim(0);
  if (ctx.hasOperand(6) != ctx.hasOperand(7)) ctx.error("past_key and past_value must be given together");
  if (ctx.hasOperand(6)) {
    if (d.kvIsCache) ctx.error("past_key cannot be combined with a 4-D key");
    requireRank(ctx, 6, {4}, "past_key");
    requireRank(ctx, 7, {4}, "past_value");
    requireSameDim(ctx, ctx.operandType(6).dim(1), d.heads, "past_key heads must equal num_heads");
    requireSameDim(ctx, ctx.operandType(6).dim(3), d.headSize, "past_key head size must equal query's");
    requireSameDim(ctx, ctx.operandType(7).dim(2), ctx.operandType(6).dim(2), "past_value length must equal past_key's");
    d.pastSeq = ctx.operandType(6).dim(2);
  }
  if (ctx.hasOperand(4)) requireInteger(ctx, 4, "key_padding_mask");
  return d;
}

void inferMha(InferContext& ctx) {
  MhaDims d = inferMhaDims(ctx);
  DType dtype = ctx.operandType(0).dtype;
  ctx.setResult(0, TensorType(dtype, Shape{d.batch, d.querySeq, d.heads * d.valueHeadSize}));
  Dim total = d.pastSeq + d.kvSeq;
  if (ctx.numResults() > 1) ctx.setResult(1, TensorType(dtype, Shape{d.batch, d.heads, total, d.headSize}));
  if (ctx.numResults() > 2) ctx.setResult(2, TensorType(dtype, Shape{d.batch, d.heads, total, d.valueHeadSize}));
  if (ctx.numResults() > 3) ctx.setResult(3, TensorType(dtype, Shape{d.batch, d.heads, d.querySeq, total}));
}

void addBias(HeadTensor& t, const float* bias) {
  for (int64_t b = 0; b < t.batch(); ++b)
    for (int64_t n = 0; n < t.heads(); ++n)
      for (int64_t s = 0; s < t.seq(); ++s)
        for (int64_t d = 0; d < t.dim(); ++d) t.at(b, n, s)[d] += bias[n * t.dim() + d];
}

void evaluateMha(EvalContext& ctx) {
  const int64_t heads = ctx.op().intAttr("num_heads", 0);
  const Tensor& query = ctx.input(0);
  const int64_t batch = query.shape()[0], querySeq = query.shape()[1];
  HeadTensor q, k, v;
  bool kvIsCache = false;
  if (query.rank() == 5) {
    int64_t head = query.shape()[4];
    int64_t row = heads * 3 * head;
    // [batch, seq, heads, 3, head]: head n of Q/K/V starts at (n * 3 + which) * head.
    q = HeadTensor(batch, heads, querySeq, head);
    k = q;
    v = q;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t s = 0; s < querySeq; ++s)
        for (int64_t n = 0; n < heads; ++n) {
          const float* src = query.data<float>() + (b * querySeq + s) * row + n * 3 * head;
          std::copy(src, src + head, q.at(b, n, s));
          std::copy(src + head, src + 2 * head, k.at(b, n, s));
          std::copy(src + 2 * head, src + 3 * head, v.at(b, n, s));
        }
  } else {
    int64_t hidden = query.shape()[2];
    q = HeadTensor::fromRows(query.data<float>(), batch, querySeq, hidden, 0, heads, hidden / heads);
    const Tensor& key = ctx.input(1);
    if (key.rank() == 5) {
      int64_t kvSeq = key.shape()[1], head = key.shape()[4];
      k = HeadTensor(batch, heads, kvSeq, head);
      v = k;
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t s = 0; s < kvSeq; ++s)
          for (int64_t n = 0; n < heads; ++n) {
            const float* src = key.data<float>() + ((b * kvSeq + s) * heads + n) * 2 * head;
            std::copy(src, src + head, k.at(b, n, s));
            std::copy(src + head, src + 2 * head, v.at(b, n, s));
          }
    } else if (key.rank() == 4) {
      kvIsCache = true;
      k = HeadTensor::fromBnsh(key);
      v = HeadTensor::fromBnsh(ctx.input(2));
    } else {
      const Tensor& value = ctx.input(2);
      k = HeadTensor::fromRows(key.data<float>(), batch, key.shape()[1], key.shape()[2], 0, heads, key.shape()[2] / heads);
      v = HeadTensor::fromRows(value.data<float>(), batch, value.shape()[1], value.shape()[2], 0, heads, value.shape()[2] / heads);
    }
  }
  if (ctx.hasInput(3)) {  // bias [hidden + hidden + v_hidden] from the input projections
    const float* bias = ctx.input(3).data<float>();
    int64_t hidden = heads * q.dim();
    addBias(q, bias);
    if (!kvIsCache) {
      addBias(k, bias + hidden);
      addBias(v, bias + 2 * hidden);
    }
  }
  if (ctx.hasInput(6)) {
    k = HeadTensor::concatSeq(HeadTensor::fromBnsh(ctx.input(6)), k);
    v = HeadTensor::concatSeq(HeadTensor::fromBnsh(ctx.input(7)), v);
  }
  const int64_t total = k.seq();

  kernels::AttentionSpec spec;
  spec.scale = ctx.op().hasAttr("scale") ? static_cast<float>(ctx.op().floatAttr("scale", 1.0))
                                         : static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.dim())));
  // onnxruntime masks by adding mask_filter_value (not -inf), once per excluded key.
  const float filter = static_cast<float>(ctx.op().floatAttr("mask_filter_value", -10000.0));
  const bool unidirectional = ctx.op().intAttr("unidirectional", 0) != 0;
  const Tensor* padding = ctx.hasInput(4) ? &ctx.input(4) : nullptr;
  if (padding) {
    const auto& s = padding->shape();
    bool ok = (s.size() == 1 && s[0] == batch) || (s.size() == 2 && s[0] == batch && s[1] == total) ||
              (s.size() == 3 && s[0] == batch && s[1] == querySeq && s[2] == total);
    if (!ok) ctx.error("key_padding_mask of shape ", padding->shapeStr(), " is not supported (expected [", batch, "], [", batch, ", ", total,
                       "] or [", batch, ", ", querySeq, ", ", total, "])");
  }
  const Tensor* attentionBias = ctx.hasInput(5) ? &ctx.input(5) : nullptr;
  std::optional<BroadcastIndexer> biasIndex;
  if (attentionBias) biasIndex.emplace(attentionBias->shape(), std::vector<int64_t>{batch, heads, querySeq, total});
  spec.bias = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
    bool excluded = unidirectional && j > i + (total - querySeq);
    if (padding) {
      const int64_t* m = padding->data<int64_t>();
      switch (padding->rank()) {
        case 1: excluded = excluded || j >= m[b]; break;
        case 2: excluded = excluded || m[b * total + j] == 0; break;
        default: excluded = excluded || m[(b * querySeq + i) * total + j] == 0; break;
      }
    }
    float bias = excluded ? filter : 0.0f;
    if (attentionBias) bias += attentionBias->data<float>()[(*biasIndex)(((b * heads + h) * querySeq + i) * total + j)];
    return bias;
  };
  size_t numResults = ctx.op().results.size();
  if (numResults > 3) spec.capture = kernels::ScoreStage::Scaled;
  kernels::AttentionResult result = kernels::scaledDotProductAttention(q, k, v, spec);
  kernels::setAttentionResults(ctx, result.output.toBsd(), k, v, result, {batch, heads, querySeq, total});
}
}  // namespace

void registerAttentionOps(OpRegistry& registry) {
  registry.add({
      .name = "Attention",
      .minOperands = 3,
      .maxOperands = 6,
      .minResults = 1,
      .maxResults = 4,
      .attrs = {{"is_causal", AttrKind::Int},
                {"kv_num_heads", AttrKind::Int},
                {"q_num_heads", AttrKind::Int},
                {"qk_matmul_output_mode", AttrKind::Int},
                {"scale", AttrKind::Float},
                {"softcap", AttrKind::Float},
                {"softmax_precision", AttrKind::Int}},
      .infer = inferOnnxAttention,
      .evaluate = evaluateOnnxAttention,
      .summary = "scaled dot-product attention (MHA/GQA/MQA) with optional mask, KV cache, causal frontier and softcap",
  });
  registry.add({
      .name = "com.microsoft.MultiHeadAttention",
      .minOperands = 1,
      .maxOperands = 10,
      .minResults = 1,
      .maxResults = 4,
      .attrs = {{"mask_filter_value", AttrKind::Float},
                {"num_heads", AttrKind::Int, true},
                {"scale", AttrKind::Float},
                {"unidirectional", AttrKind::Int}},
      .infer = inferMha,
      .evaluate = evaluateMha,
      .summary = "onnxruntime multi-head attention on projected Q/K/V with bias, padding mask, attention bias and past",
  });
}

}  // namespace pagedc
