// Reference execution of a graph.
#include "ir/Interpreter.h"

#include <unordered_map>

#include "ir/Error.h"
#include "ir/OpDef.h"

namespace pagedc {

DType canonicalDType(DType type) {
  if (isFloatingPoint(type)) return DType::F32;
  if (type == DType::Bool) return DType::Bool;
  return DType::I64;
}

Tensor toCanonical(const Tensor& tensor) { return tensor.convertTo(canonicalDType(tensor.dtype())); }

Interpreter::Interpreter(const Graph& graph) : graph_(graph) {
  for (const auto& op : graph.ops()) {
    if (op->opName() != "weight") continue;
    std::string name = op->stringAttr("name", "");
    const Tensor* data = graph.weights ? graph.weights->find(name) : nullptr;
    if (!data) fail(op->describe(), ": weight '", name, "' has no data in the weight store");
    const TensorType& declared = op->result(0)->type;
    if (declared.dtype != data->dtype())
      fail(op->describe(), ": weight '", name, "' is declared ", declared.str(), " but its data is ", dtypeName(data->dtype()));
    weights_[op->result(0)] = toCanonical(*data);
  }
}

namespace {
// Binds symbols from concrete sizes; single-symbol dims bind, compound ones are checked later.
void bindShape(const std::string& what, const Shape& declared, const std::vector<int64_t>& actual,
               std::map<std::string, int64_t>& bindings) {
  for (size_t i = 0; i < declared.size(); ++i) {
    const Dim& dim = declared[i];
    if (auto c = dim.constant()) {
      if (*c != actual[i]) fail(what, ": dimension ", i, " must be ", *c, ", got ", actual[i]);
    } else if (auto symbol = dim.singleSymbol()) {
      auto [it, inserted] = bindings.emplace(*symbol, actual[i]);
      if (!inserted && it->second != actual[i])
        fail(what, ": dimension ", i, " is ", actual[i], " but '", *symbol, "' is already ", it->second, " from another input");
    }
  }
}

void checkShape(const std::string& what, const Shape& declared, const std::vector<int64_t>& actual,
                const std::map<std::string, int64_t>& bindings) {
  if (declared.size() != actual.size())
    fail(what, ": rank ", actual.size(), " but the graph declares ", shapeStr(declared));
  for (size_t i = 0; i < declared.size(); ++i) {
    auto value = declared[i].substitute(bindings).constant();
    if (value && *value != actual[i])
      fail(what, ": dimension ", i, " is ", actual[i], " but the graph declares ", declared[i].str(), " = ", *value);
  }
}
}  // namespace

std::map<std::string, Tensor> Interpreter::run(const std::map<std::string, Tensor>& inputs) const {
  std::unordered_map<const Value*, Tensor> values;
  std::map<std::string, int64_t> bindings;
  for (const Value* input : graph_.inputs) {
    auto it = inputs.find(input->name);
    if (it == inputs.end()) fail("missing graph input '", input->name, "' (", input->type.str(), ")");
    const Tensor& tensor = it->second;
    std::string what = "graph input '" + input->name + "'";
    if (canonicalDType(tensor.dtype()) != canonicalDType(input->type.dtype))
      fail(what, ": element type ", dtypeName(tensor.dtype()), " but the graph declares ", input->type.str());
    if (input->type.shape) {
      if (input->type.rank() != tensor.rank())
        fail(what, ": rank ", tensor.rank(), " (shape ", tensor.shapeStr(), ") but the graph declares ", input->type.str());
      bindShape(what, *input->type.shape, tensor.shape(), bindings);
    }
    values[input] = toCanonical(tensor);
  }
  for (const auto& [name, tensor] : inputs) {
    bool known = false;
    for (const Value* input : graph_.inputs) known = known || input->name == name;
    if (!known) fail("'", name, "' is not an input of graph @", graph_.name);
  }
  for (const Value* input : graph_.inputs)
    if (input->type.shape) checkShape("graph input '" + input->name + "'", *input->type.shape, values[input].shape(), bindings);

  // Free each value after its last use so large graphs run in bounded memory.
  std::unordered_map<const Value*, size_t> lastUse;
  for (size_t i = 0; i < graph_.ops().size(); ++i)
    for (const Value* operand : graph_.ops()[i]->operands)
      if (operand) lastUse[operand] = i;
  for (const Value* output : graph_.outputs) lastUse[output] = graph_.ops().size();

  for (size_t index = 0; index < graph_.ops().size(); ++index) {
    const Op& op = *graph_.ops()[index];
    if (op.opName() == "weight") {
      values[op.result(0)] = weights_.at(op.result(0));
      continue;
    }
    std::vector<Tensor> operandValues;
    for (const Value* operand : op.operands) operandValues.push_back(operand ? values.at(operand) : Tensor());
    EvalContext ctx(op, std::move(operandValues));
    if (!op.def().evaluate) fail(op.describe(), ": op has no reference implementation");
    op.def().evaluate(ctx);
    for (size_t i = 0; i < op.results.size(); ++i) {
      Tensor& out = ctx.outputs()[i];
      if (out.isNull()) fail(op.describe(), ": reference implementation produced no result ", i);
      if (out.dtype() != canonicalDType(op.results[i]->type.dtype))
        fail(op.describe(), ": reference implementation produced ", dtypeName(out.dtype()), " for result ", i, " declared ", op.results[i]->type.str());
      if (checkResultTypes && op.results[i]->type.shape) {
        const Shape& declared = *op.results[i]->type.shape;
        std::string what = op.describe() + ": result " + std::to_string(i);
        checkShape(what, declared, out.shape(), bindings);
        // Bind symbols first met here (data-dependent sizes) so later uses stay consistent.
        bindShape(what, declared, out.shape(), bindings);
      }
      values[op.results[i]] = std::move(out);
    }
    for (const Value* operand : op.operands)
      if (operand && lastUse[operand] == index) values.erase(operand);
  }

  std::map<std::string, Tensor> outputs;
  for (const Value* output : graph_.outputs) {
    auto it = values.find(output);
    if (it == values.end()) fail("graph output '", output->name, "' was never computed");
    outputs[output->name] = it->second;
  }
  return outputs;
}

}  // namespace pagedc
