// com.microsoft.GroupQueryAttention: onnxruntime's fused GQA with KV cache, as its CPU kernel runs
// the graphs onnxruntime-genai's model builder produces (prefill from an empty past, decode).
//
// Cache convention: per batch entry b, total_b = seqlens_k[b] + 1 tokens are valid after this step
// and the S new tokens occupy positions [total_b - S, total_b) (right padding). The first prompt
// (S == total_sequence_length) is the exception: its tokens start at 0 whatever seqlens_k says,
// which is how padded prompts of a batch are laid out. present = the valid past rows, then the new
// rows written at those positions; its length is max(total_sequence_length, past length), so a
// shared max-length buffer keeps its length and a growing cache gets past + S.
#include <algorithm>
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

enum Operand : size_t {
  kQuery, kKey, kValue, kPastKey, kPastValue, kSeqlensK, kTotalSequenceLength, kCosCache, kSinCache, kPositionIds,
  kAttentionBias, kHeadSink, kKScale, kVScale, kQNormWeight, kKNormWeight
};

void rejectUnsupported(const InferContext& ctx) {
  const Op& op = ctx.op();
  if (op.intAttr("sliding_window_cache", 0) != 0) ctx.error("sliding_window_cache is not supported");
  for (const char* attr : {"k_quant_type", "v_quant_type"})
    if (op.stringAttr(attr, "NONE") != "NONE") ctx.error(attr, " '", op.stringAttr(attr, ""), "' (quantized KV cache) is not supported");
  if (ctx.hasOperand(kKScale) || ctx.hasOperand(kVScale)) ctx.error("k_scale/v_scale (quantized KV cache) are not supported");
  if (ctx.hasOperand(kQNormWeight) != ctx.hasOperand(kKNormWeight)) ctx.error("q_norm_weight and k_norm_weight must be given together");
  int64_t causal = op.intAttr("causal", 1);
  if (causal != 0 && causal != 1) ctx.error("causal must be 0 or 1, got ", causal);
  if (causal == 0 && op.intAttr("local_window_size", -1) != -1) ctx.error("local_window_size must be -1 when causal is 0");
  int64_t qkOutput = op.intAttr("qk_output", 0);
  if (qkOutput < 0 || qkOutput > 2) ctx.error("qk_output must be 0, 1 or 2, got ", qkOutput);
}

