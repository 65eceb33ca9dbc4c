// Matching helpers shared by the fusion passes.
#include "passes/PatternMatch.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "ir/Error.h"
#include "ir/Interpreter.h"
#include "ir/OpDef.h"
#include "ir/TypeInference.h"

namespace pagedc {

Op* producerOf(const Value* value, std::string_view opName) {
  if (!value || !value->producer) return nullptr;
  if (!opName.empty() && value->producer->opName() != opName) return nullptr;
  return value->producer;
}

const Tensor* constantData(const Graph& graph, const Value* value) {
  while (Op* identity = producerOf(value, "Identity")) value = identity->operand(0);
  const Op* op = producerOf(value);
  if (!op) return nullptr;
  if (op->opName() == "Constant") {
    const Attribute* attr = op->attr("value");
    return attr && attr->kind() == AttrKind::Tensor ? &attr->asTensor() : nullptr;
  }
  if (op->opName() == "weight" && graph.weights) return graph.weights->find(op->stringAttr("name", ""));
  return nullptr;
}

std::optional<double> scalarConstant(const Graph& graph, const Value* value) {
  const Tensor* data = constantData(graph, value);
  if (!data || data->numElements() != 1 || data->dtype() == DType::Bool) return std::nullopt;
  return data->elementAsDouble(0);
}

bool isScalarConstant(const Graph& graph, const Value* value, double expected, double relTol) {
  auto scalar = scalarConstant(graph, value);
  return scalar && std::abs(*scalar - expected) <= relTol * std::max(1.0, std::abs(expected));
}

std::optional<std::vector<int64_t>> constantInts(const Graph& graph, const Value* value) {
  if (value->knownInts) {
    std::vector<int64_t> ints;
    for (const Dim& d : *value->knownInts) {
      auto c = d.constant();
      if (!c) return std::nullopt;
      ints.push_back(*c);
    }
    return ints;
  }
  const Tensor* data = constantData(graph, value);
  if (data && isInteger(data->dtype())) return data->toInt64Vector();
  return std::nullopt;
}

Value* otherOperand(const Op& op, const Value* known) {
  if (op.operands.size() != 2) return nullptr;
  if (op.operands[0] == known) return op.operands[1];
  if (op.operands[1] == known) return op.operands[0];
  return nullptr;
}

std::optional<std::pair<Value*, Value*>> matchEither(const Op& op, const std::function<bool(Value*)>& pred) {
  if (op.operands.size() != 2 || !op.operands[0] || !op.operands[1]) return std::nullopt;
  if (pred(op.operands[0])) return std::make_pair(op.operands[0], op.operands[1]);
  if (pred(op.operands[1])) return std::make_pair(op.operands[1], op.operands[0]);
  return std::nullopt;
}

Value* skipFloatCasts(Value* value) {
  while (Op* cast = producerOf(value, "Cast")) {
    Value* source = cast->operand(0);
    if (!isFloatingPoint(source->type.dtype) || !isFloatingPoint(value->type.dtype)) break;
    value = source;
  }
  return value;
}

Value* skipIdentityCasts(Value* value) {
  while (Op* cast = producerOf(value, "Cast")) {
    if (cast->operand(0)->type.dtype != value->type.dtype) break;
    value = cast->operand(0);
  }
  return value;
}

Op* addFusedOp(Graph& graph, std::string_view opName, std::vector<Value*> operands, AttrMap attrs,
               const std::vector<std::string>& resultHints, const Op& anchor) {
  std::vector<std::string> names;
  for (const auto& hint : resultHints) names.push_back(graph.uniqueName(hint));
  Op* op = graph.appendOp(opName, std::move(operands), std::move(attrs), names, anchor.name);
  inferOpTypes(graph, *op);
  return op;
}

void replaceValue(Graph& graph, Value* from, Value* to) {
  bool output = isGraphOutput(graph, from);
  graph.replaceAllUsesWith(from, to);
  if (!output || isGraphOutput(graph, to) == false) return;
  // `to` may already be an output under its own name (two outputs merged); keep that one.
  if (std::count(graph.outputs.begin(), graph.outputs.end(), to) > 1) return;
  std::string name = from->name;
  graph.renameValue(from, graph.uniqueName(name + ".unfused"));
  graph.renameValue(to, name);
}

bool isGraphOutput(const Graph& graph, const Value* value) {
  return std::find(graph.outputs.begin(), graph.outputs.end(), value) != graph.outputs.end();
}

bool onlyUsedBy(const Graph& graph, const Value* value, const std::vector<const Op*>& allowed) {
  if (isGraphOutput(graph, value)) return false;
  for (const Op* user : graph.users(value))
    if (std::find(allowed.begin(), allowed.end(), user) == allowed.end()) return false;
  return true;
}

namespace {

class ConeEvaluator {
public:
  ConeEvaluator(const Graph& graph, const std::map<const Value*, Tensor>& bound, const std::function<bool(const Op&)>& allowed)
      : graph_(graph), bound_(bound), allowed_(allowed) {}

