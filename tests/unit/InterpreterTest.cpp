// The reference executor's handling of graph inputs: symbol binding and clear errors.
#include <gtest/gtest.h>

#include "ir/Error.h"
#include "ir/Interpreter.h"
#include "ir/TextFormat.h"

namespace pagedc {
namespace {

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const char* kGraph = R"(graph @g(%a: f32[batch, seq], %b: f32[batch, past + seq]) {
  %x = Identity(%a) : f32[batch, seq]
  return %x, %b
})";

TEST(Interpreter, BindsSymbolsAcrossInputs) {
  auto graph = parseGraph(kGraph);
  Interpreter interpreter(*graph);
  std::map<std::string, Tensor> inputs;
  inputs["a"] = Tensor::zeros(DType::F32, {2, 3});
  inputs["b"] = Tensor::zeros(DType::F32, {2, 5});
  auto out = interpreter.run(inputs);
  EXPECT_EQ(out.at("x").shape(), (std::vector<int64_t>{2, 3}));

  inputs["b"] = Tensor::zeros(DType::F32, {3, 5});
  EXPECT_NE(errorOf([&] { interpreter.run(inputs); }).find("graph input 'b': dimension 0 is 3 but 'batch' is already 2"), std::string::npos);
  inputs["b"] = Tensor::zeros(DType::F32, {2, 5, 1});
  EXPECT_NE(errorOf([&] { interpreter.run(inputs); }).find("graph input 'b': rank 3"), std::string::npos);
  inputs.erase("b");
  EXPECT_NE(errorOf([&] { interpreter.run(inputs); }).find("missing graph input 'b'"), std::string::npos);
  inputs["b"] = Tensor::zeros(DType::I64, {2, 5});
  EXPECT_NE(errorOf([&] { interpreter.run(inputs); }).find("element type i64"), std::string::npos);
}

TEST(Interpreter, ChecksCompoundDimsOnceBound) {
  auto graph = parseGraph(R"(graph @g(%a: f32[n], %b: f32[m], %c: f32[n + m]) {
  return %c
})");
  Interpreter interpreter(*graph);
  std::map<std::string, Tensor> inputs;
  inputs["a"] = Tensor::zeros(DType::F32, {2});
  inputs["b"] = Tensor::zeros(DType::F32, {3});
  inputs["c"] = Tensor::zeros(DType::F32, {4});
  EXPECT_NE(errorOf([&] { interpreter.run(inputs); }).find("dimension 0 is 4 but the graph declares m + n = 5"), std::string::npos);
}

TEST(Interpreter, WeightsNeedData) {
  auto graph = parseGraph(R"(graph @g() {
  %w = weight() {name = "w"} : f32[2]
  return %w
})");
  EXPECT_NE(errorOf([&] { Interpreter interpreter(*graph); }).find("weight 'w' has no data"), std::string::npos);
  graph->weights->add("w", Tensor::fromValues<uint16_t>(DType::F16, {2}, {0x3c00, 0x4000}));
  EXPECT_NE(errorOf([&] { Interpreter interpreter(*graph); }).find("declared f32[2] but its data is f16"), std::string::npos);
}

}  // namespace
}  // namespace pagedc
