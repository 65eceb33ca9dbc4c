// Graph construction and editing.
#include "ir/Graph.h"

#include <algorithm>

#include "ir/Error.h"
#include "ir/OpDef.h"

namespace pagedc {

const std::string& Op::opName() const { return def_->name; }

const Attribute* Op::attr(std::string_view key) const {
  auto it = attrs.find(std::string(key));
  return it == attrs.end() ? nullptr : &it->second;
}

int64_t Op::intAttr(std::string_view key, int64_t fallback) const {
  const Attribute* a = attr(key);
  if (!a) return fallback;
  if (a->kind() != AttrKind::Int) fail(describe(), ": attribute '", key, "' must be an int, got ", attrKindName(a->kind()));
  return a->asInt();
}

double Op::floatAttr(std::string_view key, double fallback) const {
  const Attribute* a = attr(key);
  if (!a) return fallback;
  if (a->kind() == AttrKind::Int) return static_cast<double>(a->asInt());
  if (a->kind() != AttrKind::Float) fail(describe(), ": attribute '", key, "' must be a float, got ", attrKindName(a->kind()));
  return a->asFloat();
}

std::string Op::stringAttr(std::string_view key, const std::string& fallback) const {
  const Attribute* a = attr(key);
  if (!a) return fallback;
  if (a->kind() != AttrKind::String) fail(describe(), ": attribute '", key, "' must be a string, got ", attrKindName(a->kind()));
  return a->asString();
}

std::vector<int64_t> Op::intsAttr(std::string_view key, const std::vector<int64_t>& fallback) const {
  const Attribute* a = attr(key);
  if (!a) return fallback;
  if (a->kind() != AttrKind::Ints) fail(describe(), ": attribute '", key, "' must be a list of ints, got ", attrKindName(a->kind()));
  return a->asInts();
}

std::string Op::describe() const {
  std::string text = opName();
  if (!name.empty()) text += " '" + name + "'";
  if (!results.empty() && results[0]) text += " (result %" + results[0]->name + ")";
  return text;
}

Graph::Graph() : weights(std::make_shared<WeightStore>()) {}
Graph::~Graph() = default;

Value* Graph::newValue(const std::string& valueName, TensorType type) {
  auto value = std::make_unique<Value>();
  value->name = uniqueName(valueName.empty() ? "v" : valueName);
  usedNames_.insert(value->name);
  value->type = std::move(type);
  values_.push_back(std::move(value));
  return values_.back().get();
}

Value* Graph::addInput(const std::string& valueName, TensorType type) {
  if (usedNames_.count(valueName)) fail("duplicate graph input '", valueName, "'");
  Value* value = newValue(valueName, std::move(type));
  inputs.push_back(value);
  return value;
}

std::string Graph::uniqueName(std::string_view hint) {
  std::string base(hint);
  if (!usedNames_.count(base)) return base;
  for (size_t suffix = 1;; ++suffix) {
    std::string candidate = base + "_" + std::to_string(suffix);
    if (!usedNames_.count(candidate)) return candidate;
  }
}

void Graph::renameValue(Value* value, const std::string& newName) {
  if (value->name == newName) return;
  if (usedNames_.count(newName)) fail("cannot rename %", value->name, " to %", newName, ": the name is taken");
  usedNames_.erase(value->name);
  value->name = newName;
  usedNames_.insert(newName);
}

size_t Graph::removeUnusedInputs() {
  size_t before = inputs.size();
  std::erase_if(inputs, [&](Value* input) {
    return users(input).empty() && std::find(outputs.begin(), outputs.end(), input) == outputs.end();
  });
  return before - inputs.size();
}

Value* Graph::findValue(std::string_view valueName) const {
  for (const auto& value : values_)
    if (value->name == valueName) return value.get();
  return nullptr;
}

std::unique_ptr<Op> Graph::makeOp(std::string_view opName, std::vector<Value*> operands, AttrMap attrs,
                                  const std::vector<std::string>& resultNames, std::string nodeName) {
  const OpDef& def = OpRegistry::instance().get(opName);
  auto op = std::make_unique<Op>(def, std::move(nodeName));
  op->operands = std::move(operands);
  op->attrs = std::move(attrs);
  for (size_t i = 0; i < resultNames.size(); ++i) {
    Value* result = newValue(resultNames[i]);
    result->producer = op.get();
    result->resultIndex = static_cast<int>(i);
    op->results.push_back(result);
  }
  return op;
}

Op* Graph::appendOp(std::string_view opName, std::vector<Value*> operands, AttrMap attrs,
                    const std::vector<std::string>& resultNames, std::string nodeName) {
  ops_.push_back(makeOp(opName, std::move(operands), std::move(attrs), resultNames, std::move(nodeName)));
  return ops_.back().get();
}

Op* Graph::insertOp(size_t index, std::string_view opName, std::vector<Value*> operands, AttrMap attrs,
                    const std::vector<std::string>& resultNames, std::string nodeName) {
  auto op = makeOp(opName, std::move(operands), std::move(attrs), resultNames, std::move(nodeName));
  Op* raw = op.get();
  ops_.insert(ops_.begin() + static_cast<std::ptrdiff_t>(std::min(index, ops_.size())), std::move(op));
  return raw;
}

std::vector<Op*> Graph::users(const Value* value) const {
  std::vector<Op*> result;
  for (const auto& op : ops_)
    if (std::find(op->operands.begin(), op->operands.end(), value) != op->operands.end()) result.push_back(op.get());
  return result;
}

void Graph::replaceAllUsesWith(Value* from, Value* to) {
  for (auto& op : ops_)
    for (auto& operand : op->operands)
      if (operand == from) operand = to;
  for (auto& output : outputs)
    if (output == from) output = to;
}

}  // namespace pagedc
