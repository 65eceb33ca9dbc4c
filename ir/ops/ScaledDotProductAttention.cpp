// Reference scaled-dot-product attention shared by the attention-family ops.
#include "ir/ops/ScaledDotProductAttention.h"

#include <cmath>
#include <limits>

#include "ir/Error.h"

namespace pagedc::kernels {

HeadTensor::HeadTensor(int64_t batch, int64_t heads, int64_t seq, int64_t dim)
    : batch_(batch), heads_(heads), seq_(seq), dim_(dim), data_(static_cast<size_t>(batch * heads * seq * dim), 0.0f) {}

HeadTensor HeadTensor::fromBnsh(const Tensor& tensor) {
  if (tensor.rank() != 4) fail("expected a 4-D [batch, heads, seq, dim] tensor, got shape ", tensor.shapeStr());
  const auto& s = tensor.shape();
  HeadTensor result(s[0], s[1], s[2], s[3]);
  std::copy(tensor.data<float>(), tensor.data<float>() + tensor.numElements(), result.data_.begin());
  return result;
}

HeadTensor HeadTensor::fromRows(const float* data, int64_t batch, int64_t seq, int64_t rowSize, int64_t offset, int64_t heads,
                                int64_t dim) {
  HeadTensor result(batch, heads, seq, dim);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t n = 0; n < heads; ++n) {
        const float* src = data + (b * seq + s) * rowSize + offset + n * dim;
        std::copy(src, src + dim, result.at(b, n, s));
      }
  return result;
}

HeadTensor HeadTensor::concatSeq(const HeadTensor& first, const HeadTensor& second) {
  if (first.batch_ != second.batch_ || first.heads_ != second.heads_ || first.dim_ != second.dim_)
    fail("cannot concatenate a cache [", first.batch_, ", ", first.heads_, ", ", first.seq_, ", ", first.dim_, "] with new entries [",
         second.batch_, ", ", second.heads_, ", ", second.seq_, ", ", second.dim_, "]");
  HeadTensor result(first.batch_, first.heads_, first.seq_ + second.seq_, first.dim_);
  for (int64_t b = 0; b < result.batch_; ++b)
    for (int64_t n = 0; n < result.heads_; ++n) {
      for (int64_t s = 0; s < first.seq_; ++s) std::copy(first.at(b, n, s), first.at(b, n, s) + first.dim_, result.at(b, n, s));
      for (int64_t s = 0; s < second.seq_; ++s)
        std::copy(second.at(b, n, s), second.at(b, n, s) + second.dim_, result.at(b, n, first.seq_ + s));
    }
  return result;
}

Tensor HeadTensor::toBnsh() const { return Tensor::fromValues(DType::F32, {batch_, heads_, seq_, dim_}, data_); }

Tensor HeadTensor::toBsd() const {
  Tensor result = Tensor::zeros(DType::F32, {batch_, seq_, heads_ * dim_});
  float* out = result.mutableData<float>();
  for (int64_t b = 0; b < batch_; ++b)
    for (int64_t s = 0; s < seq_; ++s)
      for (int64_t n = 0; n < heads_; ++n) std::copy(at(b, n, s), at(b, n, s) + dim_, out + ((b * seq_ + s) * heads_ + n) * dim_);
  return result;
}

