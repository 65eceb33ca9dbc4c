// ONNX initializers in every element type and storage field, and external data, through importOnnx.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include "OnnxTestModels.h"
#include "frontend/OnnxImporter.h"
#include "frontend/OnnxTensor.h"
#include "ir/Error.h"
#include "ir/Graph.h"
#include "ir/TextFormat.h"

namespace pagedc {
namespace {

using ::testing::HasSubstr;
using onnx::TensorProto;
using testing::TempDir;

// One initializer `c` returned through Identity: the data under test reaches the IR untouched.
onnx::ModelProto passThrough(TensorProto** initializer, int32_t dataType, const std::vector<int64_t>& dims) {
  onnx::ModelProto model = testing::makeModel();
  *initializer = testing::addInitializer(model, "c", dataType, dims);
  testing::addNode(model, "Identity", {"c"}, {"y"});
  testing::addOutput(model, "y");
  return model;
}

const Tensor& importedConstant(const Graph& graph) {
  const Op* producer = graph.outputs.at(0)->producer;
  const Op* constant = producer->operand(0)->producer;
  EXPECT_EQ(constant->opName(), "Constant");
  return constant->attr("value")->asTensor();
}

std::vector<double> elements(const Tensor& tensor) {
  std::vector<double> result;
  for (int64_t i = 0; i < tensor.numElements(); ++i) result.push_back(tensor.elementAsDouble(i));
  return result;
}

struct DTypeCase {
  int32_t onnxType;
  DType dtype;
  std::string raw;                 // three little-endian elements: 1, 2, and the third below
  double third;
};

std::vector<DTypeCase> dtypeCases() {
  return {
      {TensorProto::FLOAT, DType::F32, testing::bytesOf<float>({1, 2, -0.5f}), -0.5},
      {TensorProto::FLOAT16, DType::F16, testing::bytesOf<uint16_t>({0x3C00, 0x4000, 0xB800}), -0.5},
      {TensorProto::BFLOAT16, DType::BF16, testing::bytesOf<uint16_t>({0x3F80, 0x4000, 0xBF00}), -0.5},
      {TensorProto::DOUBLE, DType::F64, testing::bytesOf<double>({1, 2, -0.5}), -0.5},
      {TensorProto::INT64, DType::I64, testing::bytesOf<int64_t>({1, 2, -7}), -7},
      {TensorProto::INT32, DType::I32, testing::bytesOf<int32_t>({1, 2, -7}), -7},
      {TensorProto::INT16, DType::I16, testing::bytesOf<int16_t>({1, 2, -7}), -7},
      {TensorProto::INT8, DType::I8, testing::bytesOf<int8_t>({1, 2, -7}), -7},
      {TensorProto::UINT8, DType::U8, testing::bytesOf<uint8_t>({1, 2, 250}), 250},
      {TensorProto::UINT16, DType::U16, testing::bytesOf<uint16_t>({1, 2, 65000}), 65000},
      {TensorProto::UINT32, DType::U32, testing::bytesOf<uint32_t>({1, 2, 4000000000u}), 4000000000.0},
      {TensorProto::UINT64, DType::U64, testing::bytesOf<uint64_t>({1, 2, 5000000000ull}), 5000000000.0},
      {TensorProto::BOOL, DType::Bool, testing::bytesOf<uint8_t>({1, 1, 0}), 0},
  };
}

TEST(OnnxTensor, EveryDTypeFromRawData) {
  for (const DTypeCase& c : dtypeCases()) {
    SCOPED_TRACE(dtypeName(c.dtype));
    TempDir dir;
    TensorProto* initializer = nullptr;
    onnx::ModelProto model = passThrough(&initializer, c.onnxType, {3});
    initializer->set_raw_data(c.raw);
    auto graph = importOnnx(dir.write(model));
    const Tensor& tensor = importedConstant(*graph);
    EXPECT_EQ(tensor.dtype(), c.dtype);
    EXPECT_EQ(tensor.shape(), std::vector<int64_t>{3});
    double second = c.dtype == DType::Bool ? 1 : 2;
    EXPECT_EQ(elements(tensor), (std::vector<double>{1, second, c.third}));
    EXPECT_EQ(graph->outputs[0]->type.dtype, c.dtype);
  }
}

TEST(OnnxTensor, EveryDTypeFromTypedFields) {
  for (const DTypeCase& c : dtypeCases()) {
    SCOPED_TRACE(dtypeName(c.dtype));
    TempDir dir;
    TensorProto* t = nullptr;
    onnx::ModelProto model = passThrough(&t, c.onnxType, {3});
    switch (c.dtype) {
      case DType::F32: for (float v : {1.0f, 2.0f, -0.5f}) t->add_float_data(v); break;
      case DType::F64: for (double v : {1.0, 2.0, -0.5}) t->add_double_data(v); break;
      case DType::I64: for (int64_t v : {1, 2, -7}) t->add_int64_data(v); break;
      case DType::U32: for (uint64_t v : {1ull, 2ull, 4000000000ull}) t->add_uint64_data(v); break;
      case DType::U64: for (uint64_t v : {1ull, 2ull, 5000000000ull}) t->add_uint64_data(v); break;
      // int32_data carries the bit patterns of half floats and the values of narrow integers.
      case DType::F16: for (int32_t v : {0x3C00, 0x4000, 0xB800}) t->add_int32_data(v); break;
      case DType::BF16: for (int32_t v : {0x3F80, 0x4000, 0xBF00}) t->add_int32_data(v); break;
      case DType::U8: for (int32_t v : {1, 2, 250}) t->add_int32_data(v); break;
      case DType::U16: for (int32_t v : {1, 2, 65000}) t->add_int32_data(v); break;
      case DType::Bool: for (int32_t v : {1, 1, 0}) t->add_int32_data(v); break;
      default: for (int32_t v : {1, 2, -7}) t->add_int32_data(v); break;
    }
    auto graph = importOnnx(dir.write(model));
    const Tensor& tensor = importedConstant(*graph);
    EXPECT_EQ(tensor.dtype(), c.dtype);
    double second = c.dtype == DType::Bool ? 1 : 2;
    EXPECT_EQ(elements(tensor), (std::vector<double>{1, second, c.third}));
  }
}

TEST(OnnxTensor, ScalarAndEmptyTensors) {
  TempDir dir;
  TensorProto* t = nullptr;
  onnx::ModelProto model = passThrough(&t, TensorProto::INT64, {});
  t->add_int64_data(42);
  auto graph = importOnnx(dir.write(model));
  EXPECT_EQ(importedConstant(*graph).rank(), 0u);
  EXPECT_EQ(importedConstant(*graph).elementAsInt(0), 42);
  EXPECT_EQ(graph->outputs[0]->type.str(), "i64[]");

  model = passThrough(&t, TensorProto::FLOAT, {0, 4});
  graph = importOnnx(dir.write(model));
  EXPECT_EQ(graph->outputs[0]->type.str(), "f32[0, 4]");
}

TEST(OnnxTensor, WrongElementCountsAreErrors) {
  TempDir dir;
  TensorProto* t = nullptr;
  onnx::ModelProto model = passThrough(&t, TensorProto::FLOAT, {2, 2});
  t->set_raw_data(testing::bytesOf<float>({1, 2, 3}));
  std::string path = dir.write(model);
  try {
    importOnnx(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
    EXPECT_THAT(e.what(), HasSubstr("tensor 'c': raw_data has 12 bytes but f32[2, 2] needs 16"));
  }
  model = passThrough(&t, TensorProto::INT64, {2});
  t->add_int64_data(1);
  EXPECT_THAT([&] { importOnnx(dir.write(model)); }, ::testing::ThrowsMessage<Error>(HasSubstr("int64_data holds 1 values")));
}

TEST(OnnxTensor, UnsupportedElementTypeIsNamed) {
  TempDir dir;
  TensorProto* t = nullptr;
  onnx::ModelProto model = passThrough(&t, TensorProto::STRING, {1});
  t->add_string_data("hello");
  EXPECT_THAT([&] { importOnnx(dir.write(model)); },
              ::testing::ThrowsMessage<Error>(HasSubstr("tensor 'c': element type STRING is not supported")));
  model = passThrough(&t, 17, {1});
  EXPECT_THAT([&] { importOnnx(dir.write(model)); },
              ::testing::ThrowsMessage<Error>(HasSubstr("element type FLOAT8E4M3FN is not supported")));
}

TEST(OnnxTensor, LargeInitializersBecomeWeights) {
  TempDir dir;
  TensorProto* t = nullptr;
  onnx::ModelProto model = passThrough(&t, TensorProto::FLOAT, {10, 10});
  std::vector<float> values(100);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i);
  t->set_raw_data(testing::bytesOf(values));
  auto graph = importOnnx(dir.write(model));
  const Op* weight = graph->outputs[0]->producer->operand(0)->producer;
  EXPECT_EQ(weight->opName(), "weight");
  EXPECT_EQ(weight->stringAttr("name", ""), "c");
  EXPECT_EQ(weight->result()->type.str(), "f32[10, 10]");
  const Tensor* stored = graph->weights->find("c");
  ASSERT_NE(stored, nullptr);
  EXPECT_EQ(stored->elementAsDouble(99), 99.0);

  // The same model with a higher inline limit keeps the tensor inline.
  OnnxImportOptions options;
  options.maxInlineElements = 100;
  graph = importOnnx(dir.write(model), options);
  EXPECT_EQ(graph->weights->size(), 0u);
  EXPECT_EQ(importedConstant(*graph).elementAsDouble(42), 42.0);
}

// External data: two tensors in one file (mapped once), one in a subdirectory.
class OnnxExternalData : public ::testing::Test {
protected:
  void SetUp() override {
    model = testing::makeModel();
    a = testing::addInitializer(model, "a", TensorProto::FLOAT, {4, 32});
    b = testing::addInitializer(model, "b", TensorProto::INT64, {2});
    testing::addNode(model, "Identity", {"a"}, {"ya"});
    testing::addNode(model, "Identity", {"b"}, {"yb"});
    testing::addOutput(model, "ya");
    testing::addOutput(model, "yb");
    std::vector<float> aValues(128);
    for (size_t i = 0; i < aValues.size(); ++i) aValues[i] = static_cast<float>(i) * 0.5f;
    // a at offset 16, b at offset 16 + 512 = 528.
    std::string data(16, '\0');
    data += testing::bytesOf(aValues);
    data += testing::bytesOf<int64_t>({7, -3});
    dir.writeBytes("model.onnx.data", data);
    external(a, "model.onnx.data", "16", "512");
    external(b, "model.onnx.data", "528", "16");
  }
  static void external(TensorProto* t, const std::string& location, const std::string& offset, const std::string& length) {
    t->clear_external_data();
    t->set_data_location(TensorProto::EXTERNAL);
    auto add = [&](const std::string& key, const std::string& value) {
      if (value.empty()) return;
      auto* entry = t->add_external_data();
      entry->set_key(key);
      entry->set_value(value);
    };
    add("location", location);
    add("offset", offset);
    add("length", length);
  }
  std::string importError() {
    std::string path = dir.write(model);
    try {
      importOnnx(path);
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(path));
      return e.what();
    }
    ADD_FAILURE() << "expected an error";
    return "";
  }

