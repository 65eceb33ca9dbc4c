// Attention matching: structure first (Softmax between two MatMuls, or an attention op), then a
// numerical check on probe inputs that the match really is causal attention over the cache.
#include "passes/AttentionMatcher.h"

#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "ir/Error.h"
#include "ir/OpDef.h"

namespace pagedc {

namespace {

const Tensor* constantData(const Graph& graph, const Value* value) {
  if (!value || !value->producer) return nullptr;
  const Op* producer = value->producer;
  if (producer->opName() == "Constant") return &producer->attr("value")->asTensor();
  if (producer->opName() == "weight" && graph.weights) return graph.weights->find(producer->stringAttr("name", ""));
  return nullptr;
}

bool isScalarConstant(const Graph& graph, const Value* value) {
  const Tensor* data = constantData(graph, value);
  return data && data->numElements() == 1;
}

bool isFloatCast(const Op& op) {
  return op.opName() == "Cast" && isFloatingPoint(op.operands[0]->type.dtype) && isFloatingPoint(op.result()->type.dtype);
}

// The chain of data-movement ops (and scalar scalings) from an attention operand back to where the
// tensor was computed. It stops at a Concat with a past input: the KV cache of the export.
struct LayoutChain {
  std::vector<Value*> values;  // from the attention operand backwards
  Value* concat = nullptr;     // Concat(past, new) when the graph has a KV cache
  Value* pastInput = nullptr;
  Value* newPart = nullptr;
};

// Looks through ops that pass a tensor on unchanged (Identity, a Concat of one operand).
const Value* throughIdentities(const Value* value) {
  while (value && value->producer && (value->producer->opName() == "Identity" ||
                                      (value->producer->opName() == "Concat" && value->producer->operands.size() == 1)))
    value = value->producer->operands[0];
  return value;
}

LayoutChain walkLayoutChain(const Graph& graph, Value* top, const std::set<const Value*>& pastInputs) {
  static const std::set<std::string> kLayoutOps = {"Transpose", "Reshape", "Expand", "Unsqueeze", "Squeeze", "Identity"};
  LayoutChain chain;
  Value* value = top;
  for (int steps = 0; value && steps < 64; ++steps) {
    chain.values.push_back(value);
    Op* producer = value->producer;
    if (!producer) break;
    const std::string& name = producer->opName();
    if (name == "Concat" && producer->operands.size() == 2) {
      for (size_t i = 0; i < 2; ++i) {
        if (pastInputs.count(throughIdentities(producer->operands[i]))) {
          chain.concat = value;
          chain.pastInput = producer->operands[i];
          chain.newPart = producer->operands[1 - i];
        }
      }
      break;
    }
    if (kLayoutOps.count(name) || isFloatCast(*producer) || (name == "Concat" && producer->operands.size() == 1)) {
      value = producer->operands[0];
    } else if ((name == "Mul" || name == "Div") && isScalarConstant(graph, producer->operand(1))) {
      value = producer->operands[0];
    } else if (name == "Mul" && isScalarConstant(graph, producer->operand(0))) {
      value = producer->operands[1];
    } else {
      break;
    }
  }
  return chain;
}

// Above a Softmax: through casts, scalar scalings and the additive or selected mask, to QK^T.
Op* findScoresMatMul(const Graph& graph, Value* value, int depth = 0) {
  if (!value || !value->producer || depth > 16) return nullptr;
  Op* producer = value->producer;
  const std::string& name = producer->opName();
  if (name == "MatMul") return producer;
  if (name == "Identity" || isFloatCast(*producer)) return findScoresMatMul(graph, producer->operands[0], depth + 1);
  if ((name == "Mul" || name == "Div") && isScalarConstant(graph, producer->operand(1))) return findScoresMatMul(graph, producer->operands[0], depth + 1);
  if (name == "Mul" && isScalarConstant(graph, producer->operand(0))) return findScoresMatMul(graph, producer->operands[1], depth + 1);
  if (name == "Add" || name == "Sub") {
    for (size_t i = 0; i < 2; ++i)
      if (Op* found = findScoresMatMul(graph, producer->operand(i), depth + 1)) return found;
  }
  if (name == "Where") {
    for (size_t i : {1, 2})
      if (Op* found = findScoresMatMul(graph, producer->operand(i), depth + 1)) return found;
  }
  return nullptr;
}

// Below a Softmax: through casts and the NaN guard of SDPA exports, to probabilities x V.
Op* findOutputMatMul(const Graph& graph, Value* probabilities, std::string& problem) {
  Value* value = probabilities;
  for (int steps = 0; steps < 8; ++steps) {
    std::vector<Op*> consumers;
    for (Op* user : graph.users(value))
      if (user->opName() != "IsNaN") consumers.push_back(user);
    if (consumers.size() != 1) {
      problem = "the attention probabilities have " + std::to_string(consumers.size()) + " consumers; expected only the MatMul with V";
      return nullptr;
    }
    Op* user = consumers[0];
    const std::string& name = user->opName();
    if (name == "MatMul" && user->operand(0) == value) return user;
    if (name == "Identity" || isFloatCast(*user) || (name == "Where" && (user->operand(1) == value || user->operand(2) == value))) {
      value = user->result();
      continue;
    }
    problem = "the attention probabilities feed " + user->describe() + ", not a MatMul with V";
    return nullptr;
  }
  problem = "no MatMul with V below the Softmax";
  return nullptr;
}

struct DecomposedCandidate {
  Op* softmax = nullptr;
  Op* outputMatMul = nullptr;
  Value* scores = nullptr;  // the Softmax's operand: scale * QK^T + mask
  Value* query = nullptr;
  Value* keyTop = nullptr;
  Value* valueTop = nullptr;
  LayoutChain keyChain, valueChain;
};

// Reading probe tensors of batch 1 as [heads, rows, cols]: heads-major [1, heads, rows, cols] or,
// for tensors still in the projection's layout, seq-major [1, rows, heads, cols].
struct Heads4 {
  const Tensor& t;
  bool seqMajor = false;
  int64_t heads() const { return t.shape()[seqMajor ? 2 : 1]; }
  int64_t rows() const { return t.shape()[seqMajor ? 1 : 2]; }
  int64_t cols() const { return t.shape()[3]; }
  float at(int64_t h, int64_t r, int64_t c) const {
    return t.data<float>()[seqMajor ? (r * heads() + h) * cols() + c : (h * rows() + r) * cols() + c];
  }
};

bool isBatchOne4d(const Tensor& t) { return t.rank() == 4 && t.shape()[0] == 1; }

// Finds c with top ~= c * f(candidate), where f repeats the candidate's heads to `heads` and, when
// `transposed`, swaps its last two axes (K^T). Returns nullopt when no c fits.
std::optional<double> fitRepeatedHeads(const Tensor& top, const Tensor& candidate, bool transposed, bool seqMajor) {
  if (!isBatchOne4d(top) || !isBatchOne4d(candidate)) return std::nullopt;
  Heads4 out{top}, in{candidate, seqMajor};
  int64_t heads = out.heads(), kvHeads = in.heads();
  if (kvHeads == 0 || heads % kvHeads != 0) return std::nullopt;
  int64_t rows = transposed ? in.cols() : in.rows(), cols = transposed ? in.rows() : in.cols();
  if (out.rows() != rows || out.cols() != cols) return std::nullopt;
  int64_t group = heads / kvHeads;
  auto expected = [&](int64_t h, int64_t r, int64_t c) { return transposed ? in.at(h / group, c, r) : in.at(h / group, r, c); };
  double dot = 0, norm = 0, maxTop = 0;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        double e = expected(h, r, c), o = out.at(h, r, c);
        dot += e * o;
        norm += e * e;
        maxTop = std::max(maxTop, std::abs(o));
      }
  if (norm == 0) return std::nullopt;
  double scale = dot / norm, maxError = 0;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) maxError = std::max(maxError, std::abs(out.at(h, r, c) - scale * expected(h, r, c)));
  if (maxError > 1e-4 * std::max(maxTop, 1e-6)) return std::nullopt;
  return scale;
}

