// The ONNX importer on small models built in code: inputs, nodes, errors, opset upgrades, functions.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "OnnxTestModels.h"
#include "frontend/OnnxImporter.h"
#include "ir/Error.h"
#include "ir/Graph.h"
#include "ir/OpDef.h"
#include "ir/TextFormat.h"

namespace pagedc {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using onnx::TensorProto;
using testing::TempDir;

std::string importError(const std::string& path, const OnnxImportOptions& options = {}) {
  try {
    importOnnx(path, options);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error importing " << path;
  return "";
}

std::vector<std::string> opNames(const Graph& graph) {
  std::vector<std::string> names;
  for (const auto& op : graph.ops()) names.push_back(op->opName());
  return names;
}

const Op* producerOf(const Graph& graph, const std::string& name) {
  for (const auto& op : graph.ops())
    for (const Value* result : op->results)
      if (result->name == name) return op.get();
  return nullptr;
}

#define REQUIRE_OPS(...)                                                                         \
  for (const char* required : {__VA_ARGS__})                                                     \
    if (!OpRegistry::instance().find(required)) GTEST_SKIP() << "op " << required << " is not registered yet"

TEST(OnnxImporter, InputsOutputsAndSymbolicDims) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel(17, "torch-jit export");
  testing::addInput(model, "input_ids", TensorProto::INT64, {std::string("batch_size"), std::string("sequence_length")});
  testing::addInput(model, "past", TensorProto::FLOAT16,
                    {std::string("batch_size"), int64_t{4}, std::string("past_sequence_length + 1"), int64_t{16}});
  testing::addInput(model, "odd", TensorProto::FLOAT, {std::string("seq.len"), int64_t{-1}, std::string("3d")});
  testing::addNode(model, "Identity", {"input_ids"}, {"ids_out"});
  testing::addNode(model, "Identity", {"past"}, {"present"});
  testing::addNode(model, "Identity", {"odd"}, {"odd_out"});
  testing::addOutput(model, "ids_out");
  testing::addOutput(model, "present");
  testing::addOutput(model, "odd_out");
  auto graph = importOnnx(dir.write(model));
  EXPECT_EQ(graph->name, "torch_jit_export");
  ASSERT_EQ(graph->inputs.size(), 3u);
  EXPECT_EQ(graph->inputs[0]->type.str(), "i64[batch_size, sequence_length]");
  EXPECT_EQ(graph->inputs[1]->type.str(), "f16[batch_size, 4, past_sequence_length + 1, 16]");
  // Not an expression: one sanitised symbol; missing: named after the input and axis.
  EXPECT_EQ(graph->inputs[2]->type.str(), "f32[seq_len, odd_dim1, d3d]");
  ASSERT_EQ(graph->outputs.size(), 3u);
  EXPECT_EQ(graph->outputs[1]->name, "present");
  EXPECT_EQ(graph->outputs[1]->type, graph->inputs[1]->type);
}

TEST(OnnxImporter, UnnamedGraphIsMainAndRankUnknownInputs) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel(17, "");
  auto* input = model.mutable_graph()->add_input();
  input->set_name("x");
  input->mutable_type()->mutable_tensor_type()->set_elem_type(TensorProto::FLOAT);
  testing::addNode(model, "Identity", {"x"}, {"y"});
  testing::addOutput(model, "y");
  auto graph = importOnnx(dir.write(model));
  EXPECT_EQ(graph->name, "main");
  EXPECT_EQ(graph->inputs[0]->type.str(), "f32[*]");
}

TEST(OnnxImporter, InitializersListedAsInputsAreConstants) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel();
  testing::addInput(model, "x", TensorProto::FLOAT, {int64_t{2}});
  testing::addInput(model, "w", TensorProto::FLOAT, {int64_t{2}});
  testing::addInitializer(model, "w", TensorProto::FLOAT, {2})->set_raw_data(testing::bytesOf<float>({1, 2}));
  testing::addInitializer(model, "unused", TensorProto::FLOAT, {1})->add_float_data(3);
  testing::addNode(model, "Identity", {"w"}, {"y"});
  testing::addOutput(model, "y");
  testing::addOutput(model, "x");
  auto graph = importOnnx(dir.write(model));
  ASSERT_EQ(graph->inputs.size(), 1u);
  EXPECT_EQ(graph->inputs[0]->name, "x");
  EXPECT_EQ(opNames(*graph), (std::vector<std::string>{"Constant", "Identity"}));
  EXPECT_EQ(graph->outputs[1], graph->inputs[0]);
}

