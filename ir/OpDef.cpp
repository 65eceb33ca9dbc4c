// Shape-rule and evaluation contexts, the op registry, and helpers shared by shape rules.
#include "ir/OpDef.h"

#include "ir/Error.h"
#include "ir/ops/OpRegistration.h"

namespace pagedc {

const TensorType& InferContext::operandType(size_t i) const {
  if (!op_.hasOperand(i)) error("operand ", i, " is missing");
  return op_.operands[i]->type;
}

size_t InferContext::operandRank(size_t i) const {
  const TensorType& type = operandType(i);
  if (!type.hasRank()) error("operand ", i, " (%", op_.operands[i]->name, ") has unknown rank");
  return type.rank();
}

const Tensor* InferContext::constantOperand(size_t i) const {
  if (!op_.hasOperand(i)) return nullptr;
  const Op* producer = op_.operands[i]->producer;
  if (!producer) return nullptr;
  if (producer->opName() == "Constant") {
    const Attribute* value = producer->attr("value");
    return value && value->kind() == AttrKind::Tensor ? &value->asTensor() : nullptr;
  }
  if (producer->opName() == "weight" && graph_.weights) return graph_.weights->find(producer->stringAttr("name", ""));
  return nullptr;
}

std::optional<std::vector<Dim>> InferContext::operandInts(size_t i) const {
  if (!op_.hasOperand(i)) return std::nullopt;
  const Value* value = op_.operands[i];
  if (value->knownInts) return value->knownInts;
  const Tensor* data = constantOperand(i);
  if (!data || !isInteger(data->dtype()) || data->rank() > 1 || data->numElements() > 64) return std::nullopt;
  std::vector<Dim> dims;
  for (int64_t v : data->toInt64Vector()) dims.emplace_back(v);
  return dims;
}

std::optional<std::vector<int64_t>> InferContext::operandConstInts(size_t i) const {
  if (!op_.hasOperand(i)) return std::nullopt;
  auto known = operandInts(i);
  if (known) {
    std::vector<int64_t> values;
    for (const Dim& d : *known) {
      auto c = d.constant();
      if (!c) return std::nullopt;
      values.push_back(*c);
    }
    return values;
  }
  const Tensor* data = constantOperand(i);
  if (data && isInteger(data->dtype())) return data->toInt64Vector();
  return std::nullopt;
}

int& InferContext::freshCounter() {
  static thread_local int counter = 0;
  return counter;
}

Dim InferContext::unknownDim() { return Dim::symbol("_u" + std::to_string(freshCounter()++)); }

Shape InferContext::unknownShape(size_t rank) {
  Shape shape;
  for (size_t i = 0; i < rank; ++i) shape.push_back(unknownDim());
  return shape;
}

void InferContext::setResult(size_t i, TensorType type, std::optional<std::vector<Dim>> knownInts) {
  if (i >= op_.results.size()) error("shape rule sets result ", i, " but the op has ", op_.results.size());
  op_.results[i]->type = std::move(type);
  op_.results[i]->knownInts = std::move(knownInts);
}

const Tensor& EvalContext::input(size_t i) const {
  if (!hasInput(i)) error("input ", i, " is missing");
  return inputs_[i];
}

void EvalContext::setOutput(size_t i, Tensor tensor) {
  if (i >= outputs_.size()) error("sets output ", i, " but the op has ", outputs_.size());
  outputs_[i] = std::move(tensor);
}

OpRegistry::OpRegistry() { registerAllOps(*this); }

const OpRegistry& OpRegistry::instance() {
  static const OpRegistry registry;
  return registry;
}

void OpRegistry::add(OpDef def) {
  if (find(def.name)) fail("op '", def.name, "' declared twice");
  defs_.push_back(std::make_unique<OpDef>(std::move(def)));
}

const OpDef* OpRegistry::find(std::string_view name) const {
  for (const auto& def : defs_)
    if (def->name == name) return def.get();
  return nullptr;
}

const OpDef& OpRegistry::get(std::string_view name) const {
  const OpDef* def = find(name);
  if (!def) fail("unknown op '", name, "'");
  return *def;
}

std::vector<const OpDef*> OpRegistry::all() const {
  std::vector<const OpDef*> result;
  for (const auto& def : defs_) result.push_back(def.get());
  return result;
}

std::optional<Shape> broadcastShapes(const std::optional<Shape>& a, const std::optional<Shape>& b, InferContext& ctx) {
  if (!a || !b) return std::nullopt;
  size_t rank = std::max(a->size(), b->size());
  Shape result(rank);
  for (size_t i = 0; i < rank; ++i) {
    const Dim* da = i + a->size() >= rank ? &(*a)[i + a->size() - rank] : nullptr;
    const Dim* db = i + b->size() >= rank ? &(*b)[i + b->size() - rank] : nullptr;
    if (!da) { result[i] = *db; continue; }
    if (!db) { result[i] = *da; continue; }
    if (*da == *db || db->constant() == 1) { result[i] = *da; continue; }
    if (da->constant() == 1) { result[i] = *db; continue; }
    if (da->isConstant() && db->isConstant())
      ctx.error("cannot broadcast ", shapeStr(*a), " with ", shapeStr(*b), " (dimension ", i, ": ", da->str(), " vs ", db->str(), ")");
    // Two different symbolic sizes: valid only if equal at run time, or one is 1. Prefer the
    // non-fresh one; the interpreter checks the real sizes.
    result[i] = da->isConstant() ? *da : (db->isConstant() ? *db : *da);
  }
  return result;
}

int64_t normalizeAxis(int64_t axis, int64_t rank, const Op& op, std::string_view what) {
  if (axis < -rank || axis >= rank) fail(op.describe(), ": ", what, " ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

}  // namespace pagedc