struct HeadSource {
  Value* value = nullptr;
  bool seqMajor = false;
  double scale = 1.0;
};

void matchDecomposed(Graph& graph, const DecoderInputs& roles, std::vector<DecomposedCandidate>& candidates,
                     std::vector<MatchedAttention>& matches) {
  std::vector<Value*> wanted;
  for (const auto& c : candidates) {
    for (Value* v : {c.scores, c.query, c.keyTop, c.valueTop, c.outputMatMul->result()}) wanted.push_back(v);
    for (Value* v : c.keyChain.values) wanted.push_back(v);
    for (Value* v : c.valueChain.values) wanted.push_back(v);
  }
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  ProbeShape probe;
  auto values = evaluateOnProbe(graph, roles, wanted, probe);

  for (const auto& c : candidates) {
    std::string where = c.softmax->describe();
    // The source of the keys (values): the earliest tensor on the layout chain that, repeated over
    // query-head groups (and transposed, for keys), is what the attention reads.
    auto pick = [&](const LayoutChain& chain, const Value* top, bool transposed, const char* what) {
      for (auto it = chain.values.rbegin(); it != chain.values.rend(); ++it)
        for (bool seqMajor : {false, true})
          if (auto scale = fitRepeatedHeads(values.at(top), values.at(*it), transposed, seqMajor)) return HeadSource{*it, seqMajor, *scale};
      fail(where, ": cannot find the ", what, " heads ([batch, kv_heads, length, head_dim] or [batch, length, kv_heads, head_dim]) behind %",
           top->name, ": the ", what, " path is not a head layout the matcher understands");
    };
    HeadSource keySource = pick(c.keyChain, c.keyTop, true, "key");
    HeadSource valueSource = pick(c.valueChain, c.valueTop, false, "value");
    if (std::abs(valueSource.scale - 1.0) > 1e-5) fail(where, ": the values are scaled by ", valueSource.scale, " on their way to the attention");
    const Tensor& q = values.at(c.query);
    const Tensor& k = values.at(keySource.value);
    const Tensor& v = values.at(valueSource.value);
    const Tensor& scores = values.at(c.scores);
    const Tensor& out = values.at(c.outputMatMul->result());
    if (!isBatchOne4d(q) || !isBatchOne4d(scores) || !isBatchOne4d(out))
      fail(where, ": the queries, scores and output must be 4-D [batch, heads, seq, ...], got ", q.shapeStr(), ", ", scores.shapeStr(), ", ", out.shapeStr());
    Heads4 Q{q}, K{k, keySource.seqMajor}, V{v, valueSource.seqMajor}, S{scores}, O{out};
    const int64_t heads = Q.heads(), kvHeads = K.heads(), seq = Q.rows(), headDim = Q.cols(), length = K.rows();
    const int64_t group = heads / kvHeads, pastLength = length - seq;
    if (pastLength < 0 || S.cols() != length || S.rows() != seq) fail(where, ": scores ", scores.shapeStr(), " do not match ", seq, " queries over ", length, " keys");

    // scale from the scores at the positions a causal mask keeps; then check the whole output.
    auto qk = [&](int64_t h, int64_t i, int64_t j) {
      double dot = 0;
      for (int64_t e = 0; e < headDim; ++e) dot += static_cast<double>(Q.at(h, i, e)) * K.at(h / group, j, e);
      return dot;
    };
    double dot = 0, norm = 0;
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < seq; ++i)
        for (int64_t j = 0; j <= pastLength + i; ++j) {
          double r = qk(h, i, j);
          dot += r * S.at(h, i, j);
          norm += r * r;
        }
    const double scale = norm > 0 ? dot / norm : 1.0;
    double maxError = 0, maxOut = 0;
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < seq; ++i) {
        std::vector<double> weights(static_cast<size_t>(pastLength + i + 1));
        double maxScore = -1e300, sum = 0;
        for (int64_t j = 0; j <= pastLength + i; ++j) maxScore = std::max(maxScore, weights[static_cast<size_t>(j)] = scale * qk(h, i, j));
        for (double& w : weights) sum += (w = std::exp(w - maxScore));
        for (int64_t e = 0; e < headDim; ++e) {
          double expected = 0;
          for (int64_t j = 0; j <= pastLength + i; ++j) expected += weights[static_cast<size_t>(j)] / sum * V.at(h / group, j, e);
          maxError = std::max(maxError, std::abs(expected - O.at(h, i, e)));
          maxOut = std::max(maxOut, std::abs(static_cast<double>(O.at(h, i, e))));
        }
      }
    if (maxError > 1e-4 * std::max(maxOut, 1e-6))
      fail(where, ": on a probe of ", seq, " new tokens after ", pastLength, " cached ones the matched attention differs from causal attention ",
           "by ", maxError, " (scale ", scale, "): its mask is not the causal mask, so it cannot be paged");

    MatchedAttention match;
    match.where = where;
    match.anchor = c.outputMatMul;
    match.output = c.outputMatMul->result();
    if (c.keyChain.concat && keySource.value != c.keyChain.concat)
      fail(where, ": the keys come from a KV cache concat but the verified source %", keySource.value->name, " is not it");
    if (c.valueChain.concat && valueSource.value != c.valueChain.concat)
      fail(where, ": the values come from a KV cache concat but the verified source %", valueSource.value->name, " is not it");
    match.keyNew = c.keyChain.concat ? c.keyChain.newPart : keySource.value;
    match.valueNew = c.valueChain.concat ? c.valueChain.newPart : valueSource.value;
    match.keySeqMajor = keySource.seqMajor;
    match.valueSeqMajor = valueSource.seqMajor;
    // A query pre-scaled by a constant (SDPA exports split the scale between q and k) is taken
    // unscaled, so the paged op's scale is the model's attention scale.
    match.query = c.query;
    match.scale = scale;
    if (Op* producer = c.query->producer; producer && (producer->opName() == "Mul" || producer->opName() == "Div")) {
      for (size_t i = 0; i < 2; ++i) {
        const Tensor* factor = constantData(graph, producer->operand(1 - i));
        if (!factor || factor->numElements() != 1 || (producer->opName() == "Div" && i == 1)) continue;
        double f = factor->elementAsDouble(0);
        if (f == 0) continue;
        match.query = producer->operands[i];
        match.scale = producer->opName() == "Mul" ? scale * f : scale / f;
        break;
      }
    }
    match.heads = heads;
    match.kvHeads = kvHeads;
    match.headDim = headDim;
    matches.push_back(match);
  }
}