AttentionResult scaledDotProductAttention(const HeadTensor& q, const HeadTensor& k, const HeadTensor& v, const AttentionSpec& spec) {
  const int64_t batch = q.batch(), queryHeads = q.heads(), querySeq = q.seq(), dim = q.dim();
  const int64_t kvHeads = k.heads(), keys = k.seq(), valueDim = v.dim();
  if (k.batch() != batch || v.batch() != batch) fail("attention: batch sizes differ (", batch, ", ", k.batch(), ", ", v.batch(), ")");
  if (k.dim() != dim) fail("attention: query head size ", dim, " but key head size ", k.dim());
  if (v.heads() != kvHeads || v.seq() != keys) fail("attention: key and value caches differ in heads or length");
  if (kvHeads == 0 || queryHeads % kvHeads != 0) fail("attention: ", queryHeads, " query heads cannot be grouped over ", kvHeads, " key/value heads");
  const int64_t group = queryHeads / kvHeads;
  const float negInf = -std::numeric_limits<float>::infinity();

  AttentionResult result{HeadTensor(batch, queryHeads, querySeq, valueDim), {}};
  if (spec.capture) result.captured.assign(static_cast<size_t>(batch * queryHeads * querySeq * keys), 0.0f);
  std::vector<float> scores(static_cast<size_t>(keys));
  for (int64_t b = 0; b < batch; ++b) {
    int64_t count = spec.keyCount ? spec.keyCount(b) : keys;
    if (count < 0 || count > keys) fail("attention: batch entry ", b, " attends to ", count, " keys but only ", keys, " are present");
    for (int64_t h = 0; h < queryHeads; ++h) {
      int64_t kvHead = h / group;
      for (int64_t i = 0; i < querySeq; ++i) {
        float* captureRow = spec.capture ? result.captured.data() + ((b * queryHeads + h) * querySeq + i) * keys : nullptr;
        auto capture = [&](ScoreStage stage, int64_t j, float value) {
          if (captureRow && *spec.capture == stage) captureRow[j] = value;
        };
        const float* query = q.at(b, h, i);
        float maxScore = negInf;
        for (int64_t j = 0; j < count; ++j) {
          const float* key = k.at(b, kvHead, j);
          double dot = 0;
          for (int64_t d = 0; d < dim; ++d) dot += static_cast<double>(query[d]) * key[d];
          float score = static_cast<float>(dot) * spec.scale;
          capture(ScoreStage::Scaled, j, score);
          if (spec.softcap > 0) score = spec.softcap * std::tanh(score / spec.softcap);
          capture(ScoreStage::Capped, j, score);
          if (spec.bias) score += spec.bias(b, h, i, j);
          capture(ScoreStage::Biased, j, score);
          scores[j] = score;
          maxScore = std::max(maxScore, score);
        }
        float sink = spec.sink ? spec.sink(h) : negInf;
        maxScore = std::max(maxScore, sink);
        if (maxScore == negInf) continue;  // every key excluded: zero row
        double denominator = spec.sink ? std::exp(static_cast<double>(sink) - maxScore) : 0.0;
        for (int64_t j = 0; j < count; ++j) denominator += std::exp(static_cast<double>(scores[j]) - maxScore);
        float* out = result.output.at(b, h, i);
        std::vector<double> accumulator(static_cast<size_t>(valueDim), 0.0);
        for (int64_t j = 0; j < count; ++j) {
          double p = std::exp(static_cast<double>(scores[j]) - maxScore) / denominator;
          capture(ScoreStage::Probabilities, j, static_cast<float>(p));
          const float* value = v.at(b, kvHead, j);
          for (int64_t d = 0; d < valueDim; ++d) accumulator[d] += p * value[d];
        }
        for (int64_t d = 0; d < valueDim; ++d) out[d] = static_cast<float>(accumulator[d]);
      }
    }
  }
  return result;
}

void setAttentionResults(EvalContext& ctx, Tensor output, const HeadTensor& presentKey, const HeadTensor& presentValue,
                         const AttentionResult& result, std::vector<int64_t> scoresShape) {
  size_t numResults = ctx.op().results.size();
  ctx.setOutput(0, std::move(output));
  if (numResults > 1) ctx.setOutput(1, presentKey.toBnsh());
  if (numResults > 2) ctx.setOutput(2, presentValue.toBnsh());
  if (numResults > 3) ctx.setOutput(3, Tensor::fromValues(DType::F32, std::move(scoresShape), result.captured));
}

}  // namespace pagedc::kernels