void inferGqa(InferContext& ctx) {
  rejectUnsupported(ctx);
  const int64_t heads = positiveIntAttr(ctx, "num_heads", 0);
  const int64_t kvHeads = positiveIntAttr(ctx, "kv_num_heads", 0);
  if (heads % kvHeads != 0) ctx.error("num_heads ", heads, " is not a multiple of kv_num_heads ", kvHeads);
  requireFloat(ctx, kQuery, "query");
  requireRank(ctx, kQuery, {3}, "query");
  const TensorType& query = ctx.operandType(kQuery);
  const Dim batch = query.dim(0), seq = query.dim(1);
  Dim headSize;
  if (ctx.hasOperand(kKey) != ctx.hasOperand(kValue)) ctx.error("key and value must be given together (or both omitted for packed QKV)");
  if (ctx.hasOperand(kKey)) {
    headSize = divideDim(ctx, query.dim(2), Dim(heads), "query hidden size over num_heads");
    for (size_t i : {kKey, kValue}) {
      const char* name = i == kKey ? "key" : "value";
      requireFloat(ctx, i, name);
      requireRank(ctx, i, {3}, name);
      const TensorType& t = ctx.operandType(i);
      requireSameDim(ctx, t.dim(0), batch, std::string(name) + " batch must equal query's");
      requireSameDim(ctx, t.dim(1), seq, std::string(name) + " sequence length must equal query's");
      requireSameDim(ctx, t.dim(2), Dim(kvHeads) * headSize, std::string(name) + " hidden size must be kv_num_heads * head_size");
    }
  } else {
    headSize = divideDim(ctx, query.dim(2), Dim(heads + 2 * kvHeads), "packed QKV width over num_heads + 2 * kv_num_heads");
  }
  if (ctx.hasOperand(kPastKey) != ctx.hasOperand(kPastValue)) ctx.error("past_key and past_value must be given together");
  std::optional<Dim> pastSeq;
  if (ctx.hasOperand(kPastKey)) {
    for (size_t i : {kPastKey, kPastValue}) {
      const char* name = i == kPastKey ? "past_key" : "past_value";
      requireFloat(ctx, i, name);
      requireRank(ctx, i, {4}, name);
      const TensorType& t = ctx.operandType(i);
      requireSameDim(ctx, t.dim(1), Dim(kvHeads), std::string(name) + " heads must equal kv_num_heads");
      requireSameDim(ctx, t.dim(3), headSize, std::string(name) + " head size must equal query's");
    }
    pastSeq = ctx.operandType(kPastKey).dim(2);
  }
  requireInteger(ctx, kSeqlensK, "seqlens_k");
  requireRank(ctx, kSeqlensK, {1}, "seqlens_k");
  requireInteger(ctx, kTotalSequenceLength, "total_sequence_length");
  requireRank(ctx, kTotalSequenceLength, {0, 1}, "total_sequence_length");
  if (ctx.op().intAttr("do_rotary", 0) != 0 && (!ctx.hasOperand(kCosCache) || !ctx.hasOperand(kSinCache)))
    ctx.error("do_rotary needs cos_cache and sin_cache");
  if (ctx.hasOperand(kCosCache)) requireRank(ctx, kCosCache, {2}, "cos_cache");
  if (ctx.hasOperand(kSinCache)) requireRank(ctx, kSinCache, {2}, "sin_cache");
  if (ctx.hasOperand(kAttentionBias)) requireRank(ctx, kAttentionBias, {4}, "attention_bias");
  if (ctx.hasOperand(kHeadSink)) requireRank(ctx, kHeadSink, {1}, "head_sink");

  // The present length is max(total_sequence_length, past length) at run time. Symbolically we can
  // only say past + seq (a growing cache: total = past + seq), or seq without a past (first prompt);
  // a constant total with a constant or absent past gives the exact value.
  Dim present = pastSeq ? *pastSeq + seq : seq;
  auto total = ctx.operandConstInts(kTotalSequenceLength);
  if (total && total->size() == 1) {
    if (!pastSeq) present = (*total)[0];
    else if (auto p = pastSeq->constant()) present = std::max((*total)[0], *p);
  }
  DType dtype = query.dtype;
  ctx.setResult(0, TensorType(dtype, Shape{batch, seq, Dim(heads) * headSize}));
  for (size_t r = 1; r < 3 && r < ctx.numResults(); ++r) ctx.setResult(r, TensorType(dtype, Shape{batch, Dim(kvHeads), present, headSize}));
  if (ctx.numResults() > 3) ctx.setResult(3, TensorType(dtype, Shape{batch, Dim(heads), seq, present}));
}

// Per-head RMS normalization (Qwen3-style q/k norm folded into the op).
void rmsNormHeads(HeadTensor& t, const float* weight, double epsilon) {
  for (int64_t b = 0; b < t.batch(); ++b)
    for (int64_t n = 0; n < t.heads(); ++n)
      for (int64_t s = 0; s < t.seq(); ++s) {
        float* head = t.at(b, n, s);
        double squares = 0;
        for (int64_t d = 0; d < t.dim(); ++d) squares += static_cast<double>(head[d]) * head[d];
        double inv = 1.0 / std::sqrt(squares / static_cast<double>(t.dim()) + epsilon);
        for (int64_t d = 0; d < t.dim(); ++d) head[d] = static_cast<float>(head[d] * inv) * weight[d];
      }
}

