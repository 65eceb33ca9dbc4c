// Small helpers for op tests: parse + infer a graph from text, make tensors, run the reference, catch errors.
#pragma once

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

// The value's known integer contents as "[a, b]", or "none".
inline std::string knownIntsOf(const Graph& graph, std::string_view value) {
  const Value* v = graph.findValue(value);
  if (!v || !v->knownInts) return "none";
  return shapeStr(*v->knownInts);
}

inline Tensor f32(std::vector<int64_t> shape, const std::vector<float>& values) {
  return Tensor::fromValues(DType::F32, std::move(shape), values);
}
inline Tensor i64(std::vector<int64_t> shape, const std::vector<int64_t>& values) {
  return Tensor::fromValues(DType::I64, std::move(shape), values);
}
inline Tensor boolean(std::vector<int64_t> shape, const std::vector<uint8_t>& values) {
  return Tensor::fromValues(DType::Bool, std::move(shape), values);
}

inline std::vector<float> floatsOf(const Tensor& t) {
  Tensor c = t.convertTo(DType::F32);
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numElements());
}
inline std::vector<int64_t> intsOf(const Tensor& t) { return t.toInt64Vector(); }

// Parses, infers and runs a graph on the reference interpreter.
inline std::map<std::string, Tensor> runGraph(std::string_view text, const std::map<std::string, Tensor>& inputs) {
  auto graph = inferred(text);
  Interpreter interpreter(*graph);
  return interpreter.run(inputs);
}

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
