// Probe inputs for decoder graphs and evaluation of chosen intermediate values.
#include "passes/ProbeEvaluation.h"

#include <cmath>

#include "ir/Error.h"
#include "ir/Interpreter.h"

namespace pagedc {

namespace {
bool startsWith(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

std::string symbolOf(const Value* value, size_t axis) {
  if (!value->type.shape || value->type.rank() <= axis) return "";
  return value->type.dim(axis).singleSymbol().value_or("");
}
}  // namespace

DecoderInputs classifyDecoderInputs(const Graph& graph) {
  DecoderInputs roles;
  for (Value* input : graph.inputs) {
    const std::string& name = input->name;
    if (name == "input_ids") roles.inputIds = input;
    else if (name == "attention_mask") roles.attentionMask = input;
    else if (name == "position_ids") roles.positionIds = input;
    else if ((startsWith(name, "past_key_values") || startsWith(name, "past_key") || startsWith(name, "past_value")) &&
             isFloatingPoint(input->type.dtype) && input->type.hasRank() && input->type.rank() == 4)
      roles.pastKeyValues.push_back(input);
    else
      fail("graph input '", name, "' (", input->type.str(), ") has no known role: a decoder graph takes input_ids, attention_mask, ",
           "position_ids and past key/value tensors [batch, kv_heads, past, head_dim]");
  }
  if (!roles.inputIds) fail("the graph has no 'input_ids' input");
  if (!roles.inputIds->type.hasRank() || roles.inputIds->type.rank() != 2)
    fail("graph input 'input_ids' must be [batch, sequence], got ", roles.inputIds->type.str());
  roles.batchSymbol = symbolOf(roles.inputIds, 0);
  roles.seqSymbol = symbolOf(roles.inputIds, 1);
  if (roles.seqSymbol.empty()) fail("graph input 'input_ids' must have a symbolic sequence length, got ", roles.inputIds->type.str());
  for (const Value* past : roles.pastKeyValues) {
    std::string symbol = symbolOf(past, 2);
    if (symbol.empty() || (!roles.pastSymbol.empty() && symbol != roles.pastSymbol))
      fail("past input '", past->name, "' must have the same symbolic past length as the others, got ", past->type.str());
    roles.pastSymbol = symbol;
  }
  return roles;
}

std::map<const Value*, Tensor> evaluateOnProbe(Graph& graph, const DecoderInputs& roles, const std::vector<Value*>& values,
                                               const ProbeShape& shape) {
  const int64_t past = roles.pastKeyValues.empty() ? 0 : shape.past;
  std::map<std::string, int64_t> bindings;
  if (!roles.batchSymbol.empty()) bindings[roles.batchSymbol] = 1;
  bindings[roles.seqSymbol] = shape.seq;
  if (!roles.pastSymbol.empty()) bindings[roles.pastSymbol] = past;

  auto concreteShape = [&](const Value* input, int64_t fallbackTotal) {
    std::vector<int64_t> dims;
    for (size_t axis = 0; axis < input->type.rank(); ++axis) {
      auto value = input->type.dim(axis).substitute(bindings).constant();
      if (!value) {
        // The mask's length is past + seq however the exporter named it.
        auto symbol = input->type.dim(axis).singleSymbol();
        if (!symbol || fallbackTotal < 0) fail("cannot choose a probe size for dimension ", axis, " of input '", input->name, "' (", input->type.str(), ")");
        bindings[*symbol] = fallbackTotal;
        value = fallbackTotal;
      }
      dims.push_back(*value);
    }
    return dims;
  };

  std::map<std::string, Tensor> inputs;
  std::vector<int64_t> ids(static_cast<size_t>(shape.seq));
  for (int64_t i = 0; i < shape.seq; ++i) ids[static_cast<size_t>(i)] = 1 + i;  // small ids exist in every vocabulary
  inputs[roles.inputIds->name] = Tensor::fromValues(DType::I64, {1, shape.seq}, ids).convertTo(roles.inputIds->type.dtype);
  if (roles.attentionMask) {
    auto dims = concreteShape(roles.attentionMask, past + shape.seq);
    inputs[roles.attentionMask->name] = Tensor::fromValues(DType::I64, dims, std::vector<int64_t>(static_cast<size_t>(dims[0] * dims[1]), 1))
                                            .convertTo(roles.attentionMask->type.dtype);
  }
  if (roles.positionIds) {
    std::vector<int64_t> positions(static_cast<size_t>(shape.seq));
    for (int64_t i = 0; i < shape.seq; ++i) positions[static_cast<size_t>(i)] = past + i;
    inputs[roles.positionIds->name] = Tensor::fromValues(DType::I64, {1, shape.seq}, positions).convertTo(roles.positionIds->type.dtype);
  }
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (const Value* pastInput : roles.pastKeyValues) {
    auto dims = concreteShape(pastInput, -1);
    Tensor tensor = Tensor::zeros(DType::F32, dims);
    float* data = tensor.mutableData<float>();
    for (int64_t i = 0; i < tensor.numElements(); ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      data[i] = static_cast<float>(static_cast<double>(state >> 40) / static_cast<double>(1ull << 24) * 2.0 - 1.0);
    }
    inputs[pastInput->name] = tensor.convertTo(pastInput->type.dtype);
  }

  // The interpreter returns graph outputs; make the wanted values the outputs for this one run.
  std::vector<Value*> savedOutputs = graph.outputs;
  graph.outputs = values;
  std::map<std::string, Tensor> results;
  try {
    Interpreter interpreter(graph);
    interpreter.checkResultTypes = false;  // probe sizes bind symbols the declared types never met
    results = interpreter.run(inputs);
  } catch (...) {
    graph.outputs = savedOutputs;
    throw;
  }
  graph.outputs = savedOutputs;
  std::map<const Value*, Tensor> byValue;
  for (Value* value : values) byValue[value] = results.at(value->name);
  return byValue;
}

}  // namespace pagedc
