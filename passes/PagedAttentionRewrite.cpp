// Replaces each matched attention by paged ops and the graph's batched I/O by the ragged I/O.
#include "passes/PagedAttentionRewrite.h"

#include <algorithm>
#include <map>

#include "ir/Error.h"
#include "ir/RaggedInterface.h"
#include "ir/TypeInference.h"
#include "passes/AttentionMatcher.h"
#include "passes/DeadCodeElimination.h"
#include "passes/ProbeEvaluation.h"

namespace pagedc {

namespace {

using namespace ragged;

// Builds new ops at a moving insertion point, each typed by its shape rule as it is created.
class Builder {
public:
  Builder(Graph& graph, size_t index) : graph_(graph), index_(index) {}

  Value* op(std::string_view name, std::vector<Value*> operands, AttrMap attrs, const std::string& resultName, size_t results = 1) {
    std::vector<std::string> names{resultName};
    for (size_t i = 1; i < results; ++i) names.push_back(resultName + "." + std::to_string(i));
    Op* created = graph_.insertOp(index_++, name, std::move(operands), std::move(attrs), names);
    inferOpTypes(graph_, *created);
    last_ = created;
    return created->result(0);
  }
  Op* lastOp() const { return last_; }
  Value* constInts(const std::vector<int64_t>& values, const std::string& name) {
    return op("Constant", {}, {{"value", Tensor::fromValues(DType::I64, {static_cast<int64_t>(values.size())}, values)}}, graph_.uniqueName(name));
  }
  Value* reshape(Value* x, const std::vector<int64_t>& shape, const std::string& name) {
    return op("Reshape", {x, constInts(shape, name + ".shape")}, {}, graph_.uniqueName(name));
  }
  Value* transpose(Value* x, const std::vector<int64_t>& perm, const std::string& name) {
    return op("Transpose", {x}, {{"perm", perm}}, graph_.uniqueName(name));
  }

private:
  Graph& graph_;
  size_t index_;
  Op* last_ = nullptr;
};

size_t indexOf(const Graph& graph, const Op* op) {
  for (size_t i = 0; i < graph.ops().size(); ++i)
    if (graph.ops()[i].get() == op) return i;
  fail("internal: op not in graph");
}

struct RaggedInputs {
  Value* inputIds = nullptr;
  Value* positions = nullptr;
  Value* slotMapping = nullptr;
  Value* blockTables = nullptr;
  Value* contextLens = nullptr;
  Value* queryStartLoc = nullptr;
  Value* positions2d = nullptr;  // [1, num_tokens], for rotary the rewrite applies itself
};

Shape dims(std::initializer_list<Dim> list) { return Shape(list); }

// Replaces a batched [batch, seq] input by Unsqueeze(new [num_tokens] input, 0) for its old users.
Value* replaceBatchedInput(Graph& graph, Value* old, Value* replacement) {
  Builder build(graph, 0);
  Value* unsqueezed = build.op("Unsqueeze", {replacement, build.constInts({0}, replacement->name + ".axes")}, {}, graph.uniqueName(replacement->name + ".batched"));
  graph.replaceAllUsesWith(old, unsqueezed);
  return unsqueezed;
}

// [b, H, s, d] (or seq-major [b, s, H, d], or packed [b, s, H*d]) -> [tokens, H, d].
Value* toTokenMajor(Builder& build, Value* x, bool seqMajorOrPacked, int64_t heads, int64_t headDim, const std::string& name) {
  if (seqMajorOrPacked) return build.reshape(x, {-1, heads, headDim}, name);
  return build.reshape(build.transpose(x, {0, 2, 1, 3}, name + ".bshd"), {-1, heads, headDim}, name);
}

Value* sliceLastAxis(Builder& build, Value* x, int64_t begin, int64_t end, const std::string& name) {
  return build.op("Slice", {x, build.constInts({begin}, name + ".starts"), build.constInts({end}, name + ".ends"), build.constInts({-1}, name + ".axes")}, {},
                  name);
}

}  // namespace

ModelFacts rewriteToPagedForm(Graph& graph, const PagedRewriteOptions& options) {
  inferTypes(graph);
  DecoderInputs roles = classifyDecoderInputs(graph);
  std::vector<MatchedAttention> attentions = matchAttentions(graph, roles);

  // The ragged inputs of ir/RaggedInterface.h. Old batched inputs give up their names.
  Dim numTokens = Dim::symbol(kNumTokens), numSeqs = Dim::symbol(kNumSeqs);
  for (Value* old : {roles.inputIds, roles.positionIds})
    if (old) graph.renameValue(old, graph.uniqueName(old->name + ".batched_input"));
  RaggedInputs in;
  in.inputIds = graph.addInput(kInputIds, {DType::I64, dims({numTokens})});
  in.positions = graph.addInput(kPositions, {DType::I64, dims({numTokens})});
  in.slotMapping = graph.addInput(kSlotMapping, {DType::I64, dims({numTokens})});
  in.blockTables = graph.addInput(kBlockTables, {DType::I64, dims({numSeqs, Dim::symbol(kMaxBlocks)})});
  in.contextLens = graph.addInput(kContextLens, {DType::I64, dims({numSeqs})});
  in.queryStartLoc = graph.addInput(kQueryStartLoc, {DType::I64, dims({numSeqs + Dim(1)})});

  ModelFacts facts;
  facts.blockSize = options.blockSize;
  facts.kvDType = options.kvDType;
  facts.numLayers = static_cast<int64_t>(attentions.size());
  std::vector<Value*> cacheOutputs;
  if (std::any_of(attentions.begin(), attentions.end(), [](const MatchedAttention& a) { return a.cosCache != nullptr; })) {
    Builder top(graph, 0);
    in.positions2d = top.op("Unsqueeze", {in.positions, top.constInts({0}, "positions.axes")}, {}, graph.uniqueName("positions.batched"));
  }
  for (size_t layer = 0; layer < attentions.size(); ++layer) {
    MatchedAttention& a = attentions[layer];
    if (layer == 0) {
      facts.numHeads = a.heads;
      facts.numKvHeads = a.kvHeads;
      facts.headDim = a.headDim;
      facts.attentionScale = a.scale;
      facts.slidingWindow = a.slidingWindow;
    } else if (a.heads != facts.numHeads || a.kvHeads != facts.numKvHeads || a.headDim != facts.headDim) {
      fail(a.where, ": layer ", layer, " has ", a.heads, " heads / ", a.kvHeads, " kv heads / head dim ", a.headDim,
           ", layer 0 has ", facts.numHeads, " / ", facts.numKvHeads, " / ", facts.headDim, ": one cache geometry per model is supported");
    }
    const std::string prefix = "layers." + std::to_string(layer) + ".paged";
    Builder build(graph, indexOf(graph, a.anchor) + 1);
    Value* query = a.query;
    Value* key = a.keyNew;
    Value* value = a.valueNew;
    if (a.packedLayout && !key) {  // packed QKV: [b, s, (H + 2 KVH) d]
      int64_t q = a.heads * a.headDim, kv = a.kvHeads * a.headDim;
      query = sliceLastAxis(build, a.query, 0, q, graph.uniqueName(prefix + ".q"));
      key = sliceLastAxis(build, a.query, q, q + kv, graph.uniqueName(prefix + ".k"));
      value = sliceLastAxis(build, a.query, q + kv, q + 2 * kv, graph.uniqueName(prefix + ".v"));
    }
    if (a.cosCache) {  // the attention op rotated q and k itself: do it explicitly, at each token's position
      AttrMap rotary = {{"interleaved", static_cast<int64_t>(a.rotaryInterleaved)}};
      rotary["num_heads"] = a.heads;
      query = build.op("RotaryEmbedding", {query, a.cosCache, a.sinCache, in.positions2d}, rotary, graph.uniqueName(prefix + ".q_rotary"));
      rotary["num_heads"] = a.kvHeads;
      key = build.op("RotaryEmbedding", {key, a.cosCache, a.sinCache, in.positions2d}, rotary, graph.uniqueName(prefix + ".k_rotary"));
      facts.rotary.present = true;
      facts.rotary.interleaved = a.rotaryInterleaved;
      if (auto rows = a.cosCache->type.hasRank() ? a.cosCache->type.dim(0).constant() : std::nullopt) facts.maxPositions = *rows;
      if (auto half = a.cosCache->type.hasRank() ? a.cosCache->type.dim(1).constant() : std::nullopt) facts.rotary.rotaryDim = 2 * *half;
    }
    Value* q = toTokenMajor(build, query, a.packedLayout, a.heads, a.headDim, graph.uniqueName(prefix + ".query"));
    Value* k = toTokenMajor(build, key, a.packedLayout || a.keySeqMajor, a.kvHeads, a.headDim, graph.uniqueName(prefix + ".key"));
    Value* v = toTokenMajor(build, value, a.packedLayout || a.valueSeqMajor, a.kvHeads, a.headDim, graph.uniqueName(prefix + ".value"));
    TensorType cacheType(options.kvDType, dims({Dim::symbol(kNumBlocks), Dim(a.kvHeads), Dim(options.blockSize), Dim(a.headDim)}));
    Value* keyCacheIn = graph.addInput(ragged::keyCache(static_cast<int>(layer)), cacheType);
    Value* valueCacheIn = graph.addInput(ragged::valueCache(static_cast<int>(layer)), cacheType);
    build.op("kv_cache_write", {k, v, keyCacheIn, valueCacheIn, in.slotMapping}, {}, keyCacheOut(static_cast<int>(layer)), 2);
    Op* write = build.lastOp();
    graph.renameValue(write->results[1], valueCacheOut(static_cast<int>(layer)));
    AttrMap attrs = {{"scale", a.scale}};
    if (a.softcap > 0) attrs["softcap"] = a.softcap;
    if (a.slidingWindow > 0) attrs["sliding_window"] = a.slidingWindow;
    Value* attended = build.op("paged_attention", {q, write->results[0], write->results[1], in.blockTables, in.contextLens, in.queryStartLoc}, attrs,
                               graph.uniqueName(prefix + ".output"));
    Value* replacement = a.packedLayout
                             ? build.reshape(attended, {1, -1, a.heads * a.headDim}, graph.uniqueName(prefix + ".output.bsd"))
                             : build.transpose(build.reshape(attended, {1, -1, a.heads, a.headDim}, graph.uniqueName(prefix + ".output.bshd")),
                                               {0, 2, 1, 3}, graph.uniqueName(prefix + ".output.bhsd"));
    graph.replaceAllUsesWith(a.output, replacement);
    cacheOutputs.push_back(write->results[0]);
    cacheOutputs.push_back(write->results[1]);
  }

  // Outputs: the logits, then the caches. Present KV outputs go: the caches replace them.
  Value* logits = nullptr;
  for (Value* output : graph.outputs) {
    if (output->name == kLogits) logits = output;
    else if (output->name.rfind("present", 0) != 0)
      fail("graph output '", output->name, "' is neither the logits nor a present KV output; a paged model returns only logits");
  }
  if (!logits) fail("the graph has no 'logits' output");
  graph.outputs = {logits};
  graph.outputs.insert(graph.outputs.end(), cacheOutputs.begin(), cacheOutputs.end());

  replaceBatchedInput(graph, roles.inputIds, in.inputIds);
  if (roles.positionIds) replaceBatchedInput(graph, roles.positionIds, in.positions);
  eliminateDeadCode(graph);
  // What is left of the removed inputs may only be their static sizes: Shape ops that read the
  // batch (1 in the ragged form), the head count or the head size become constants.
  std::vector<Value*> removed = roles.pastKeyValues;
  if (roles.attentionMask) removed.push_back(roles.attentionMask);
  std::map<std::string, int64_t> batchOfOne;
  if (!roles.batchSymbol.empty()) batchOfOne[roles.batchSymbol] = 1;
  for (Value* old : removed) {
    for (Op* user : graph.users(old)) {
      if (user->opName() != "Shape" || !old->type.hasRank()) continue;
      int64_t rank = static_cast<int64_t>(old->type.rank());
      int64_t start = user->intAttr("start", 0), end = user->intAttr("end", rank);
      start = std::clamp(start < 0 ? start + rank : start, int64_t{0}, rank);
      end = std::clamp(end < 0 ? end + rank : end, int64_t{0}, rank);
      std::vector<int64_t> sizes;
      for (int64_t axis = start; axis < end; ++axis) {
        auto size = old->type.dim(static_cast<size_t>(axis)).substitute(batchOfOne).constant();
        if (!size) fail(user->describe(), " reads dimension ", axis, " of '", old->name, "' (", old->type.str(), "), which the ragged form does not have");
        sizes.push_back(*size);
      }
      Builder build(graph, indexOf(graph, user));
      Value* constant = build.constInts(sizes, user->result()->name + ".static");
      graph.replaceAllUsesWith(user->result(), constant);
    }
  }
  eliminateDeadCode(graph);
  for (Value* old : {roles.attentionMask, roles.inputIds, roles.positionIds}) {
    if (!old) continue;
    auto users = graph.users(old);
    if (!users.empty())
      fail("graph input '", old->name, "' is still used by ", users[0]->describe(), " after the attention rewrite: the model computes more than ",
           "the attention mask from it (positions, perhaps), which the ragged form cannot express");
  }
  for (Value* past : roles.pastKeyValues) {
    auto users = graph.users(past);
    if (!users.empty()) fail("past input '", past->name, "' is still used by ", users[0]->describe(), " after the attention rewrite");
  }
  graph.removeUnusedInputs();
  // Keep the ragged inputs even where this model does not read them (positions, say): every
  // compiled model takes the same inputs.
  for (Value* needed : {in.inputIds, in.positions, in.slotMapping, in.blockTables, in.contextLens, in.queryStartLoc})
    if (std::find(graph.inputs.begin(), graph.inputs.end(), needed) == graph.inputs.end()) graph.inputs.push_back(needed);
  std::stable_sort(graph.inputs.begin(), graph.inputs.end(), [](const Value* a, const Value* b) {
    auto rank = [](const Value* v) { return v->name.rfind("key_cache", 0) == 0 || v->name.rfind("value_cache", 0) == 0 ? 1 : 0; };
    return rank(a) < rank(b);
  });
  inferTypes(graph);
  if (logits->type.hasRank() && logits->type.rank() >= 1)
    if (auto vocab = logits->type.dim(logits->type.rank() - 1).constant()) facts.vocabSize = *vocab;
  return facts;
}

}  // namespace pagedc