MatchedAttention matchGroupQueryAttention(const Graph& graph, Op& op) {
  enum : size_t { kQuery, kKey, kValue, kPastKey, kPastValue, kSeqlensK, kTotal, kCos, kSin, kPositionIds, kBias };
  MatchedAttention match;
  match.where = op.describe();
  match.anchor = &op;
  match.output = op.result(0);
  match.packedLayout = true;
  for (size_t i = kBias; i < op.operands.size(); ++i)
    if (op.operands[i]) fail(match.where, ": operand ", i, " (attention bias, head sink, quantisation or q/k norm) is not supported by the paged rewrite yet");
  if (op.results.size() > 3 && !graph.users(op.results[3]).empty()) fail(match.where, ": its attention-score output is used; paged attention does not produce it");
  if (op.intAttr("smooth_softmax", 0) != 0) fail(match.where, ": smooth_softmax is not supported by the paged rewrite yet");
  match.heads = op.intAttr("num_heads", 0);
  match.kvHeads = op.intAttr("kv_num_heads", 0);
  const TensorType& query = op.operands[kQuery]->type;
  auto width = query.hasRank() && query.rank() == 3 ? query.dim(2).constant() : std::nullopt;
  if (!width) fail(match.where, ": the query width must be a constant, got ", query.str());
  bool packed = !op.hasOperand(kKey);
  match.headDim = *width / (packed ? match.heads + 2 * match.kvHeads : match.heads);
  match.query = op.operands[kQuery];
  match.keyNew = packed ? nullptr : op.operands[kKey];
  match.valueNew = packed ? nullptr : op.operands[kValue];
  double scale = op.floatAttr("scale", 0.0);
  match.scale = scale != 0.0 ? scale : 1.0 / std::sqrt(static_cast<double>(match.headDim));
  match.softcap = op.floatAttr("softcap", 0.0);
  int64_t window = op.intAttr("local_window_size", -1);
  match.slidingWindow = window > 0 ? window + 1 : -1;
  if (op.intAttr("do_rotary", 0) != 0) {
    match.cosCache = op.operand(kCos);
    match.sinCache = op.operand(kSin);
    match.rotaryInterleaved = op.intAttr("rotary_interleaved", 0) != 0;
  }
  return match;
}

