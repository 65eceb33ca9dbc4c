// Rotary fusion: matches x * cos + rotate(x) * sin structurally and turns the export's cos/sin
// subgraph into position-indexed tables by evaluating it (the position-independent part).
#include "passes/FuseRotary.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "ir/OpDef.h"
#include "passes/PatternMatch.h"

namespace pagedc {

namespace {

bool isLastAxis(int64_t axis, const Value* value) {
  return value->type.hasRank() && (axis == -1 || axis == static_cast<int64_t>(value->type.rank()) - 1);
}

std::optional<int64_t> lastDim(const Value* value) {
  if (!value->type.hasRank() || value->type.rank() == 0) return std::nullopt;
  return value->type.dim(value->type.rank() - 1).constant();
}

// A strided range [start, end) of the last axis of `source`, as Slice or Split produce it.
struct Part {
  Value* source = nullptr;
  int64_t start = 0, end = 0, step = 1;
};

std::optional<Part> matchPart(const Graph& graph, Value* value) {
  Op* op = value->producer;
  if (!op) return std::nullopt;
  Value* source = op->operand(0);
  auto size = lastDim(source);
  if (!size) return std::nullopt;
  auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + *size : v, int64_t{0}, *size); };
  if (op->opName() == "Slice") {
    auto starts = constantInts(graph, op->operand(1));
    auto ends = constantInts(graph, op->operand(2));
    auto axes = op->hasOperand(3) ? constantInts(graph, op->operand(3)) : std::nullopt;
    auto steps = op->hasOperand(4) ? constantInts(graph, op->operand(4)) : std::optional<std::vector<int64_t>>(std::vector<int64_t>{1});
    if (!starts || !ends || !axes || !steps || starts->size() != 1 || ends->size() != 1 || axes->size() != 1 || steps->size() != 1) return std::nullopt;
    if (!isLastAxis((*axes)[0], source) || (*steps)[0] < 1) return std::nullopt;
    return Part{source, clamp((*starts)[0]), clamp((*ends)[0]), (*steps)[0]};
  }
  if (op->opName() == "Split" && isLastAxis(op->intAttr("axis", 0), source)) {
    std::vector<int64_t> sizes;
    if (op->hasOperand(1)) {
      auto split = constantInts(graph, op->operand(1));
      if (!split) return std::nullopt;
      sizes = *split;
    } else {
      auto n = static_cast<int64_t>(op->results.size());
      if (*size % n != 0) return std::nullopt;
      sizes.assign(static_cast<size_t>(n), *size / n);
    }
    if (sizes.size() != op->results.size()) return std::nullopt;
    int64_t start = 0;
    for (int i = 0; i < value->resultIndex; ++i) start += sizes[static_cast<size_t>(i)];
    return Part{source, start, start + sizes[static_cast<size_t>(value->resultIndex)], 1};
  }
  return std::nullopt;
}

struct Rotation {
  Value* x = nullptr;
  int64_t rotaryDim = 0;  // x's last dimension: the whole of x rotates
  bool interleaved = false;
};

// rotate_half(x) = Concat(-x[..., h:], x[..., :h]) with 2h the last dimension of x.
std::optional<Rotation> matchRotateHalf(const Graph& graph, Value* value) {
  Op* concat = producerOf(value, "Concat");
  if (!concat || concat->operands.size() != 2 || !isLastAxis(concat->intAttr("axis", 0), value)) return std::nullopt;
  Op* neg = producerOf(concat->operand(0), "Neg");
  if (!neg) return std::nullopt;
  auto second = matchPart(graph, neg->operand(0));
  auto first = matchPart(graph, concat->operand(1));
  if (!first || !second || first->source != second->source || first->step != 1 || second->step != 1) return std::nullopt;
  auto d = lastDim(first->source);
  if (!d || *d % 2 != 0 || first->start != 0 || first->end != *d / 2 || second->start != *d / 2 || second->end != *d) return std::nullopt;
  return Rotation{first->source, *d, false};
}

