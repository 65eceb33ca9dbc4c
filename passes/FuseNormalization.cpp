// RMSNorm / LayerNorm fusion: matched by the math (mean of squares over the last axis, + eps,
// inverse square root, scale), not by node names, so TorchScript, dynamo and ORT spellings all map.
#include "passes/FuseNormalization.h"

#include <algorithm>

#include "ir/OpDef.h"
#include "passes/DeadCodeElimination.h"
#include "passes/PatternMatch.h"

namespace pagedc {

namespace {

// True for a ReduceMean over exactly the last axis that keeps it (size 1).
bool reducesLastAxis(const Graph& graph, const Op& op) {
  if (op.opName() != "ReduceMean" || op.intAttr("keepdims", 1) != 1) return false;
  const Value* input = op.operand(0);
  if (!input->type.hasRank() || input->type.rank() == 0) return false;
  auto rank = static_cast<int64_t>(input->type.rank());
  std::optional<std::vector<int64_t>> axes;
  if (op.hasOperand(1)) axes = constantInts(graph, op.operand(1));
  else if (op.hasAttr("axes")) axes = op.intsAttr("axes");
  return axes && axes->size() == 1 && ((*axes)[0] == -1 || (*axes)[0] == rank - 1);
}

// The value squared by `op` (Pow(v, 2) or Mul(v, v)), if it squares.
Value* squaredValue(const Graph& graph, const Op* op) {
  if (!op) return nullptr;
  if (op->opName() == "Pow" && isScalarConstant(graph, op->operand(1), 2.0)) return op->operand(0);
  if (op->opName() == "Mul" && op->operand(0) == op->operand(1)) return op->operand(0);
  return nullptr;
}

// Same value up to casts between float types.
bool sameUpToCasts(Value* a, Value* b) { return skipFloatCasts(a) == skipFloatCasts(b); }

// The single user of `value` when it is an op named `opName` and the value is no graph output.
Op* singleUser(const Graph& graph, const Value* value, std::string_view opName = {}) {
  if (isGraphOutput(graph, value)) return nullptr;
  auto users = graph.users(value);
  if (users.size() != 1) return nullptr;
  if (!opName.empty() && users[0]->opName() != opName) return nullptr;
  return users[0];
}

bool isHiddenVector(const Value* value, const Dim& hidden) {
  return value && value->type.hasRank() && value->type.rank() == 1 && value->type.dim(0) == hidden &&
         isFloatingPoint(value->type.dtype);
}

// A matched normalisation: out = norm(x) * weight (+ bias), to be replaced by the fused op.
struct NormMatch {
  bool subtractMean = false;
  Value* x = nullptr;
  double epsilon = 0;
  Value* weight = nullptr;  // null: no scale multiply followed
  Value* bias = nullptr;
  Value* out = nullptr;     // the value the fused result replaces
};

// From the ReduceMean of a square, follows + eps, the inverse square root and the multiply by the
// centred value, then float casts, the weight multiply and (layer norm) the bias add.
std::optional<NormMatch> matchFromMeanOfSquares(const Graph& graph, Op& reduce) {
  if (!reducesLastAxis(graph, reduce)) return std::nullopt;
  Value* centred = squaredValue(graph, reduce.operand(0)->producer);
  if (!centred) return std::nullopt;
  NormMatch match;
  match.x = centred;
  // Layer norm: centred = x - ReduceMean(x).
  if (Op* sub = producerOf(centred, "Sub")) {
    Op* mean = producerOf(sub->operand(1), "ReduceMean");
    if (mean && reducesLastAxis(graph, *mean) && mean->operand(0) == sub->operand(0)) {
      match.subtractMean = true;
      match.x = sub->operand(0);
    }
  }
  Op* addEps = singleUser(graph, reduce.result(), "Add");
  if (!addEps) return std::nullopt;
  Value* epsValue = otherOperand(*addEps, reduce.result());
  auto eps = epsValue ? scalarConstant(graph, epsValue) : std::nullopt;
  if (!eps || *eps < 0) return std::nullopt;
  match.epsilon = *eps;
  // normed = centred * inv or centred / sqrt, where inv = 1/sqrt, Reciprocal(sqrt) or Pow(., -0.5).
  Value* normed = nullptr;
  auto multipliesCentred = [&](Value* inv) -> Value* {
    Op* mul = singleUser(graph, inv, "Mul");
    if (!mul) return nullptr;
    Value* other = otherOperand(*mul, inv);
    return other && sameUpToCasts(other, centred) ? mul->result() : nullptr;
  };
  Op* next = singleUser(graph, addEps->result());
  if (!next) return std::nullopt;
  if (next->opName() == "Pow" && next->operand(0) == addEps->result() && isScalarConstant(graph, next->operand(1), -0.5)) {
    normed = multipliesCentred(next->result());
  } else if (next->opName() == "Sqrt") {
    Op* inv = singleUser(graph, next->result());
    if (!inv) return std::nullopt;
    if (inv->opName() == "Reciprocal") {
      normed = multipliesCentred(inv->result());
    } else if (inv->opName() == "Div" && inv->operand(1) == next->result()) {
      if (isScalarConstant(graph, inv->operand(0), 1.0)) normed = multipliesCentred(inv->result());
      else if (sameUpToCasts(inv->operand(0), centred)) normed = inv->result();
    }
  }
  if (!normed) return std::nullopt;
  // The multiply by the normalised value may see it through casts (down to the input dtype).
  match.out = normed;
  while (Op* cast = singleUser(graph, match.out, "Cast")) {
    if (!isFloatingPoint(cast->result()->type.dtype)) break;
    match.out = cast->result();
  }
  const Dim& hidden = centred->type.dim(centred->type.rank() - 1);
  if (Op* scale = singleUser(graph, match.out, "Mul")) {
    Value* w = otherOperand(*scale, match.out);
    if (isHiddenVector(w, hidden)) {
      match.weight = w;
      match.out = scale->result();
      if (match.subtractMean) {
        if (Op* shift = singleUser(graph, match.out, "Add")) {
          Value* b = otherOperand(*shift, match.out);
          if (isHiddenVector(b, hidden)) {
            match.bias = b;
            match.out = shift->result();
          }
        }
      }
    }
  }
  return match;
}

// A constant vector of ones for a norm without a scale multiply.
Value* onesWeight(Graph& graph, const Value* x, const Op& anchor) {
  auto hidden = x->type.dim(x->type.rank() - 1).constant();
  if (!hidden) return nullptr;
  Tensor ones = Tensor::fromValues(DType::F32, {*hidden}, std::vector<float>(static_cast<size_t>(*hidden), 1.0f));
  Op* constant = addFusedOp(graph, "Constant", {}, {{"value", Attribute(ones)}}, {"norm_ones"}, anchor);
  return constant->result();
}

// Replaces `out` by the fused op's result, casting when the fused op computes in x's dtype and the
// replaced value had another (an f16 model upcast around the norm).
void replaceWith(Graph& graph, Value* out, Value* fused, const Op& anchor) {
  Value* replacement = fused;
  if (fused->type.dtype != out->type.dtype)
    replacement = addFusedOp(graph, "Cast", {fused}, {{"to", Attribute(out->type.dtype)}}, {"norm_cast"}, anchor)->result();
  replaceValue(graph, out, replacement);
}

// Decomposed chains, anchored on the ReduceMean of a square.
void fuseDecomposed(Graph& graph, std::map<std::string, int64_t>& counts) {
  std::vector<Op*> reduces;
  for (const auto& op : graph.ops())
    if (op->opName() == "ReduceMean") reduces.push_back(op.get());
  for (Op* reduce : reduces) {
    auto match = matchFromMeanOfSquares(graph, *reduce);
    if (!match) continue;
    Value* x = skipFloatCasts(match->x);
    Value* weight = match->weight ? match->weight : onesWeight(graph, x, *reduce);
    if (!weight) continue;
    const char* name = match->subtractMean ? "layer_norm" : "rms_norm";
    std::vector<Value*> operands{x, weight};
    if (match->subtractMean) operands.push_back(match->bias);
    Op* fused = addFusedOp(graph, name, operands, {{"epsilon", Attribute(match->epsilon)}}, {name}, *reduce);
    replaceWith(graph, match->out, fused->result(), *reduce);
    ++counts[name];
  }
}

bool axisIsLast(const Op& op) {
  const Value* x = op.operand(0);
  if (!x->type.hasRank()) return false;
  int64_t axis = op.intAttr("axis", -1);
  return axis == -1 || axis == static_cast<int64_t>(x->type.rank()) - 1;
}

bool resultsUnused(const Graph& graph, const Op& op, size_t first, size_t last) {
  for (size_t r = first; r < last && r < op.results.size(); ++r)
    if (isGraphOutput(graph, op.result(r)) || !graph.users(op.result(r)).empty()) return false;
  return true;
}

// ONNX LayerNormalization / RMSNormalization, ORT SimplifiedLayerNormalization and the Skip forms.
void fuseNormOps(Graph& graph, std::map<std::string, int64_t>& counts) {
  std::vector<Op*> candidates;
  for (const auto& op : graph.ops()) candidates.push_back(op.get());
  for (Op* op : candidates) {
    const std::string& name = op->opName();
    double epsilon = op->floatAttr("epsilon", 1e-5);
    Value* x = op->operand(0);
    if (!x || !x->type.hasRank() || x->type.rank() == 0) continue;
    const Dim& hidden = x->type.dim(x->type.rank() - 1);
    std::vector<Value*> operands;
    const char* fusedName = nullptr;
    size_t resultCount = 1;
    if (name == "LayerNormalization" || name == "RMSNormalization" || name == "SimplifiedLayerNormalization") {
      bool layer = name == "LayerNormalization";
      if (!axisIsLast(*op) || !resultsUnused(graph, *op, 1, op->results.size())) continue;
      if (!isHiddenVector(op->operand(1), hidden) || (op->hasOperand(2) && !isHiddenVector(op->operand(2), hidden))) continue;
      fusedName = layer ? "layer_norm" : "rms_norm";
      operands = {x, op->operand(1)};
      if (layer) operands.push_back(op->operand(2));
    } else if (name == "com.microsoft.SkipSimplifiedLayerNormalization" || name == "com.microsoft.SkipLayerNormalization") {
      bool layer = name == "com.microsoft.SkipLayerNormalization";
      size_t biasOperand = layer ? 4 : 3;
      Value* skip = op->operand(1);
      // The fused op adds a same-shape residual and nothing else; other forms stay as they are.
      if (op->hasOperand(biasOperand) || !skip->type.hasRank() || skip->type.shape != x->type.shape) continue;
      if (!resultsUnused(graph, *op, 1, 3)) continue;
      if (!isHiddenVector(op->operand(2), hidden) || (layer && op->hasOperand(3) && !isHiddenVector(op->operand(3), hidden))) continue;
      fusedName = layer ? "layer_norm" : "rms_norm";
      operands = {x, op->operand(2)};
      if (layer) operands.push_back(op->operand(3));
      operands.push_back(skip);
      resultCount = resultsUnused(graph, *op, 3, 4) ? 1 : 2;
    } else {
      continue;
    }
    std::vector<std::string> hints{fusedName};
    if (resultCount == 2) hints.push_back("residual_sum");
    Op* fused = addFusedOp(graph, fusedName, operands, {{"epsilon", Attribute(epsilon)}}, hints, *op);
    replaceWith(graph, op->result(0), fused->result(0), *op);
    if (resultCount == 2) replaceValue(graph, op->result(3), fused->result(1));
    ++counts[operands.size() > (std::string(fusedName) == "layer_norm" ? 3u : 2u) ? std::string(fusedName) + "+residual" : fusedName];
  }
}

// True when something other than `norm` reads `value`, directly or through no-op casts.
bool readElsewhere(const Graph& graph, const Value* value, const Op* norm) {
  if (isGraphOutput(graph, value)) return true;
  for (const Op* user : graph.users(value)) {
    if (user == norm) continue;
    if (user->opName() == "Cast" && user->result()->type.dtype == value->type.dtype) {
      if (readElsewhere(graph, user->result(), norm)) return true;
      continue;
    }
    return true;
  }
  return false;
}

// Moves the residual Add feeding a norm into it when the sum is read elsewhere as well.
void fuseResiduals(Graph& graph, std::map<std::string, int64_t>& counts) {
  eliminateDeadCode(graph);  // the replaced chains must not count as readers of the sum
  std::vector<Op*> norms;
  for (const auto& op : graph.ops())
    if ((op->opName() == "rms_norm" && !op->hasOperand(2)) || (op->opName() == "layer_norm" && !op->hasOperand(3))) norms.push_back(op.get());
  for (Op* norm : norms) {
    Value* sum = norm->operand(0);
    Op* add = producerOf(sum, "Add");
    if (!add || !add->operand(0) || !add->operand(1)) continue;
    Value* a = skipIdentityCasts(add->operand(0));
    Value* b = skipIdentityCasts(add->operand(1));
    if (!a->type.hasRank() || a->type.shape != sum->type.shape || b->type.shape != sum->type.shape) continue;
    if (a->type.dtype != sum->type.dtype || b->type.dtype != sum->type.dtype) continue;
    if (!readElsewhere(graph, sum, norm)) continue;
    bool layer = norm->opName() == "layer_norm";
    std::vector<Value*> operands{a, norm->operand(1)};
    if (layer) operands.push_back(norm->operand(2));
    operands.push_back(b);
    Op* fused = addFusedOp(graph, norm->opName(), operands, norm->attrs, {norm->opName(), "residual_sum"}, *norm);
    replaceValue(graph, norm->result(), fused->result(0));
    replaceValue(graph, sum, fused->result(1));
    std::string name = norm->opName();
    --counts[name];
    ++counts[name + "+residual"];
  }
}

}  // namespace

std::map<std::string, int64_t> fuseNormalization(Graph& graph) {
  std::map<std::string, int64_t> counts;
  fuseDecomposed(graph, counts);
  fuseNormOps(graph, counts);
  sortTopologically(graph);
  fuseResiduals(graph, counts);
  sortTopologically(graph);  // before any DCE: its backward sweep needs producers first
  eliminateDeadCode(graph);
  std::erase_if(counts, [](const auto& entry) { return entry.second == 0; });
  return counts;
}

}  // namespace pagedc