TEST(OnnxImporter, ConstantNodeVariantsBecomeOneValueTensor) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel();
  testing::setFloat(testing::addNode(model, "Constant", {}, {"f"}), "value_float", 0.25f);
  auto* floats = testing::addAttr(testing::addNode(model, "Constant", {}, {"fs"}), "value_floats");
  floats->set_type(onnx::AttributeProto::FLOATS);
  floats->add_floats(1.5f);
  floats->add_floats(-2);
  testing::setInt(testing::addNode(model, "Constant", {}, {"i"}), "value_int", 7);
  testing::setInts(testing::addNode(model, "Constant", {}, {"is"}), "value_ints", {1, 2, 3});
  auto* value = testing::addAttr(testing::addNode(model, "Constant", {}, {"t"}), "value");
  value->set_type(onnx::AttributeProto::TENSOR);
  value->mutable_t()->set_data_type(TensorProto::INT32);
  value->mutable_t()->add_dims(2);
  value->mutable_t()->add_int32_data(4);
  value->mutable_t()->add_int32_data(5);
  for (const char* name : {"f", "fs", "i", "is", "t"}) testing::addOutput(model, name);
  auto graph = importOnnx(dir.write(model));
  std::vector<std::string> types;
  for (const Value* output : graph->outputs) types.push_back(output->type.str());
  EXPECT_EQ(types, (std::vector<std::string>{"f32[]", "f32[2]", "i64[]", "i64[3]", "i32[2]"}));
  EXPECT_EQ(producerOf(*graph, "fs")->attr("value")->asTensor().elementAsDouble(1), -2.0);
  EXPECT_EQ(producerOf(*graph, "is")->attr("value")->asTensor().toInt64Vector(), (std::vector<int64_t>{1, 2, 3}));
  for (const auto& op : graph->ops()) EXPECT_EQ(op->opName(), "Constant");
}

TEST(OnnxImporter, LargeConstantNodesBecomeWeights) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel();
  auto* value = testing::addAttr(testing::addNode(model, "Constant", {}, {"big"}, "/model/Constant"), "value");
  value->set_type(onnx::AttributeProto::TENSOR);
  value->mutable_t()->set_data_type(TensorProto::FLOAT);
  value->mutable_t()->add_dims(100);
  value->mutable_t()->set_raw_data(testing::bytesOf(std::vector<float>(100, 2.0f)));
  testing::addOutput(model, "big");
  auto graph = importOnnx(dir.write(model));
  EXPECT_EQ(opNames(*graph), std::vector<std::string>{"weight"});
  EXPECT_EQ(graph->weights->find("big")->elementAsDouble(99), 2.0);
  EXPECT_THAT(printGraph(*graph), HasSubstr("%big = weight() {name = \"big\"} : f32[100] loc(\"/model/Constant\")"));
}

TEST(OnnxImporter, UnsupportedOpNamesNodeOpDomainAndOpset) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel(17);
  testing::addInput(model, "x", TensorProto::FLOAT, {int64_t{2}});
  testing::addNode(model, "Foo", {"x"}, {"y"}, "/model/Foo");
  testing::addOutput(model, "y");
  std::string path = dir.write(model);
  EXPECT_EQ(importError(path), path + ": node '/model/Foo' (op Foo, domain '', opset 17): unsupported op");

  model.mutable_graph()->mutable_node(0)->set_domain("com.microsoft");
  testing::addOpset(model, "com.microsoft", 1);
  EXPECT_EQ(importError(dir.write(model)), path + ": node '/model/Foo' (op Foo, domain 'com.microsoft', opset 1): unsupported op");

  model.mutable_graph()->mutable_node(0)->set_domain("com.example");
  EXPECT_THAT(importError(dir.write(model)), HasSubstr("(op Foo, domain 'com.example', opset none): the model does not import domain"));
}