// The interleaved form: Reshape(Concat(Unsqueeze(-x[..., 1::2], -1), Unsqueeze(x[..., ::2], -1)), shape of x).
std::optional<Rotation> matchRotateInterleaved(const Graph& graph, Value* value) {
  Op* reshape = producerOf(value, "Reshape");
  if (!reshape) return std::nullopt;
  Op* concat = producerOf(reshape->operand(0), "Concat");
  if (!concat || concat->operands.size() != 2 || !isLastAxis(concat->intAttr("axis", 0), concat->result())) return std::nullopt;
  auto unsqueezed = [&](Value* v) -> Value* {
    Op* unsqueeze = producerOf(v, "Unsqueeze");
    if (!unsqueeze) return nullptr;
    auto axes = unsqueeze->hasOperand(1) ? constantInts(graph, unsqueeze->operand(1)) : std::optional(unsqueeze->intsAttr("axes"));
    if (!axes || axes->size() != 1 || !isLastAxis((*axes)[0], v)) return nullptr;
    return unsqueeze->operand(0);
  };
  Value* negated = unsqueezed(concat->operand(0));
  Value* plain = unsqueezed(concat->operand(1));
  Op* neg = negated ? producerOf(negated, "Neg") : nullptr;
  if (!neg || !plain) return std::nullopt;
  auto odd = matchPart(graph, neg->operand(0));
  auto even = matchPart(graph, plain);
  if (!odd || !even || odd->source != even->source || odd->step != 2 || even->step != 2) return std::nullopt;
  auto d = lastDim(even->source);
  if (!d || *d % 2 != 0 || even->start != 0 || odd->start != 1 || even->end < *d - 1 || odd->end < *d) return std::nullopt;
  if (value->type != even->source->type) return std::nullopt;
  return Rotation{even->source, *d, true};
}

struct RopeMatch {
  Rotation rotation;
  Value* cos = nullptr;  // multiplies x
  Value* sin = nullptr;  // multiplies the rotated x
};

std::optional<RopeMatch> matchRope(const Graph& graph, const Op& add) {
  if (add.opName() != "Add" || add.operands.size() != 2) return std::nullopt;
  for (int order = 0; order < 2; ++order) {
    Op* plainMul = producerOf(add.operand(order), "Mul");
    Op* rotatedMul = producerOf(add.operand(1 - order), "Mul");
    if (!plainMul || !rotatedMul) continue;
    for (int side = 0; side < 2; ++side) {
      Value* rotated = rotatedMul->operand(side);
      auto rotation = matchRotateHalf(graph, rotated);
      if (!rotation) rotation = matchRotateInterleaved(graph, rotated);
      if (!rotation) continue;
      Value* cos = otherOperand(*plainMul, rotation->x);
      if (!cos || cos == rotation->x) continue;
      return RopeMatch{*rotation, cos, rotatedMul->operand(1 - side)};
    }
  }
  return std::nullopt;
}

// The [batch, seq] integer value the cos/sin subgraphs are functions of (with constants).
Value* findPositions(const Graph& graph, Value* cos, Value* sin) {
  std::vector<Value*> stack{cos};
  std::unordered_set<const Value*> seen;
  while (!stack.empty()) {
    Value* v = stack.back();
    stack.pop_back();
    if (!v || !seen.insert(v).second || constantData(graph, v)) continue;
    if (isInteger(v->type.dtype) && v->type.hasRank() && v->type.rank() == 2) {
      auto stopAt = [&](const Op& op) { return std::find(op.results.begin(), op.results.end(), v) == op.results.end(); };
      auto cosLeaves = coneLeaves(graph, cos, stopAt);
      auto sinLeaves = coneLeaves(graph, sin, stopAt);
      if (cosLeaves.size() == 1 && cosLeaves[0] == v && sinLeaves.size() == 1 && sinLeaves[0] == v) return v;
    }
    if (v->producer)
      for (Value* operand : v->producer->operands) stack.push_back(operand);
  }
  return nullptr;
}

// Rows of a constant cache the subgraph gathers from with the positions, if it does.
std::optional<int64_t> gatheredCacheRows(const Graph& graph, Value* table, const Value* positions) {
  std::optional<int64_t> rows;
  std::vector<Value*> stack{table};
  std::unordered_set<const Value*> seen;
  while (!stack.empty()) {
    Value* v = stack.back();
    stack.pop_back();
    if (!v || v == positions || !seen.insert(v).second || !v->producer) continue;
    Op* op = v->producer;
    if (op->opName() == "Gather") {
      const Tensor* data = constantData(graph, op->operand(0));
      if (data && data->rank() > 0) {
        auto axis = static_cast<size_t>(normalizeAxis(op->intAttr("axis", 0), static_cast<int64_t>(data->rank()), *op));
        rows = std::min(rows.value_or(INT64_MAX), data->shape()[axis]);
      }
    }
    for (Value* operand : op->operands) stack.push_back(operand);
  }
  return rows;
}

