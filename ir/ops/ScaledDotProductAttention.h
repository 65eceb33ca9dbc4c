// The one reference attention loop (scale, softcap, additive bias/mask, softmax, weighted sum) that
// the Attention, MultiHeadAttention and GroupQueryAttention reference implementations share.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "ir/OpDef.h"
#include "ir/Tensor.h"

namespace pagedc::kernels {

// f32 per-head data in [batch, heads, seq, dim] order.
class HeadTensor {
public:
  HeadTensor() = default;
  HeadTensor(int64_t batch, int64_t heads, int64_t seq, int64_t dim);

  // From a 4-D [batch, heads, seq, dim] tensor.
  static HeadTensor fromBnsh(const Tensor& tensor);
  // From rows laid out [batch, seq, rowSize] where head n of row (b, s) starts at
  // offset + n * dim: the 3-D [batch, seq, heads * dim] form, or one slice of a packed QKV row.
  static HeadTensor fromRows(const float* data, int64_t batch, int64_t seq, int64_t rowSize, int64_t offset, int64_t heads,
                             int64_t dim);

  int64_t batch() const { return batch_; }
  int64_t heads() const { return heads_; }
  int64_t seq() const { return seq_; }
  int64_t dim() const { return dim_; }
  float* at(int64_t b, int64_t n, int64_t s) { return data_.data() + ((b * heads_ + n) * seq_ + s) * dim_; }
  const float* at(int64_t b, int64_t n, int64_t s) const { return data_.data() + ((b * heads_ + n) * seq_ + s) * dim_; }

  // Concatenation along seq (past then new), as a KV cache grows.
  static HeadTensor concatSeq(const HeadTensor& first, const HeadTensor& second);

  Tensor toBnsh() const;
  Tensor toBsd() const;  // [batch, seq, heads * dim]

private:
  int64_t batch_ = 0, heads_ = 0, seq_ = 0, dim_ = 0;
  std::vector<float> data_;
};

// Which intermediate of the score computation an op returns as its optional QK output.
enum class ScoreStage { Scaled, Capped, Biased, Probabilities };

struct AttentionSpec {
  float scale = 1.0f;
  float softcap = 0.0f;  // > 0: scores become softcap * tanh(scores / softcap), before the bias
  // Additive bias of (batch, query head, query, key), after softcap; -inf excludes the key. Empty: none.
  std::function<float(int64_t, int64_t, int64_t, int64_t)> bias;
  // Keys [0, keyCount(batch)) are considered; empty: all of them. Others get probability 0.
  std::function<int64_t(int64_t)> keyCount;
  // An extra logit per query head in the softmax denominator (attention sink); empty: none.
  std::function<float(int64_t)> sink;
  std::optional<ScoreStage> capture;
};

struct AttentionResult {
  HeadTensor output;            // [batch, query heads, query seq, value dim]
  std::vector<float> captured;  // [batch, query heads, query seq, keys] when a stage was requested
};

// Query heads map onto key/value heads in groups (GQA): head h reads kv head h / (Nq / Nkv).
// A query whose every key is excluded (-inf) gets a zero output row and zero probabilities.
AttentionResult scaledDotProductAttention(const HeadTensor& q, const HeadTensor& k, const HeadTensor& v, const AttentionSpec& spec);

// Sets an attention op's results, as many as it declares: the output (0), the present key (1) and
// value (2) in [batch, heads, seq, dim] and the captured scores (3), of shape `scoresShape`.
void setAttentionResults(EvalContext& ctx, Tensor output, const HeadTensor& presentKey, const HeadTensor& presentValue,
                         const AttentionResult& result, std::vector<int64_t> scoresShape);

}  // namespace pagedc::kernels