  // Throws Error when the cone cannot be evaluated.
  const Tensor& value(const Value* v) {
    if (auto it = bound_.find(v); it != bound_.end()) return it->second;
    if (auto it = memo_.find(v); it != memo_.end()) return it->second;
    if (const Tensor* data = constantData(graph_, v)) return memo_[v] = toCanonical(*data);
    const Op* op = v->producer;
    if (!op) fail("unbound leaf %", v->name);
    if (allowed_ && !allowed_(*op)) fail(op->describe(), " is not allowed in this cone");
    if (!op->def().evaluate) fail(op->describe(), " has no reference kernel");
    std::vector<Tensor> inputs;
    for (const Value* operand : op->operands) inputs.push_back(operand ? value(operand) : Tensor());
    EvalContext ctx(*op, std::move(inputs));
    op->def().evaluate(ctx);
    for (size_t i = 0; i < op->results.size(); ++i) memo_[op->results[i]] = ctx.outputs()[i];
    return memo_.at(v);
  }

private:
  const Graph& graph_;
  const std::map<const Value*, Tensor>& bound_;
  const std::function<bool(const Op&)>& allowed_;
  std::unordered_map<const Value*, Tensor> memo_;
};

}  // namespace

std::optional<Tensor> evaluateCone(const Graph& graph, const Value* output, const std::map<const Value*, Tensor>& bound,
                                   const std::function<bool(const Op&)>& allowed) {
  try {
    ConeEvaluator evaluator(graph, bound, allowed);
    return evaluator.value(output);
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::vector<Value*> coneLeaves(const Graph& graph, Value* output, const std::function<bool(const Op&)>& expand) {
  std::vector<Value*> leaves;
  std::unordered_set<const Value*> seen;
  std::vector<Value*> stack{output};
  while (!stack.empty()) {
    Value* v = stack.back();
    stack.pop_back();
    if (!v || !seen.insert(v).second || constantData(graph, v)) continue;
    if (v->producer && expand(*v->producer)) {
      for (Value* operand : v->producer->operands) stack.push_back(operand);
      continue;
    }
    leaves.push_back(v);
  }
  return leaves;
}

void sortTopologically(Graph& graph) {
  auto& ops = graph.mutableOps();
  std::unordered_map<const Op*, size_t> index;
  for (size_t i = 0; i < ops.size(); ++i) index[ops[i].get()] = i;
  std::vector<char> state(ops.size(), 0);  // 0 unvisited, 1 on the stack, 2 emitted
  std::vector<size_t> order;
  order.reserve(ops.size());
  for (size_t root = 0; root < ops.size(); ++root) {
    if (state[root]) continue;
    // Iterative DFS: (op, next operand to look at).
    std::vector<std::pair<size_t, size_t>> stack{{root, 0}};
    state[root] = 1;
    while (!stack.empty()) {
      auto& [current, next] = stack.back();
      const Op& op = *ops[current];
      if (next < op.operands.size()) {
        const Value* operand = op.operands[next++];
        if (!operand || !operand->producer) continue;
        auto it = index.find(operand->producer);
        if (it == index.end()) continue;
        if (state[it->second] == 1) fail("sortTopologically: cycle through ", ops[it->second]->describe());
        if (state[it->second] == 0) {
          state[it->second] = 1;
          stack.emplace_back(it->second, 0);
        }
        continue;
      }
      state[current] = 2;
      order.push_back(current);
      stack.pop_back();
    }
  }
  std::vector<std::unique_ptr<Op>> sorted;
  sorted.reserve(ops.size());
  for (size_t i : order) sorted.push_back(std::move(ops[i]));
  ops = std::move(sorted);
}

}  // namespace pagedc