// cos/sin evaluated at positions 0..rows-1, as [rows, rotaryDim] (the duplicated layout).
struct Tables {
  Tensor cos, sin;  // [rows, rotaryDim / 2]
};

// The table row layout of a [1, rows] evaluation; also checks that a [2, 3] evaluation at scattered
// positions reads the same rows (the subgraph is a per-position lookup).
std::optional<Tensor> evaluateTable(const Graph& graph, Value* table, Value* positions, int64_t rows, int64_t width) {
  std::vector<int64_t> all(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) all[static_cast<size_t>(i)] = i;
  auto full = evaluateCone(graph, table, {{positions, Tensor::fromValues(DType::I64, {1, rows}, all)}});
  if (!full || full->numElements() != rows * width) return std::nullopt;
  std::vector<int64_t> scattered = {3, 0, 5, 1, 4, 2};
  for (auto& p : scattered) p %= rows;
  auto probe = evaluateCone(graph, table, {{positions, Tensor::fromValues(DType::I64, {2, 3}, scattered)}});
  if (!probe || probe->numElements() != 6 * width) return std::nullopt;
  for (size_t t = 0; t < scattered.size(); ++t)
    for (int64_t j = 0; j < width; ++j) {
      float expected = full->data<float>()[scattered[t] * width + j];
      float actual = probe->data<float>()[static_cast<int64_t>(t) * width + j];
      if (std::abs(expected - actual) > 1e-6f * (1.0f + std::abs(expected))) return std::nullopt;
    }
  return full->reshaped({rows, width});
}

// The half table of a duplicated one: columns i and i + half (or 2i and 2i + 1) must agree.
std::optional<Tensor> halfTable(const Tensor& table, bool interleaved) {
  int64_t rows = table.shape()[0], width = table.shape()[1], half = width / 2;
  std::vector<float> values(static_cast<size_t>(rows * half));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < half; ++i) {
      float a = table.data<float>()[r * width + (interleaved ? 2 * i : i)];
      float b = table.data<float>()[r * width + (interleaved ? 2 * i + 1 : i + half)];
      if (std::abs(a - b) > 1e-6f * (1.0f + std::abs(a))) return std::nullopt;
      values[static_cast<size_t>(r * half + i)] = a;
    }
  return Tensor::fromValues(DType::F32, {rows, half}, values);
}

class RotaryFuser {
public:
  RotaryFuser(Graph& graph, const FuseRotaryOptions& options) : graph_(graph), options_(options) {}

