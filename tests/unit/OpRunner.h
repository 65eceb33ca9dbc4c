// Test helpers: run one op through type inference and the interpreter, infer types of IR text.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ir/Interpreter.h"
#include "ir/TextFormat.h"
#include "ir/TypeInference.h"

namespace pagedc::testing {

inline Tensor f32(std::vector<int64_t> shape, const std::vector<float>& values) {
  return Tensor::fromValues(DType::F32, std::move(shape), values);
}
inline Tensor i64(std::vector<int64_t> shape, const std::vector<int64_t>& values) {
  return Tensor::fromValues(DType::I64, std::move(shape), values);
}
inline Tensor i32(std::vector<int64_t> shape, const std::vector<int32_t>& values) {
  return Tensor::fromValues(DType::I32, std::move(shape), values);
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

inline std::vector<float> values(const Tensor& tensor) {
  return std::vector<float>(tensor.data<float>(), tensor.data<float>() + tensor.numElements());
}

inline void expectNear(const Tensor& actual, const std::vector<float>& expected, float tolerance = 1e-5f) {
  ASSERT_EQ(actual.numElements(), static_cast<int64_t>(expected.size())) << "shape " << actual.shapeStr();
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(actual.data<float>()[i], expected[i], tolerance) << "element " << i;
}

inline void expectTensorsNear(const Tensor& actual, const Tensor& expected, float tolerance = 1e-5f) {
  ASSERT_EQ(actual.shape(), expected.shape());
  expectNear(actual, values(expected), tolerance);
}

// Parses IR text, infers every type and returns the printed types of the named values.
inline std::vector<std::string> inferredTypes(const std::string& text, const std::vector<std::string>& names) {
  auto graph = parseGraph(text, "<test>");
  inferTypes(*graph);
  std::vector<std::string> types;
  for (const auto& name : names) {
    const Value* value = graph->findValue(name);
    types.push_back(value ? value->type.str() : "<no value " + name + ">");
  }
  return types;
}

}  // namespace pagedc::testing