TEST(OnnxImporter, OpsetRangeIsChecked) {
  TempDir dir;
  for (int64_t opset : {6, 24}) {
    onnx::ModelProto model = testing::makeModel(opset);
    testing::addInput(model, "x", TensorProto::FLOAT, {int64_t{2}});
    testing::addNode(model, "Identity", {"x"}, {"y"}, "/Identity");
    testing::addOutput(model, "y");
    EXPECT_THAT(importError(dir.write(model)),
                HasSubstr("node '/Identity' (op Identity, domain '', opset " + std::to_string(opset) + "): default-domain opset " +
                          std::to_string(opset) + " is not supported (7..23)"));
  }
  onnx::ModelProto model = testing::makeModel(17);
  testing::addOpset(model, "com.microsoft", 2);
  testing::addInput(model, "x", TensorProto::FLOAT, {int64_t{2}});
  testing::addNode(model, "SkipLayerNormalization", {"x"}, {"y"}, "/n")->set_domain("com.microsoft");
  testing::addOutput(model, "y");
  EXPECT_THAT(importError(dir.write(model)), HasSubstr("com.microsoft opset 2 is not supported (1)"));
}

TEST(OnnxImporter, UndefinedInputNamesNodeAndValue) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel();
  testing::addInput(model, "x", TensorProto::FLOAT, {int64_t{2}});
  testing::addNode(model, "Identity", {"later"}, {"y"}, "/first");
  testing::addNode(model, "Identity", {"x"}, {"later"}, "/second");
  testing::addOutput(model, "y");
  EXPECT_THAT(importError(dir.write(model)), HasSubstr("node '/first' (op Identity, domain '', opset 17): input 'later' is not defined before this node"));
}

TEST(OnnxImporter, DuplicateDefinitionsAndMissingOutputs) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel();
  testing::addInput(model, "x", TensorProto::FLOAT, {int64_t{2}});
  testing::addNode(model, "Identity", {"x"}, {"x"}, "/dup");
  testing::addOutput(model, "x");
  EXPECT_THAT(importError(dir.write(model)), HasSubstr("node '/dup' (op Identity, domain '', opset 17): value 'x' is defined twice"));

  model = testing::makeModel();
  testing::addOutput(model, "ghost");
  EXPECT_THAT(importError(dir.write(model)), HasSubstr("graph output 'ghost' is not defined"));
}

TEST(OnnxImporter, SubgraphsAreRejectedByNode) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel();
  testing::addInput(model, "cond", TensorProto::BOOL, {});
  auto* node = testing::addNode(model, "If", {"cond"}, {"y"}, "/model/If");
  auto* branch = testing::addAttr(node, "then_branch");
  branch->set_type(onnx::AttributeProto::GRAPH);
  branch->mutable_g()->set_name("then");
  testing::addOutput(model, "y");
  EXPECT_THAT(importError(dir.write(model)),
              HasSubstr("node '/model/If' (op If, domain '', opset 17): subgraphs (attribute 'then_branch') are not supported yet"));
}

TEST(OnnxImporter, UndeclaredAttributeIsAnError) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel();
  testing::addInput(model, "x", TensorProto::FLOAT, {int64_t{2}});
  testing::setInt(testing::addNode(model, "Identity", {"x"}, {"y"}, "/id"), "bogus", 1);
  testing::addOutput(model, "y");
  EXPECT_THAT(importError(dir.write(model)), HasSubstr("node '/id' (op Identity, domain '', opset 17): attribute 'bogus' is not declared by the IR op Identity"));
}

TEST(OnnxImporter, CastTargetBecomesTypeAttribute) {
  REQUIRE_OPS("Cast");
  TempDir dir;
  onnx::ModelProto model = testing::makeModel(19);
  testing::addInput(model, "x", TensorProto::INT64, {std::string("n")});
  testing::setInt(testing::addNode(model, "Cast", {"x"}, {"y"}), "to", TensorProto::FLOAT16);
  testing::addOutput(model, "y");
  auto graph = importOnnx(dir.write(model));
  const Op* cast = producerOf(*graph, "y");
  EXPECT_EQ(cast->attr("to")->kind(), AttrKind::Type);
  EXPECT_EQ(cast->attr("to")->asType(), DType::F16);
  EXPECT_EQ(graph->outputs[0]->type.str(), "f16[n]");
}

// --- opset upgrades -------------------------------------------------------------------------