void evaluateGqa(EvalContext& ctx) {
  const Op& op = ctx.op();
  const int64_t heads = op.intAttr("num_heads", 0), kvHeads = op.intAttr("kv_num_heads", 0);
  const Tensor& query = ctx.input(kQuery);
  const int64_t batch = query.shape()[0], seq = query.shape()[1], width = query.shape()[2];
  const bool packed = !ctx.hasInput(kKey);
  const int64_t headSize = packed ? width / (heads + 2 * kvHeads) : width / heads;
  HeadTensor q = HeadTensor::fromRows(query.data<float>(), batch, seq, width, 0, heads, headSize);
  HeadTensor k, v;
  if (packed) {
    k = HeadTensor::fromRows(query.data<float>(), batch, seq, width, heads * headSize, kvHeads, headSize);
    v = HeadTensor::fromRows(query.data<float>(), batch, seq, width, (heads + kvHeads) * headSize, kvHeads, headSize);
  } else {
    const Tensor& key = ctx.input(kKey);
    const Tensor& value = ctx.input(kValue);
    k = HeadTensor::fromRows(key.data<float>(), batch, seq, key.shape()[2], 0, kvHeads, headSize);
    v = HeadTensor::fromRows(value.data<float>(), batch, seq, value.shape()[2], 0, kvHeads, headSize);
  }

  const Tensor& seqlensK = ctx.input(kSeqlensK);
  if (seqlensK.numElements() != batch) ctx.error("seqlens_k has ", seqlensK.numElements(), " entries for batch ", batch);
  const int64_t totalSequenceLength = ctx.input(kTotalSequenceLength).toInt64Vector().at(0);
  const int64_t pastLength = ctx.hasInput(kPastKey) ? ctx.input(kPastKey).shape()[2] : 0;
  const int64_t presentLength = std::max(totalSequenceLength, pastLength);
  const bool firstPrompt = seq == totalSequenceLength;
  std::vector<int64_t> validLength(batch), firstNewPosition(batch);
  for (int64_t b = 0; b < batch; ++b) {
    validLength[b] = seqlensK.data<int64_t>()[b] + 1;
    firstNewPosition[b] = firstPrompt ? 0 : validLength[b] - seq;
    if (validLength[b] > presentLength || firstNewPosition[b] < 0)
      ctx.error("batch entry ", b, ": seqlens_k = ", validLength[b] - 1, " does not fit ", seq, " new tokens in a cache of ", presentLength,
                " (total_sequence_length ", totalSequenceLength, ", past ", pastLength, ")");
  }

  if (ctx.hasInput(kQNormWeight)) {
    double epsilon = op.floatAttr("qk_norm_epsilon", 1e-6);
    rmsNormHeads(q, ctx.input(kQNormWeight).data<float>(), epsilon);
    rmsNormHeads(k, ctx.input(kKNormWeight).data<float>(), epsilon);
  }
  if (op.intAttr("do_rotary", 0) != 0) {
    const Tensor& cos = ctx.input(kCosCache);
    const Tensor& sin = ctx.input(kSinCache);
    const int64_t half = cos.shape()[1], maxPosition = cos.shape()[0];
    const bool interleaved = op.intAttr("rotary_interleaved", 0) != 0;
    const Tensor* positionIds = ctx.hasInput(kPositionIds) ? &ctx.input(kPositionIds) : nullptr;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t s = 0; s < seq; ++s) {
        int64_t p = positionIds ? positionIds->data<int64_t>()[b * seq + s] : firstNewPosition[b] + s;
        if (p < 0 || p >= maxPosition) ctx.error("rotary position ", p, " is outside the cos/sin cache of ", maxPosition, " rows");
        const float* c = cos.data<float>() + p * half;
        const float* sn = sin.data<float>() + p * half;
        for (int64_t n = 0; n < heads; ++n) rotateHead(q.at(b, n, s), c, sn, 2 * half, interleaved);
        for (int64_t n = 0; n < kvHeads; ++n) rotateHead(k.at(b, n, s), c, sn, 2 * half, interleaved);
      }
  }

  // present: the valid past rows, then the new rows at their positions. A buffer that does not grow
  // is onnxruntime's shared past/present buffer, where rows past the valid ones stay as they were;
  // in a growing cache they are unspecified (onnxruntime leaves them uninitialized) and are zero here.
  HeadTensor presentKey(batch, kvHeads, presentLength, headSize), presentValue(batch, kvHeads, presentLength, headSize);
  if (ctx.hasInput(kPastKey)) {
    HeadTensor pastKey = HeadTensor::fromBnsh(ctx.input(kPastKey)), pastValue = HeadTensor::fromBnsh(ctx.input(kPastValue));
    const bool sharedBuffer = presentLength == pastLength;
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t n = 0; n < kvHeads; ++n)
        for (int64_t s = 0; s < (sharedBuffer ? pastLength : std::min(pastLength, firstNewPosition[b])); ++s) {
          std::copy(pastKey.at(b, n, s), pastKey.at(b, n, s) + headSize, presentKey.at(b, n, s));
          std::copy(pastValue.at(b, n, s), pastValue.at(b, n, s) + headSize, presentValue.at(b, n, s));
        }
  }
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t n = 0; n < kvHeads; ++n)
      for (int64_t s = 0; s < seq; ++s) {
        int64_t position = firstNewPosition[b] + s;
        if (position >= presentLength) continue;  // padding rows of a first prompt beyond the cache
        std::copy(k.at(b, n, s), k.at(b, n, s) + headSize, presentKey.at(b, n, position));
        std::copy(v.at(b, n, s), v.at(b, n, s) + headSize, presentValue.at(b, n, position));
      }

  kernels::AttentionSpec spec;
  spec.scale = op.hasAttr("scale") && op.floatAttr("scale", 0.0) != 0.0 ? static_cast<float>(op.floatAttr("scale", 0.0))
                                                                       : static_cast<float>(1.0 / std::sqrt(static_cast<double>(headSize)));
  spec.softcap = static_cast<float>(op.floatAttr("softcap", 0.0));
  spec.keyCount = [&](int64_t b) { return validLength[b]; };
  const bool causal = op.intAttr("causal", 1) != 0;
  const int64_t window = op.intAttr("local_window_size", -1);
  const Tensor* attentionBias = ctx.hasInput(kAttentionBias) ? &ctx.input(kAttentionBias) : nullptr;
  std::optional<BroadcastIndexer> biasIndex;
  int64_t biasColumns = 0;
  if (attentionBias) {
    biasColumns = attentionBias->shape()[3];
    if (biasColumns < *std::max_element(validLength.begin(), validLength.end()))
      ctx.error("attention_bias has ", biasColumns, " key columns, fewer than the ", *std::max_element(validLength.begin(), validLength.end()),
                " valid keys");
    biasIndex.emplace(attentionBias->shape(), std::vector<int64_t>{batch, heads, seq, biasColumns});
  }
  const float negInf = -std::numeric_limits<float>::infinity();
  // Query s of row b sits at position firstNewPosition[b] + s; it sees keys up to it (causal) and,
  // with a local window W, the W keys before it as well (W + 1 in all, as onnxruntime counts).
  spec.bias = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
    int64_t position = firstNewPosition[b] + i;
    if (causal && j > position) return negInf;
    if (window >= 0 && j < position - window) return negInf;
    return attentionBias ? attentionBias->data<float>()[(*biasIndex)(((b * heads + h) * seq + i) * biasColumns + j)] : 0.0f;
  };
  const Tensor* headSink = ctx.hasInput(kHeadSink) ? &ctx.input(kHeadSink) : nullptr;
  if (headSink) spec.sink = [&](int64_t h) { return headSink->data<float>()[h]; };
  else if (op.intAttr("smooth_softmax", 0) != 0) spec.sink = [](int64_t) { return 0.0f; };
  const size_t numResults = op.results.size();
  const int64_t qkOutput = op.intAttr("qk_output", 0);
  if (numResults > 3) {
    if (qkOutput == 0) ctx.error("output_qk is requested but qk_output is 0");
    spec.capture = qkOutput == 1 ? kernels::ScoreStage::Scaled : kernels::ScoreStage::Probabilities;
  }

  kernels::AttentionResult result = kernels::scaledDotProductAttention(q, presentKey, presentValue, spec);
  kernels::setAttentionResults(ctx, result.output.toBsd(), presentKey, presentValue, result, {batch, heads, seq, presentLength});
}
}  // namespace

void registerGroupQueryAttention(OpRegistry& registry) {
  registry.add({
      .name = "com.microsoft.GroupQueryAttention",
      .minOperands = 7,
      .maxOperands = 16,
      .minResults = 1,
      .maxResults = 4,
      .attrs = {{"causal", AttrKind::Int},
                {"do_rotary", AttrKind::Int},
                {"k_quant_type", AttrKind::String},
                {"kv_cache_bit_width", AttrKind::Int},
                {"kv_num_heads", AttrKind::Int, true},
                {"local_window_size", AttrKind::Int},
                {"num_heads", AttrKind::Int, true},
                {"qk_norm_epsilon", AttrKind::Float},
                {"qk_output", AttrKind::Int},
                {"rotary_interleaved", AttrKind::Int},
                {"scale", AttrKind::Float},
                {"sliding_window_cache", AttrKind::Int},
                {"smooth_softmax", AttrKind::Int},
                {"softcap", AttrKind::Float},
                {"v_quant_type", AttrKind::String}},
      .infer = inferGqa,
      .evaluate = evaluateGqa,
      .summary = "onnxruntime grouped-query attention with KV cache (seqlens_k, total_sequence_length), rotary, window, softcap",
  });
}

}  // namespace pagedc