  std::map<std::string, int64_t> run() {
    std::vector<Op*> adds;
    for (const auto& op : graph_.ops())
      if (op->opName() == "Add") adds.push_back(op.get());
    for (Op* add : adds) fuseDecomposed(*add);
    std::vector<Op*> ropes;
    for (const auto& op : graph_.ops())
      if (op->opName() == "RotaryEmbedding" || op->opName() == "com.microsoft.RotaryEmbedding") ropes.push_back(op.get());
    for (Op* op : ropes) fuseRotaryOp(*op);
    sortTopologically(graph_);
    return counts_;
  }

private:
  void fuseDecomposed(Op& add) {
    auto match = matchRope(graph_, add);
    if (!match) return;
    Value* x = match->rotation.x;
    int64_t rotaryDim = match->rotation.rotaryDim;
    bool interleaved = match->rotation.interleaved;
    if (!x->type.hasRank() || x->type.rank() != 4) return;
    Value* positions = findPositions(graph_, match->cos, match->sin);
    if (!positions) return;
    // Where the sequence axis is: cos/sin broadcast over heads (size 1) and follow the positions.
    int seqAxis = sequenceAxis(match->cos, x, positions);
    if (seqAxis < 0 || sequenceAxis(match->sin, x, positions) != seqAxis) return;
    int64_t rows = gatheredCacheRows(graph_, match->cos, positions).value_or(options_.maxPositions);
    auto cosFull = evaluateTable(graph_, match->cos, positions, rows, rotaryDim);
    auto sinFull = evaluateTable(graph_, match->sin, positions, rows, rotaryDim);
    if (!cosFull || !sinFull) return;
    auto cos = halfTable(*cosFull, interleaved);
    auto sin = halfTable(*sinFull, interleaved);
    if (!cos || !sin) return;
    // Partial rotary: x is the first rotaryDim dims of a wider head, the rest concatenated back.
    Value* replaced = add.result();
    Value* input = x;
    if (auto part = matchPart(graph_, x); part && part->start == 0 && part->step == 1 && !isGraphOutput(graph_, add.result())) {
      auto users = graph_.users(add.result());
      Op* concat = users.size() == 1 ? users[0] : nullptr;
      if (concat && concat->opName() == "Concat" && concat->operands.size() == 2 && concat->operand(0) == add.result() &&
          isLastAxis(concat->intAttr("axis", 0), concat->result())) {
        auto rest = matchPart(graph_, concat->operand(1));
        auto full = lastDim(part->source);
        if (rest && full && rest->source == part->source && rest->start == rotaryDim && rest->end == *full && rest->step == 1) {
          input = part->source;
          replaced = concat->result();
        }
      }
    }
    auto [cosValue, sinValue] = tableValues(*cos, *sin, add);
    AttrMap attrs{{"interleaved", Attribute(int64_t{interleaved})}, {"rotary_dim", Attribute(rotaryDim)}};
    Value* result = emitRope(input, positions, cosValue, sinValue, attrs, seqAxis == 1, add);
    replaceValue(graph_, replaced, result);
    ++counts_[interleaved ? "rope(interleaved)" : "rope"];
  }

  // 2 for [batch, heads, seq, d], 1 for [batch, seq, heads, d], -1 when cos/sin do not line up.
  static int sequenceAxis(const Value* table, const Value* x, const Value* positions) {
    if (!table->type.hasRank() || table->type.rank() > 4 || table->type.rank() < 2) return -1;
    Shape aligned(4 - table->type.rank(), Dim(1));
    aligned.insert(aligned.end(), table->type.shape->begin(), table->type.shape->end());
    const Dim& seq = positions->type.dim(1);
    if (aligned[3] != x->type.dim(3)) return -1;
    if (aligned[0] != positions->type.dim(0) && aligned[0] != Dim(1)) return -1;
    if (aligned[2] == seq && aligned[1] == Dim(1) && x->type.dim(2) == seq) return 2;
    if (aligned[1] == seq && aligned[2] == Dim(1) && x->type.dim(1) == seq) return 1;
    return -1;
  }

  Value* emitRope(Value* x, Value* positions, Value* cos, Value* sin, const AttrMap& attrs, bool seqMajor, const Op& anchor) {
    AttrMap perm{{"perm", Attribute(std::vector<int64_t>{0, 2, 1, 3})}};
    Value* input = seqMajor ? addFusedOp(graph_, "Transpose", {x}, perm, {"rope_in"}, anchor)->result() : x;
    Value* rotated = addFusedOp(graph_, "rope", {input, positions, cos, sin}, attrs, {"rope"}, anchor)->result();
    return seqMajor ? addFusedOp(graph_, "Transpose", {rotated}, perm, {"rope_out"}, anchor)->result() : rotated;
  }

  // Weights for the tables, shared by every rope that computes the same ones.
  std::pair<Value*, Value*> tableValues(const Tensor& cos, const Tensor& sin, const Op& anchor) {
    auto same = [](const Tensor& a, const Tensor& b) {
      return a.shape() == b.shape() && std::memcmp(a.bytes(), b.bytes(), a.byteSize()) == 0;
    };
    for (const auto& entry : tables_)
      if (same(entry.cos, cos) && same(entry.sin, sin)) return {entry.cosValue, entry.sinValue};
    Value* cosValue = addWeight("rope.cos_table", cos, anchor);
    Value* sinValue = addWeight("rope.sin_table", sin, anchor);
    tables_.push_back({cos, sin, cosValue, sinValue});
    return {cosValue, sinValue};
  }

