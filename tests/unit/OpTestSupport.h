// Helpers for op tests: make tensors, parse + infer IR text, run one op or a graph on the interpreter, catch errors.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ir/Error.h"
#include "ir/Interpreter.h"
#include "ir/TextFormat.h"
#include "ir/TypeInference.h"

namespace pagedc::test {

// ---- Tensors ------------------------------------------------------------------------------------

inline Tensor f32(std::vector<int64_t> shape, const std::vector<float>& values) {
  return Tensor::fromValues(DType::F32, std::move(shape), values);
}
inline Tensor i64(std::vector<int64_t> shape, const std::vector<int64_t>& values) {
  return Tensor::fromValues(DType::I64, std::move(shape), values);
}
inline Tensor i32(std::vector<int64_t> shape, const std::vector<int32_t>& values) {
  return Tensor::fromValues(DType::I32, std::move(shape), values);
}
inline Tensor boolean(std::vector<int64_t> shape, const std::vector<uint8_t>& values) {
  return Tensor::fromValues(DType::Bool, std::move(shape), values);
}

inline std::vector<float> floatsOf(const Tensor& t) {
  Tensor c = t.convertTo(DType::F32);
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numElements());
}
inline std::vector<int64_t> intsOf(const Tensor& t) { return t.toInt64Vector(); }

// Compares an f32 tensor element by element.
inline void expectNear(const Tensor& actual, const std::vector<float>& expected, float tolerance = 1e-5f) {
  ASSERT_EQ(actual.numElements(), static_cast<int64_t>(expected.size())) << "shape " << actual.shapeStr();
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(actual.data<float>()[i], expected[i], tolerance) << "element " << i;
}

inline void expectTensorsNear(const Tensor& actual, const Tensor& expected, float tolerance = 1e-5f) {
  ASSERT_EQ(actual.shape(), expected.shape());
  expectNear(actual, floatsOf(expected), tolerance);
}

// ---- IR text ------------------------------------------------------------------------------------

// Parses IR text (result types may be declared as `f32[*]`) and runs every shape rule.
inline std::unique_ptr<Graph> inferred(std::string_view text) {
  auto graph = parseGraph(text);
  inferTypes(*graph);
  return graph;
}

inline std::string typeOf(const Graph& graph, std::string_view value) {
  const Value* v = graph.findValue(value);
  return v ? v->type.str() : "<no value %" + std::string(value) + ">";
}

// Parses IR text, infers every type and returns the printed types of the named values.
inline std::vector<std::string> inferredTypes(std::string_view text, const std::vector<std::string>& names) {
  auto graph = inferred(text);
  std::vector<std::string> types;
  for (const auto& name : names) types.push_back(typeOf(*graph, name));
  return types;
}

// The value's known integer contents as "[a, b]", or "none".
inline std::string knownIntsOf(const Graph& graph, std::string_view value) {
  const Value* v = graph.findValue(value);
  if (!v || !v->knownInts) return "none";
  return shapeStr(*v->knownInts);
}

// ---- Running ------------------------------------------------------------------------------------

// Parses, infers and runs a graph on the reference interpreter.
inline std::map<std::string, Tensor> runGraph(std::string_view text, const std::map<std::string, Tensor>& inputs) {
  auto graph = inferred(text);
  Interpreter interpreter(*graph);
  return interpreter.run(inputs);
}

// Builds a one-op graph whose inputs have the tensors' exact shapes (a null tensor is an omitted
// operand), infers its types and runs it; returns the results in canonical storage.
inline std::vector<Tensor> runOp(const std::string& opName, const std::vector<Tensor>& inputs, AttrMap attrs, size_t numResults = 1,
                                 bool checkResultTypes = true) {
  Graph graph;
  std::vector<Value*> operands;
  std::map<std::string, Tensor> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].isNull()) {
      operands.push_back(nullptr);
      continue;
    }
    Shape shape;
    for (int64_t d : inputs[i].shape()) shape.emplace_back(d);
    std::string name = "in" + std::to_string(i);
    operands.push_back(graph.addInput(name, TensorType(inputs[i].dtype(), shape)));
    feeds[name] = inputs[i];
  }
  std::vector<std::string> resultNames;
  for (size_t i = 0; i < numResults; ++i) resultNames.push_back("out" + std::to_string(i));
  Op* op = graph.appendOp(opName, operands, std::move(attrs), resultNames);
  inferTypes(graph);
  graph.outputs = op->results;
  Interpreter interpreter(graph);
  interpreter.checkResultTypes = checkResultTypes;
  auto results = interpreter.run(feeds);
  std::vector<Tensor> outputs;
  for (const Value* result : op->results) outputs.push_back(results.at(result->name));
  return outputs;
}

// ---- Errors -------------------------------------------------------------------------------------

// The message of the pagedc::Error `f` throws, or "" when it throws none.
inline std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace pagedc::test