TEST(OnnxImporter, UnsqueezeAxesAttributeAtOpset11) {
  REQUIRE_OPS("Unsqueeze", "Squeeze");
  TempDir dir;
  onnx::ModelProto model = testing::makeModel(11);
  testing::addInput(model, "x", TensorProto::FLOAT, {std::string("b"), int64_t{3}});
  testing::setInts(testing::addNode(model, "Unsqueeze", {"x"}, {"u"}), "axes", {0, 3});
  testing::setInts(testing::addNode(model, "Squeeze", {"u"}, {"s"}), "axes", {0});
  testing::addOutput(model, "u");
  testing::addOutput(model, "s");
  auto graph = importOnnx(dir.write(model));
  EXPECT_EQ(graph->outputs[0]->type.str(), "f32[1, b, 3, 1]");
  EXPECT_EQ(graph->outputs[1]->type.str(), "f32[b, 3, 1]");
  const Op* unsqueeze = producerOf(*graph, "u");
  EXPECT_TRUE(unsqueeze->attrs.empty());
  ASSERT_EQ(unsqueeze->operands.size(), 2u);
  EXPECT_EQ(unsqueeze->operand(1)->producer->attr("value")->asTensor().toInt64Vector(), (std::vector<int64_t>{0, 3}));
  EXPECT_THAT(printGraph(*graph), HasSubstr("%u = Unsqueeze(%x, %u_axes)"));
}

TEST(OnnxImporter, ReduceMeanAxesAttributeAtOpset17) {
  REQUIRE_OPS("ReduceMean");
  TempDir dir;
  onnx::ModelProto model = testing::makeModel(17);
  testing::addInput(model, "x", TensorProto::FLOAT, {std::string("b"), std::string("s"), int64_t{64}});
  auto* node = testing::addNode(model, "ReduceMean", {"x"}, {"m"});
  testing::setInts(node, "axes", {-1});
  testing::setInt(node, "keepdims", 1);
  testing::addOutput(model, "m");
  auto graph = importOnnx(dir.write(model));
  EXPECT_EQ(graph->outputs[0]->type.str(), "f32[b, s, 1]");
  const Op* reduce = producerOf(*graph, "m");
  EXPECT_FALSE(reduce->hasAttr("axes"));
  EXPECT_EQ(reduce->intAttr("keepdims", 0), 1);
  EXPECT_EQ(reduce->operand(1)->producer->attr("value")->asTensor().toInt64Vector(), std::vector<int64_t>{-1});
}

TEST(OnnxImporter, SplitAttributeAtOpset11AndImpliedCountAtOpset13) {
  REQUIRE_OPS("Split");
  TempDir dir;
  onnx::ModelProto model = testing::makeModel(11);
  testing::addInput(model, "x", TensorProto::FLOAT, {int64_t{2}, int64_t{10}});
  auto* node = testing::addNode(model, "Split", {"x"}, {"a", "b"});
  testing::setInt(node, "axis", 1);
  testing::setInts(node, "split", {3, 7});
  testing::addOutput(model, "a");
  testing::addOutput(model, "b");
  auto graph = importOnnx(dir.write(model));
  EXPECT_EQ(graph->outputs[0]->type.str(), "f32[2, 3]");
  EXPECT_EQ(graph->outputs[1]->type.str(), "f32[2, 7]");
  EXPECT_FALSE(producerOf(*graph, "a")->hasAttr("split"));

  model.mutable_opset_import(0)->set_version(13);
  node->mutable_attribute()->RemoveLast();
  graph = importOnnx(dir.write(model));
  EXPECT_EQ(producerOf(*graph, "a")->intAttr("num_outputs", 0), 2);
  EXPECT_EQ(graph->outputs[1]->type.str(), "f32[2, 5]");
}