// ONNX Attention (opset 23) and onnxruntime's MultiHeadAttention: queries, new keys and new values
// are operands; the op concatenates them to its past inputs itself.
MatchedAttention matchAttentionOp(const Graph& graph, Op& op) {
  const bool onnx = op.opName() == "Attention";
  MatchedAttention match;
  match.where = op.describe();
  match.anchor = &op;
  match.output = op.result(0);
  // Operand positions of the mask-like inputs the ragged form cannot express.
  const std::vector<size_t> masks = onnx ? std::vector<size_t>{3, 6} : std::vector<size_t>{3, 4, 5, 8, 9};
  for (size_t i : masks)
    if (op.hasOperand(i))
      fail(match.where, ": operand ", i, " (an explicit mask, bias or cache index) is not supported by the paged rewrite yet; ",
           "padding and causality are implied by the ragged form");
  if (onnx ? op.intAttr("is_causal", 0) != 1 : op.intAttr("unidirectional", 0) != 1)
    fail(match.where, ": only causal attention (", onnx ? "is_causal" : "unidirectional", " = 1) can be paged");
  for (size_t r = 3; r < op.results.size(); ++r)
    if (!graph.users(op.results[r]).empty()) fail(match.where, ": its attention-score output is used; paged attention does not produce it");
  if (!op.hasOperand(1) || !op.hasOperand(2)) fail(match.where, ": packed QKV forms are not supported by the paged rewrite yet");
  const TensorType& query = op.operands[0]->type;
  const TensorType& key = op.operands[1]->type;
  if (!query.hasRank() || !key.hasRank() || query.rank() != key.rank() || (query.rank() != 3 && query.rank() != 4))
    fail(match.where, ": queries and keys must both be 3-D or both 4-D, got ", query.str(), " and ", key.str());
  match.packedLayout = query.rank() == 3;
  if (match.packedLayout) {
    match.heads = onnx ? op.intAttr("q_num_heads", 0) : op.intAttr("num_heads", 0);
    match.kvHeads = onnx ? op.intAttr("kv_num_heads", 0) : match.heads;
    auto width = query.dim(2).constant();
    if (!width || match.heads <= 0) fail(match.where, ": needs a constant query width and a head count");
    match.headDim = *width / match.heads;
  } else {
    auto heads = query.dim(1).constant(), kvHeads = key.dim(1).constant(), headDim = query.dim(3).constant();
    if (!heads || !kvHeads || !headDim) fail(match.where, ": 4-D queries and keys need constant head counts and head size");
    match.heads = *heads;
    match.kvHeads = *kvHeads;
    match.headDim = *headDim;
  }
  match.query = op.operands[0];
  match.keyNew = op.operands[1];
  match.valueNew = op.operands[2];
  double scale = op.floatAttr("scale", 0.0);
  match.scale = scale != 0.0 ? scale : 1.0 / std::sqrt(static_cast<double>(match.headDim));
  if (onnx) match.softcap = op.floatAttr("softcap", 0.0);
  return match;
}

}  // namespace