  TempDir dir;
  onnx::ModelProto model;
  TensorProto* a = nullptr;
  TensorProto* b = nullptr;
};

TEST_F(OnnxExternalData, TensorsViewTheDataFile) {
  auto graph = importOnnx(dir.write(model));
  const Tensor* weight = graph->weights->find("a");
  ASSERT_NE(weight, nullptr);
  EXPECT_EQ(weight->elementAsDouble(0), 0.0);
  EXPECT_EQ(weight->elementAsDouble(127), 63.5);
  const Op* constant = graph->outputs[1]->producer->operand(0)->producer;
  EXPECT_EQ(constant->attr("value")->asTensor().toInt64Vector(), (std::vector<int64_t>{7, -3}));
}

TEST_F(OnnxExternalData, LocationInSubdirectoryAndNoLength) {
  std::string data(512, '\0');
  dir.writeBytes("weights/part0.bin", data);
  external(a, "weights/part0.bin", "", "");
  auto graph = importOnnx(dir.write(model));
  EXPECT_EQ(graph->weights->find("a")->elementAsDouble(5), 0.0);
}

TEST_F(OnnxExternalData, MisalignedOffsetIsCopiedOnce) {
  std::string data(3, '\0');
  std::vector<float> values(128, 1.5f);
  data += testing::bytesOf(values);
  dir.writeBytes("odd.bin", data);
  external(a, "odd.bin", "3", "512");
  auto graph = importOnnx(dir.write(model));
  EXPECT_EQ(graph->weights->find("a")->elementAsDouble(127), 1.5);
}

TEST_F(OnnxExternalData, MissingFile) {
  external(a, "nowhere.bin", "0", "512");
  EXPECT_THAT(importError(), HasSubstr("tensor 'a': external data: "));
  EXPECT_THAT(importError(), HasSubstr("nowhere.bin: cannot open"));
}

TEST_F(OnnxExternalData, OffsetPastTheEnd) {
  external(a, "model.onnx.data", "100", "512");
  EXPECT_THAT(importError(), HasSubstr("tensor 'a': external data offset 100 + length 512 is past the end of 'model.onnx.data' (544 bytes)"));
  external(a, "model.onnx.data", "100000", "");
  EXPECT_THAT(importError(), HasSubstr("offset 100000 + length 512 is past the end"));
}

TEST_F(OnnxExternalData, LengthMismatch) {
  external(a, "model.onnx.data", "16", "500");
  EXPECT_THAT(importError(), HasSubstr("tensor 'a': external data in 'model.onnx.data' has length 500 but the tensor (f32[4, 32]) needs 512 bytes"));
  external(a, "model.onnx.data", "16", "abc");
  EXPECT_THAT(importError(), HasSubstr("length 'abc' is not a non-negative integer"));
}

TEST_F(OnnxExternalData, PathsMustStayInTheModelDirectory) {
  external(a, "/etc/passwd", "0", "512");
  EXPECT_THAT(importError(), HasSubstr("tensor 'a': external data location '/etc/passwd' is absolute"));
  external(a, "../model.onnx.data", "16", "512");
  EXPECT_THAT(importError(), HasSubstr("location '../model.onnx.data' escapes the model's directory"));
  external(a, "weights/../../x.bin", "16", "512");
  EXPECT_THAT(importError(), HasSubstr("escapes the model's directory"));
  external(a, "", "16", "512");
  EXPECT_THAT(importError(), HasSubstr("tensor 'a': external data has no location"));
}

}  // namespace
}  // namespace pagedc