TEST(OnnxImporter, SoftmaxOpset11CoercesToTwoDimensions) {
  REQUIRE_OPS("Softmax", "Flatten", "Shape", "Reshape");
  TempDir dir;
  onnx::ModelProto model = testing::makeModel(11);
  testing::addInput(model, "x", TensorProto::FLOAT, {std::string("b"), int64_t{4}, int64_t{8}});
  testing::setInt(testing::addNode(model, "Softmax", {"x"}, {"y"}, "/sm"), "axis", 1);
  testing::setInt(testing::addNode(model, "Softmax", {"x"}, {"z"}, "/last"), "axis", 2);
  testing::addOutput(model, "y");
  testing::addOutput(model, "z");
  auto graph = importOnnx(dir.write(model));
  EXPECT_EQ(opNames(*graph), (std::vector<std::string>{"Flatten", "Softmax", "Shape", "Reshape", "Softmax"}));
  EXPECT_EQ(producerOf(*graph, "x_2d")->intAttr("axis", 0), 1);
  EXPECT_EQ(producerOf(*graph, "y_2d")->intAttr("axis", 0), -1);
  EXPECT_EQ(graph->outputs[0]->type.str(), "f32[b, 4, 8]");
  // On the last axis the old and new semantics agree.
  EXPECT_EQ(producerOf(*graph, "z")->opName(), "Softmax");
  EXPECT_EQ(producerOf(*graph, "z")->intAttr("axis", 0), 2);
}

TEST(OnnxImporter, ClipBoundsAttributesAtOpset10BecomeOperands) {
  REQUIRE_OPS("Clip");
  TempDir dir;
  onnx::ModelProto model = testing::makeModel(10);
  testing::addInput(model, "x", TensorProto::FLOAT16, {int64_t{3}});
  auto* node = testing::addNode(model, "Clip", {"x"}, {"y"});
  testing::setFloat(node, "min", -1);
  testing::setFloat(node, "max", 6);
  testing::addOutput(model, "y");
  auto graph = importOnnx(dir.write(model));
  const Op* clip = producerOf(*graph, "y");
  ASSERT_EQ(clip->operands.size(), 3u);
  const Tensor& max = clip->operand(2)->producer->attr("value")->asTensor();
  EXPECT_EQ(max.dtype(), DType::F16);
  EXPECT_EQ(max.elementAsDouble(0), 6.0);
}

TEST(OnnxImporter, SliceTopKPadAndDropoutAttributesAtOlderOpsets) {
  REQUIRE_OPS("Slice", "TopK", "Pad", "Dropout");
  TempDir dir;
  onnx::ModelProto model = testing::makeModel(9);
  testing::addInput(model, "x", TensorProto::FLOAT, {int64_t{4}, int64_t{10}});
  auto* slice = testing::addNode(model, "Slice", {"x"}, {"s"});
  testing::setInts(slice, "starts", {2});
  testing::setInts(slice, "ends", {8});
  testing::setInts(slice, "axes", {1});
  testing::setInt(testing::addNode(model, "TopK", {"s"}, {"values", "indices"}), "k", 3);
  auto* pad = testing::addNode(model, "Pad", {"x"}, {"p"});
  testing::setInts(pad, "pads", {0, 1, 0, 1});
  testing::setFloat(pad, "value", 0.5f);
  testing::setFloat(testing::addNode(model, "Dropout", {"x"}, {"d"}), "ratio", 0.25f);
  for (const char* name : {"s", "values", "indices", "p", "d"}) testing::addOutput(model, name);
  auto graph = importOnnx(dir.write(model));
  std::vector<std::string> types;
  for (const Value* output : graph->outputs) types.push_back(output->type.str());
  EXPECT_EQ(types, (std::vector<std::string>{"f32[4, 6]", "f32[4, 3]", "i64[4, 3]", "f32[4, 12]", "f32[4, 10]"}));
  const Op* sliceOp = producerOf(*graph, "s");
  ASSERT_EQ(sliceOp->operands.size(), 4u);
  EXPECT_EQ(sliceOp->operand(2)->producer->attr("value")->asTensor().toInt64Vector(), std::vector<int64_t>{8});
  EXPECT_EQ(producerOf(*graph, "p")->operand(2)->producer->attr("value")->asTensor().elementAsDouble(0), 0.5);
  EXPECT_EQ(producerOf(*graph, "d")->operand(1)->producer->attr("value")->asTensor().elementAsDouble(0), 0.25);
}

// --- local functions -----------------------------------------------------------------------