std::vector<MatchedAttention> matchAttentions(Graph& graph, const DecoderInputs& roles) {
  std::set<const Value*> pastInputs(roles.pastKeyValues.begin(), roles.pastKeyValues.end());
  std::vector<DecomposedCandidate> candidates;
  std::vector<MatchedAttention> matches;
  std::vector<std::pair<Op*, size_t>> order;  // op, and index into candidates or matches
  for (const auto& opPtr : graph.ops()) {
    Op& op = *opPtr;
    const std::string& name = op.opName();
    if (name == "com.microsoft.GroupQueryAttention") {
      matches.push_back(matchGroupQueryAttention(graph, op));
      continue;
    }
    if (name == "Attention" || name == "com.microsoft.MultiHeadAttention") {
      matches.push_back(matchAttentionOp(graph, op));
      continue;
    }
    if (name != "Softmax") continue;
    DecomposedCandidate c;
    c.softmax = &op;
    std::string where = op.describe();
    const TensorType& type = op.result()->type;
    if (!type.hasRank() || type.rank() != 4) fail(where, ": attention probabilities must be 4-D [batch, heads, seq, keys], got ", type.str());
    int64_t axis = op.intAttr("axis", -1);
    if (axis != -1 && axis != 3) fail(where, ": softmax over axis ", axis, " is not over the keys");
    c.scores = op.operands[0];
    Op* scoresMatMul = findScoresMatMul(graph, c.scores);
    if (!scoresMatMul) fail(where, ": step 'scores': no MatMul(Q, K^T) above the Softmax through scaling, masking and casts");
    std::string problem;
    c.outputMatMul = findOutputMatMul(graph, op.result(), problem);
    if (!c.outputMatMul) fail(where, ": step 'output': ", problem);
    c.query = scoresMatMul->operands[0];
    c.keyTop = scoresMatMul->operands[1];
    c.valueTop = c.outputMatMul->operands[1];
    c.keyChain = walkLayoutChain(graph, c.keyTop, pastInputs);
    c.valueChain = walkLayoutChain(graph, c.valueTop, pastInputs);
    if (pastInputs.size() && (!c.keyChain.concat || !c.valueChain.concat))
      fail(where, ": step 'cache': the graph has past KV inputs but this attention's ", c.keyChain.concat ? "values" : "keys",
           " do not come from a Concat with one");
    candidates.push_back(c);
  }
  if (!candidates.empty()) {
    if (!matches.empty()) fail("the graph mixes attention ops with decomposed attention; not supported");
    matchDecomposed(graph, roles, candidates, matches);
  }
  if (matches.empty()) fail("no attention found (no Softmax between two MatMuls, no attention op): nothing to page");
  return matches;
}

}  // namespace pagedc
