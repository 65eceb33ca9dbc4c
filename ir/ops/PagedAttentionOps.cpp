// The paged KV-cache ops the attention rewrite produces: kv_cache_write and paged_attention.
//
// Cache layout, one pair of tensors per layer: [num_blocks, kv_heads, block_size, head_dim], so the
// keys of one (block, kv head) are contiguous: a decode step streams whole blocks per head.
// A token's slot is block * block_size + offset; block tables map a sequence's logical blocks to
// physical ones.
#include <cmath>
#include <limits>

#include "ir/OpDef.h"
#include "ir/ops/OperandChecks.h"
#include "ir/ops/OpRegistration.h"

namespace pagedc {

namespace {

// Operand order of kv_cache_write.
enum KvWriteOperand : size_t { kWriteKey, kWriteValue, kWriteKeyCache, kWriteValueCache, kWriteSlots };
// Operand order of paged_attention.
enum PagedOperand : size_t { kQuery, kKeyCache, kValueCache, kBlockTables, kContextLens, kQueryStart };

void inferKvCacheWrite(InferContext& ctx) {
  for (size_t i : {kWriteKey, kWriteValue}) {
    requireFloat(ctx, i, i == kWriteKey ? "key" : "value");
    requireRank(ctx, i, {3}, i == kWriteKey ? "key" : "value");
  }
  for (size_t i : {kWriteKeyCache, kWriteValueCache}) {
    requireFloat(ctx, i, i == kWriteKeyCache ? "key_cache" : "value_cache");
    requireRank(ctx, i, {4}, i == kWriteKeyCache ? "key_cache" : "value_cache");
  }
  requireInteger(ctx, kWriteSlots, "slot_mapping");
  requireRank(ctx, kWriteSlots, {1}, "slot_mapping");
  const TensorType& key = ctx.operandType(kWriteKey);
  const TensorType& cache = ctx.operandType(kWriteKeyCache);
  requireSameDim(ctx, key.dim(0), ctx.operandType(kWriteSlots).dim(0), "slot_mapping needs one slot per token");
  requireSameDim(ctx, key.dim(1), cache.dim(1), "key heads must equal the cache's kv heads");
  requireSameDim(ctx, key.dim(2), cache.dim(3), "key head size must equal the cache's");
  if (ctx.operandType(kWriteValueCache) != cache) ctx.error("value_cache ", ctx.operandType(kWriteValueCache).str(), " must match key_cache ", cache.str());
  ctx.setResult(0, cache);
  ctx.setResult(1, ctx.operandType(kWriteValueCache));
}

void evaluateKvCacheWrite(EvalContext& ctx) {
  const Tensor& key = ctx.input(kWriteKey);
  const Tensor& value = ctx.input(kWriteValue);
  Tensor keyCache = ctx.input(kWriteKeyCache);
  Tensor valueCache = ctx.input(kWriteValueCache);
  const auto& cacheShape = keyCache.shape();
  const int64_t numBlocks = cacheShape[0], kvHeads = cacheShape[1], blockSize = cacheShape[2], headDim = cacheShape[3];
  const int64_t numTokens = key.shape()[0];
  const int64_t* slots = ctx.input(kWriteSlots).data<int64_t>();
  // The interpreter computes in f32; a 16-bit cache keeps only that precision.
  const DType cacheType = ctx.resultDType(0);
  auto roundToCache = [cacheType](float x) {
    if (cacheType == DType::F32) return x;
    Tensor one = Tensor::fromValues<float>(DType::F32, {1}, {x}).convertTo(cacheType);
    return static_cast<float>(one.elementAsDouble(0));
  };
  float* keyOut = keyCache.mutableData<float>();
  float* valueOut = valueCache.mutableData<float>();
  for (int64_t t = 0; t < numTokens; ++t) {
    int64_t slot = slots[t];
    if (slot < 0) continue;  // a padding token writes nothing
    if (slot >= numBlocks * blockSize) ctx.error("token ", t, " has slot ", slot, " beyond the cache of ", numBlocks, " blocks of ", blockSize);
    int64_t block = slot / blockSize, offset = slot % blockSize;
    for (int64_t h = 0; h < kvHeads; ++h) {
      const float* k = key.data<float>() + (t * kvHeads + h) * headDim;
      const float* v = value.data<float>() + (t * kvHeads + h) * headDim;
      float* kd = keyOut + ((block * kvHeads + h) * blockSize + offset) * headDim;
      float* vd = valueOut + ((block * kvHeads + h) * blockSize + offset) * headDim;
      for (int64_t d = 0; d < headDim; ++d) {
        kd[d] = roundToCache(k[d]);
        vd[d] = roundToCache(v[d]);
      }
    }
  }
  ctx.setOutput(0, std::move(keyCache));
  ctx.setOutput(1, std::move(valueCache));
}

void inferPagedAttention(InferContext& ctx) {
  requireFloat(ctx, kQuery, "query");
  requireRank(ctx, kQuery, {3}, "query");
  requireRank(ctx, kKeyCache, {4}, "key_cache");
  requireRank(ctx, kValueCache, {4}, "value_cache");
  requireInteger(ctx, kBlockTables, "block_tables");
  requireRank(ctx, kBlockTables, {2}, "block_tables");
  requireInteger(ctx, kContextLens, "context_lens");
  requireRank(ctx, kContextLens, {1}, "context_lens");
  requireInteger(ctx, kQueryStart, "query_start_loc");
  requireRank(ctx, kQueryStart, {1}, "query_start_loc");
  const TensorType& query = ctx.operandType(kQuery);
  const TensorType& cache = ctx.operandType(kKeyCache);
  requireSameDim(ctx, query.dim(2), cache.dim(3), "query head size must equal the cache's");
  requireSameDim(ctx, ctx.operandType(kContextLens).dim(0), ctx.operandType(kBlockTables).dim(0), "one block table per sequence");
  requireSameDim(ctx, ctx.operandType(kQueryStart).dim(0), ctx.operandType(kContextLens).dim(0) + Dim(1), "query_start_loc has num_seqs + 1 entries");
  auto heads = query.dim(1).constant(), kvHeads = cache.dim(1).constant();
  if (heads && kvHeads && (*kvHeads == 0 || *heads % *kvHeads != 0))
    ctx.error("query heads (", *heads, ") must be a multiple of the cache's kv heads (", *kvHeads, ")");
  ctx.setResult(0, query);
}

void evaluatePagedAttention(EvalContext& ctx) {
  const Op& op = ctx.op();
  const Tensor& query = ctx.input(kQuery);
  const Tensor& keyCache = ctx.input(kKeyCache);
  const Tensor& valueCache = ctx.input(kValueCache);
  const Tensor& blockTables = ctx.input(kBlockTables);
  const Tensor& contextLens = ctx.input(kContextLens);
  const Tensor& queryStart = ctx.input(kQueryStart);
  const int64_t numTokens = query.shape()[0], heads = query.shape()[1], headDim = query.shape()[2];
  const int64_t numBlocks = keyCache.shape()[0], kvHeads = keyCache.shape()[1], blockSize = keyCache.shape()[2];
  const int64_t numSeqs = contextLens.shape()[0], maxBlocks = blockTables.shape()[1];
  const int64_t group = heads / kvHeads;
  const float scale = static_cast<float>(op.floatAttr("scale", 1.0 / std::sqrt(static_cast<double>(headDim))));
  const double softcap = op.floatAttr("softcap", 0.0);
  const int64_t window = op.intAttr("sliding_window", -1);

  Tensor output = Tensor::zeros(DType::F32, {numTokens, heads, headDim});
  float* out = output.mutableData<float>();
  if (queryStart.elementAsInt(0) != 0 || queryStart.elementAsInt(numSeqs) != numTokens)
    ctx.error("query_start_loc must run from 0 to num_tokens (", numTokens, "), got ", queryStart.elementAsInt(0), " .. ", queryStart.elementAsInt(numSeqs));
  std::vector<float> scores;
  for (int64_t s = 0; s < numSeqs; ++s) {
    const int64_t begin = queryStart.elementAsInt(s), end = queryStart.elementAsInt(s + 1);
    const int64_t queryLen = end - begin, contextLen = contextLens.elementAsInt(s);
    if (queryLen < 0 || queryLen > contextLen) ctx.error("sequence ", s, ": ", queryLen, " query tokens but context length ", contextLen);
    if ((contextLen + blockSize - 1) / blockSize > maxBlocks) ctx.error("sequence ", s, ": context length ", contextLen, " needs more than ", maxBlocks, " blocks");
    auto keyRow = [&](const Tensor& cache, int64_t position, int64_t kvHead) {
      int64_t block = blockTables.elementAsInt(s * maxBlocks + position / blockSize);
      if (block < 0 || block >= numBlocks) ctx.error("sequence ", s, ": block table entry ", position / blockSize, " is ", block, ", outside 0..", numBlocks - 1);
      return cache.data<float>() + ((block * kvHeads + kvHead) * blockSize + position % blockSize) * headDim;
    };
    for (int64_t i = 0; i < queryLen; ++i) {
      const int64_t position = contextLen - queryLen + i;  // the query token's own position: it sees 0..position
      const int64_t first = window > 0 ? std::max<int64_t>(0, position - window + 1) : 0;
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t kvHead = h / group;
        const float* q = query.data<float>() + ((begin + i) * heads + h) * headDim;
        scores.assign(static_cast<size_t>(position + 1 - first), 0.0f);
        float maxScore = -std::numeric_limits<float>::infinity();
        for (int64_t j = first; j <= position; ++j) {
          const float* k = keyRow(keyCache, j, kvHead);
          double dot = 0;
          for (int64_t d = 0; d < headDim; ++d) dot += static_cast<double>(q[d]) * k[d];
          double score = dot * scale;
          if (softcap > 0) score = softcap * std::tanh(score / softcap);
          scores[static_cast<size_t>(j - first)] = static_cast<float>(score);
          maxScore = std::max(maxScore, static_cast<float>(score));
        }
        double sum = 0;
        for (float& p : scores) {
          p = std::exp(p - maxScore);
          sum += p;
        }
        float* o = out + ((begin + i) * heads + h) * headDim;
        for (int64_t j = first; j <= position; ++j) {
          const float* v = keyRow(valueCache, j, kvHead);
          const double weight = scores[static_cast<size_t>(j - first)] / sum;
          for (int64_t d = 0; d < headDim; ++d) o[d] += static_cast<float>(weight * v[d]);
        }
      }
    }
  }
  ctx.setOutput(0, std::move(output));
}

}  // namespace

void registerPagedAttentionOps(OpRegistry& registry) {
  registry.add({
      .name = "kv_cache_write",
      .minOperands = 5,
      .maxOperands = 5,
      .minResults = 2,
      .maxResults = 2,
      .infer = inferKvCacheWrite,
      .evaluate = evaluateKvCacheWrite,
      .summary = "writes each token's key and value [tokens, kv_heads, head_dim] to its slot of the paged caches; returns the caches",
  });
  registry.add({
      .name = "paged_attention",
      .minOperands = 6,
      .maxOperands = 6,
      .attrs = {{"scale", AttrKind::Float}, {"softcap", AttrKind::Float}, {"sliding_window", AttrKind::Int}},
      .infer = inferPagedAttention,
      .evaluate = evaluatePagedAttention,
      .summary = "causal attention of each sequence's query tokens [tokens, heads, head_dim] over its cached keys, through its block table",
  });
}

}  // namespace pagedc