TEST(OnnxImporter, LocalFunctionsAreInlined) {
  REQUIRE_OPS("Cast");
  TempDir dir;
  onnx::ModelProto model = testing::makeModel(18);
  testing::addOpset(model, "custom", 1);
  // custom.CastTwice(X) -> Y with attribute `to` (default f16): Y = Identity(Cast(X, to))
  auto* function = model.add_functions();
  function->set_name("CastTwice");
  function->set_domain("custom");
  function->add_input("X");
  function->add_output("Y");
  function->add_attribute("to");
  auto* import = function->add_opset_import();
  import->set_domain("");
  import->set_version(18);
  auto* cast = function->add_node();
  cast->set_op_type("Cast");
  cast->set_name("inner_cast");
  cast->add_input("X");
  cast->add_output("T");
  auto* ref = cast->add_attribute();
  ref->set_name("to");
  ref->set_type(onnx::AttributeProto::INT);
  ref->set_ref_attr_name("to");
  auto* id = function->add_node();
  id->set_op_type("Identity");
  id->add_input("T");
  id->add_output("Y");

  testing::addInput(model, "x", TensorProto::INT64, {std::string("n")});
  auto* call = testing::addNode(model, "CastTwice", {"x"}, {"y"}, "/call");
  call->set_domain("custom");
  testing::setInt(call, "to", TensorProto::FLOAT);
  auto* call2 = testing::addNode(model, "CastTwice", {"y"}, {"z"}, "/call2");
  call2->set_domain("custom");
  testing::setInt(call2, "to", TensorProto::DOUBLE);
  testing::addOutput(model, "z");
  auto graph = importOnnx(dir.write(model));
  EXPECT_EQ(opNames(*graph), (std::vector<std::string>{"Cast", "Identity", "Cast", "Identity"}));
  EXPECT_EQ(producerOf(*graph, "y")->operand(0)->producer->attr("to")->asType(), DType::F32);
  EXPECT_EQ(producerOf(*graph, "y")->operand(0)->producer->name, "/call/inner_cast");
  EXPECT_EQ(graph->outputs[0]->name, "z");
  EXPECT_EQ(graph->outputs[0]->type.str(), "f64[n]");
}

// --- files that are not models -------------------------------------------------------------

TEST(OnnxModelLoader, RejectsFilesThatAreNotModels) {
  TempDir dir;
  dir.writeBytes("empty.onnx", "");
  EXPECT_EQ(importError(dir.file("empty.onnx")), dir.file("empty.onnx") + ": empty file, not an ONNX model");

  std::mt19937 random(1234);
  std::string noise(4096, '\0');
  for (char& c : noise) c = static_cast<char>(random());
  dir.writeBytes("noise.onnx", noise);
  EXPECT_THAT(importError(dir.file("noise.onnx")), StartsWith(dir.file("noise.onnx") + ": "));

  dir.writeBytes("text.onnx", "graph @main() {\n  return\n}\n");
  EXPECT_THAT(importError(dir.file("text.onnx")), StartsWith(dir.file("text.onnx") + ": not "));

  EXPECT_THAT(importError(dir.file("missing.onnx")), HasSubstr("missing.onnx: cannot open"));
}

TEST(OnnxModelLoader, RejectsTruncatedModels) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel();
  testing::addInitializer(model, "w", TensorProto::FLOAT, {64})->set_raw_data(testing::bytesOf(std::vector<float>(64, 1.0f)));
  testing::addNode(model, "Identity", {"w"}, {"y"});
  testing::addOutput(model, "y");
  std::string bytes;
  model.SerializeToString(&bytes);
  dir.writeBytes("half.onnx", bytes.substr(0, bytes.size() / 2));
  EXPECT_EQ(importError(dir.file("half.onnx")),
            dir.file("half.onnx") + ": not a valid ONNX model: the protobuf does not parse (corrupt, truncated or not an ONNX file)");
}

TEST(OnnxModelLoader, RejectsWrongIrVersionAndMissingGraph) {
  TempDir dir;
  onnx::ModelProto model = testing::makeModel();
  model.set_ir_version(99);
  EXPECT_THAT(importError(dir.write(model)), HasSubstr("ONNX ir_version 99 is not supported (supported: 3..13)"));
  model.clear_ir_version();
  EXPECT_THAT(importError(dir.write(model)), HasSubstr("not an ONNX model: no ir_version"));
  model.set_ir_version(8);
  model.clear_graph();
  EXPECT_THAT(importError(dir.write(model)), HasSubstr("the ONNX model has no graph"));
}

}  // namespace
}  // namespace pagedc
