// Activation fusion by numeric identification of elementwise chains: the math decides, not the spelling.
#include "passes/FuseActivations.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <unordered_set>

#include "ir/OpDef.h"
#include "passes/PatternMatch.h"

namespace pagedc {

namespace {

bool isElementwise(const std::string& name) {
  static const std::unordered_set<std::string> ops = {"Add", "Sub", "Mul", "Div", "Pow", "Neg", "Tanh", "Erf",
                                                      "Sigmoid", "Sqrt", "Exp", "Reciprocal", "Cast", "Identity"};
  return ops.count(name) != 0;
}

// An op that computes a pointwise function of its non-constant operands: elementwise, float, and
// its constant operands are single elements (a bias vector would make it per-channel).
bool isPointwise(const Graph& graph, const Op& op) {
  if (!isElementwise(op.opName()) || !isFloatingPoint(op.result()->type.dtype)) return false;
  for (const Value* operand : op.operands) {
    if (!operand) return false;
    const Tensor* data = constantData(graph, operand);
    if (data && data->numElements() != 1) return false;
  }
  return true;
}

// True when `value` is a pointwise function of `x` alone.
bool derivedFrom(const Graph& graph, Value* value, const Value* x) {
  if (value == x) return true;
  auto leaves = coneLeaves(graph, value, [&](const Op& op) {
    return std::find(op.results.begin(), op.results.end(), x) == op.results.end() && isPointwise(graph, op);
  });
  return leaves.size() == 1 && leaves[0] == x;
}

struct Candidate {
  const char* kind;      // "gelu", "gelu_tanh", "silu"
  double (*fn)(double);
};

double geluErf(double x) { return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2)); }
double geluTanh(double x) { return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x))); }
double siluFn(double x) { return x / (1.0 + std::exp(-x)); }

const Candidate kCandidates[] = {{"gelu", geluErf}, {"gelu_tanh", geluTanh}, {"silu", siluFn}};

// The function `y` computes of `x`, if it is one of the candidates. The probes span both tails and
// the knee; gelu's erf and tanh forms differ by 1e-4..4e-4 there, far above the 1e-5 tolerance.
const Candidate* identify(const Graph& graph, const Value* y, const Value* x) {
  static const std::vector<float> probes = {-5.0f, -3.0f, -2.0f, -1.2f, -0.5f, -0.1f, 0.0f, 0.2f, 0.7f, 1.0f, 1.7f, 3.0f, 4.5f};
  std::map<const Value*, Tensor> bound{{x, Tensor::fromValues(DType::F32, {static_cast<int64_t>(probes.size())}, probes)}};
  auto result = evaluateCone(graph, y, bound, [&](const Op& op) { return isPointwise(graph, op); });
  if (!result || result->numElements() != static_cast<int64_t>(probes.size())) return nullptr;
  for (const Candidate& candidate : kCandidates) {
    bool all = true;
    for (size_t i = 0; i < probes.size() && all; ++i) {
      double expected = candidate.fn(probes[i]);
      all = std::abs(result->data<float>()[i] - expected) <= 1e-5 * (1.0 + std::abs(expected));
    }
    if (all) return &candidate;
  }
  return nullptr;
}

// Values the anchor's input is a pointwise function of, farthest first: the candidates for x.
std::vector<Value*> inputCandidates(const Graph& graph, Value* input) {
  std::vector<Value*> cone;
  std::unordered_set<const Value*> seen;
  std::vector<Value*> stack{input};
  while (!stack.empty()) {
    Value* v = stack.back();
    stack.pop_back();
    if (!v || !seen.insert(v).second || constantData(graph, v)) continue;
    cone.push_back(v);
    if (v->producer && isPointwise(graph, *v->producer))
      for (Value* operand : v->producer->operands) stack.push_back(operand);
  }
  std::vector<Value*> candidates;
  for (auto it = cone.rbegin(); it != cone.rend(); ++it)
    if (isFloatingPoint((*it)->type.dtype) && derivedFrom(graph, input, *it)) candidates.push_back(*it);
  return candidates;
}