  Value* addWeight(const std::string& hint, const Tensor& data, const Op& anchor) {
    if (!graph_.weights) graph_.weights = std::make_shared<WeightStore>();
    std::string name = graph_.uniqueName(hint);
    for (int suffix = 1; graph_.weights->contains(name); ++suffix) name = graph_.uniqueName(hint + "_" + std::to_string(suffix));
    graph_.weights->add(name, data);
    Op* op = graph_.appendOp("weight", {}, {{"name", Attribute(name)}}, {name}, anchor.name);
    op->result()->type = TensorType(DType::F32, toShapeOf(data));
    return op->result();
  }

  static Shape toShapeOf(const Tensor& data) {
    Shape shape;
    for (int64_t d : data.shape()) shape.emplace_back(d);
    return shape;
  }

  // ONNX RotaryEmbedding (X, cos, sin, position_ids) and com.microsoft.RotaryEmbedding (input,
  // position_ids, cos, sin) with [batch, seq] positions and [max_positions, rot/2] caches.
  void fuseRotaryOp(Op& op) {
    bool contrib = op.opName() == "com.microsoft.RotaryEmbedding";
    Value* x = op.operand(0);
    Value* positions = contrib ? op.operand(1) : op.operand(3);
    Value* cos = contrib ? op.operand(2) : op.operand(1);
    Value* sin = contrib ? op.operand(3) : op.operand(2);
    if (!positions || !positions->type.hasRank() || positions->type.rank() != 2 || !x->type.hasRank()) return;
    if (!cos->type.hasRank() || cos->type.rank() != 2) return;
    if (contrib && (op.intAttr("is_packed_batching", 0) != 0 || op.floatAttr("scale", 1.0) != 1.0)) return;
    auto half = cos->type.dim(1).constant();
    if (!half) return;
    AttrMap attrs{{"interleaved", Attribute(op.intAttr("interleaved", 0))},
                  {"rotary_dim", Attribute(op.intAttr("rotary_embedding_dim", 0) > 0 ? op.intAttr("rotary_embedding_dim", 0) : 2 * *half)}};
    Value* result = nullptr;
    if (x->type.rank() == 4) {
      result = addFusedOp(graph_, "rope", {x, positions, cos, sin}, attrs, {"rope"}, op)->result();
    } else if (x->type.rank() == 3) {
      // [batch, seq, heads * d]: view as [batch, heads, seq, d] and back.
      int64_t heads = op.intAttr("num_heads", 0);
      auto hidden = x->type.dim(2).constant();
      if (!hidden) return;
      if (heads <= 0) heads = *hidden / (2 * *half);  // no num_heads: the caches cover the whole head
      if (heads <= 0 || *hidden % heads != 0) return;
      auto shapeConstant = [&](std::vector<int64_t> dims) {
        Tensor t = Tensor::fromValues(DType::I64, {static_cast<int64_t>(dims.size())}, dims);
        return addFusedOp(graph_, "Constant", {}, {{"value", Attribute(t)}}, {"rope_shape"}, op)->result();
      };
      AttrMap perm{{"perm", Attribute(std::vector<int64_t>{0, 2, 1, 3})}};
      Value* split = addFusedOp(graph_, "Reshape", {x, shapeConstant({0, 0, heads, *hidden / heads})}, {}, {"rope_in"}, op)->result();
      Value* bnsh = addFusedOp(graph_, "Transpose", {split}, perm, {"rope_in"}, op)->result();
      Value* rotated = addFusedOp(graph_, "rope", {bnsh, positions, cos, sin}, attrs, {"rope"}, op)->result();
      Value* bsnh = addFusedOp(graph_, "Transpose", {rotated}, perm, {"rope_out"}, op)->result();
      result = addFusedOp(graph_, "Reshape", {bsnh, shapeConstant({0, 0, *hidden})}, {}, {"rope_out"}, op)->result();
    } else {
      return;
    }
    replaceValue(graph_, op.result(), result);
    ++counts_[op.intAttr("interleaved", 0) ? "rope(interleaved)" : "rope"];
  }

  struct TableEntry {
    Tensor cos, sin;
    Value* cosValue;
    Value* sinValue;
  };

  Graph& graph_;
  const FuseRotaryOptions& options_;
  std::vector<TableEntry> tables_;
  std::map<std::string, int64_t> counts_;
};

}  // namespace

std::map<std::string, int64_t> fuseRotary(Graph& graph, const FuseRotaryOptions& options) {
  return RotaryFuser(graph, options).run();
}

}  // namespace pagedc