// Walks forward from the anchor through pointwise functions of x and returns the first value that
// is a known activation of x.
std::optional<std::pair<Value*, const Candidate*>> findActivation(const Graph& graph, Value* anchorResult, Value* x) {
  Value* v = anchorResult;
  for (int depth = 0; depth < 8; ++depth) {
    if (const Candidate* candidate = identify(graph, v, x)) return std::make_pair(v, candidate);
    if (isGraphOutput(graph, v)) return std::nullopt;
    auto users = graph.users(v);
    if (users.size() != 1 || !isPointwise(graph, *users[0])) return std::nullopt;
    for (Value* operand : users[0]->operands)
      if (operand != v && !constantData(graph, operand) && !derivedFrom(graph, operand, x)) return std::nullopt;
    v = users[0]->result();
  }
  return std::nullopt;
}

Op* makeActivation(Graph& graph, const std::string& kind, Value* x, const Op& anchor) {
  if (kind == "silu") return addFusedOp(graph, "silu", {x}, {}, {"silu"}, anchor);
  return addFusedOp(graph, "gelu", {x}, {{"approximate", Attribute(kind == "gelu" ? "none" : "tanh")}}, {"gelu"}, anchor);
}

void fuseChains(Graph& graph, std::map<std::string, int64_t>& counts) {
  std::vector<Op*> anchors;
  for (const auto& op : graph.ops())
    if (op->opName() == "Erf" || op->opName() == "Tanh" || op->opName() == "Sigmoid") anchors.push_back(op.get());
  std::unordered_set<const Value*> replaced;
  for (Op* anchor : anchors) {
    if (replaced.count(anchor->result())) continue;
    for (Value* x : inputCandidates(graph, anchor->operand(0))) {
      auto found = findActivation(graph, anchor->result(), x);
      if (!found) continue;
      Op* fused = makeActivation(graph, found->second->kind, x, *anchor);
      replaceValue(graph, found->first, fused->result());
      replaced.insert(found->first);
      ++counts[found->second->kind];
      break;
    }
  }
}

// ONNX Gelu (opset 20) and onnxruntime's FastGelu without bias: already the op, just renamed.
void fuseGeluOps(Graph& graph, std::map<std::string, int64_t>& counts) {
  std::vector<Op*> ops;
  for (const auto& op : graph.ops())
    if (op->opName() == "Gelu" || (op->opName() == "com.microsoft.FastGelu" && !op->hasOperand(1))) ops.push_back(op.get());
  for (Op* op : ops) {
    std::string kind = op->opName() == "Gelu" && op->stringAttr("approximate", "none") == "none" ? "gelu" : "gelu_tanh";
    Op* fused = makeActivation(graph, kind, op->operand(0), *op);
    replaceValue(graph, op->result(), fused->result());
    ++counts[kind];
  }
}

std::string activationOf(const Op& op) {
  if (op.opName() == "silu") return "silu";
  return op.stringAttr("approximate", "none") == "none" ? "gelu" : "gelu_tanh";
}

// act(gate) * up, with up of act's shape (no broadcasting: the MLP's two projections).
void fuseGated(Graph& graph, std::map<std::string, int64_t>& counts) {
  std::vector<Op*> activations;
  for (const auto& op : graph.ops())
    if (op->opName() == "silu" || op->opName() == "gelu") activations.push_back(op.get());
  for (Op* act : activations) {
    Value* activated = act->result();
    if (isGraphOutput(graph, activated)) continue;
    auto users = graph.users(activated);
    if (users.size() != 1 || users[0]->opName() != "Mul") continue;
    Op* mul = users[0];
    Value* up = otherOperand(*mul, activated);
    if (!up || up == activated || up->type != activated->type || mul->result()->type != activated->type) continue;
    std::string activation = activationOf(*act);
    Op* fused = addFusedOp(graph, "gated_act", {act->operand(0), up}, {{"activation", Attribute(activation)}}, {"gated_act"}, *mul);
    replaceValue(graph, mul->result(), fused->result());
    ++counts["gated_act(" + activation + ")"];
    --counts[activation];  // absorbed: the counts describe the ops that remain
  }
}

}  // namespace

std::map<std::string, int64_t> fuseActivations(Graph& graph) {
  std::map<std::string, int64_t> counts;
  fuseChains(graph, counts);
  fuseGeluOps(graph, counts);
  sortTopologically(graph);
  fuseGated(graph, counts);
  sortTopologically(graph);
  std::erase_if(counts, [](const auto& entry) { return entry.second == 0; });
  return counts;
}

}  // namespace pagedc
