// ONNX GraphProto -> IR graph: inputs, initializers, nodes (local functions inlined), outputs.
#include "frontend/OnnxImporter.h"

#include <cctype>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "frontend/OnnxAttribute.h"
#include "frontend/OnnxModelLoader.h"
#include "frontend/OnnxNewerFields.h"
#include "frontend/OnnxTensor.h"
#include "frontend/OpsetUpgrade.h"
#include "ir/Error.h"
#include "ir/OpDef.h"
#include "ir/TypeInference.h"
#include "ir/Verifier.h"

namespace pagedc {

namespace {

constexpr int kMaxFunctionDepth = 32;
constexpr int64_t kComMicrosoftOpset = 1;

// Symbol and graph names must be identifiers in the textual form: other characters become '_'.
std::string sanitizeIdentifier(std::string_view text, std::string_view fallback) {
  std::string result;
  for (char c : text) {
    bool plain = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (plain) result += c;
    else if (result.empty() || result.back() != '_') result += '_';
  }
  if (result.empty() || result == "_") return std::string(fallback);
  if (std::isdigit(static_cast<unsigned char>(result[0]))) result = "d" + result;
  return result;
}

std::string normalizeDomain(const std::string& domain) { return domain == "ai.onnx" ? std::string() : domain; }

TensorType typeOfTensor(const Tensor& tensor) {
  Shape shape;
  for (int64_t d : tensor.shape()) shape.emplace_back(d);
  return {tensor.dtype(), shape};
}

// Exporters write dim_param as plain names ("batch_size"), torch symbols ("s0") or expressions
// ("past_sequence_length + 1"); anything that is not a dimension expression becomes one symbol.
Dim dimFromOnnx(const onnx::TensorShapeProto::Dimension& dim, const std::string& inputName, size_t axis) {
  if (dim.has_dim_value() && dim.dim_value() >= 0) return Dim(dim.dim_value());
  if (dim.has_dim_param() && !dim.dim_param().empty()) {
    try {
      return Dim::parse(dim.dim_param());
    } catch (const Error&) {
      return Dim::symbol(sanitizeIdentifier(dim.dim_param(), "dim"));
    }
  }
  return Dim::symbol(sanitizeIdentifier(inputName, "input") + "_dim" + std::to_string(axis));
}

// The value names, opsets and attribute bindings that ONNX names resolve against: the main graph
// or the body of one call of a local function.
struct Scope {
  std::unordered_map<std::string, Value*> values;
  std::unordered_set<std::string> omitted;  // function inputs the call left out
  std::map<std::string, int64_t> opsets;    // domain ("" for the default one) -> version
  std::map<std::string, const onnx::AttributeProto*> attrs;  // a function call's attributes
  std::unordered_map<std::string, std::string> outputNames;  // function output -> the caller's name
  const onnx::FunctionProto* function = nullptr;
  std::string prefix;  // the call's node name: prefixes inner node and value names
  int depth = 0;
};

class OnnxGraphImporter : public UpgradeBuilder {
public:
  OnnxGraphImporter(std::shared_ptr<const onnx::ModelProto> model, const std::filesystem::path& path, const OnnxImportOptions& options)
      : model_(std::move(model)), options_(options), external_(path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path()) {}

  std::unique_ptr<Graph> run();

  Value* constant(Tensor value, const std::string& hint) override {
    return importTensor(std::move(value), freshName(hintBase_ + "_" + hint), currentNodeName_);
  }
  Value* emit(std::string_view opName, std::vector<Value*> operands, AttrMap attrs, const std::string& hint) override {
    if (!OpRegistry::instance().find(opName)) fail("the opset upgrade needs the IR op ", opName, ", which is not registered");
    return append(opName, std::move(operands), std::move(attrs), {freshName(hint)}, currentNodeName_)->result();
  }

private:
  std::string freshName(const std::string& hint);
  std::string resultName(const Scope& scope, const std::string& onnxName);
  Value* lookup(const Scope& scope, const std::string& name, const std::string& where);
  void bind(Scope& scope, const std::string& name, Value* value, const std::string& where);
  Tensor convertTensor(const onnx::TensorProto& proto, const std::string& what);
  Value* importTensor(Tensor tensor, const std::string& valueName, const std::string& nodeName);
  Op* append(std::string_view opName, std::vector<Value*> operands, AttrMap attrs, const std::vector<std::string>& names,
             const std::string& nodeName);
  TensorType inputType(const onnx::ValueInfoProto& info);
  void importNode(const onnx::NodeProto& node, Scope& scope);
  void convertNode(const onnx::NodeProto& node, Scope& scope, const std::string& nodeName, const std::string& where);
  void inlineFunction(const onnx::NodeProto& node, const onnx::FunctionProto& function, Scope& caller, const std::string& nodeName,
                      const std::string& where);
  AttrMap convertAttributes(const onnx::NodeProto& node, const Scope& scope);

  std::shared_ptr<const onnx::ModelProto> model_;
  OnnxImportOptions options_;
  ExternalDataReader external_;
  std::unique_ptr<Graph> graph_;
  std::unordered_set<std::string> reserved_;  // every ONNX value name of the main graph, and names handed out
  // Local functions by (domain, name, overload), and their attribute defaults.
  std::map<std::tuple<std::string, std::string, std::string>, const onnx::FunctionProto*> functions_;
  std::map<const onnx::FunctionProto*, std::vector<onnx::AttributeProto>> functionDefaults_;
  std::string currentNodeName_;  // the node being upgraded: names what the upgrade adds
  std::string hintBase_;
};

std::string OnnxGraphImporter::freshName(const std::string& hint) {
  std::string candidate = graph_->uniqueName(hint);
  for (size_t suffix = 1; reserved_.count(candidate); ++suffix) candidate = graph_->uniqueName(hint + "_" + std::to_string(suffix));
  reserved_.insert(candidate);
  return candidate;
}

// Main-graph values keep their ONNX names; values inside an inlined function get fresh names
// under the call's name, except function outputs, which take the caller's names.
std::string OnnxGraphImporter::resultName(const Scope& scope, const std::string& onnxName) {
  if (!scope.function) return onnxName;
  auto it = scope.outputNames.find(onnxName);
  if (it != scope.outputNames.end()) return it->second;
  return freshName(scope.prefix + "/" + onnxName);
}

Value* OnnxGraphImporter::lookup(const Scope& scope, const std::string& name, const std::string& where) {
  auto it = scope.values.find(name);
  if (it != scope.values.end()) return it->second;
  if (scope.omitted.count(name)) return nullptr;
  fail(where, ": input '", name,
       "' is not defined before this node (not a graph input, initializer or output of an earlier node; ONNX requires "
       "nodes in topological order)");
}

void OnnxGraphImporter::bind(Scope& scope, const std::string& name, Value* value, const std::string& where) {
  if (!scope.values.emplace(name, value).second) fail(where, ": value '", name, "' is defined twice");
}

Tensor OnnxGraphImporter::convertTensor(const onnx::TensorProto& proto, const std::string& what) {
  // Large tensors view the model's raw_data in place; small ones are copied so that constants
  // do not keep the whole ModelProto alive.
  bool large = true;
  int64_t elements = 1;
  for (int64_t d : proto.dims()) {
    if (d <= 0) large = false;
    else if (elements <= options_.maxInlineElements) elements *= d;
  }
  large = large && elements > options_.maxInlineElements;
  TensorSource source;
  if (large) source.rawDataOwner = model_;
  source.externalData = &external_;
  Tensor tensor = tensorFromOnnx(proto, source, what);
  if (!large && proto.data_location() == onnx::TensorProto::EXTERNAL && tensor.byteSize()) {
    // A small external tensor would otherwise keep the whole data file mapped.
    Tensor copy = Tensor::zeros(tensor.dtype(), tensor.shape());
    std::memcpy(copy.mutableBytes(), tensor.bytes(), tensor.byteSize());
    return copy;
  }
  return tensor;
}

Value* OnnxGraphImporter::importTensor(Tensor tensor, const std::string& valueName, const std::string& nodeName) {
  if (tensor.numElements() <= options_.maxInlineElements)
    return append("Constant", {}, {{"value", Attribute(std::move(tensor))}}, {valueName}, nodeName)->result();
  TensorType type = typeOfTensor(tensor);
  graph_->weights->add(valueName, std::move(tensor));
  Op* op = graph_->appendOp("weight", {}, {{"name", Attribute(valueName)}}, {valueName}, nodeName);
  op->result()->type = type;
  return op->result();
}

Op* OnnxGraphImporter::append(std::string_view opName, std::vector<Value*> operands, AttrMap attrs, const std::vector<std::string>& names,
                              const std::string& nodeName) {
  Op* op = graph_->appendOp(opName, std::move(operands), std::move(attrs), names, nodeName);
  // Typed as it is built: opset upgrades need operand types (Clip bounds, Softmax ranks).
  inferOpTypes(*graph_, *op);
  return op;
}

TensorType OnnxGraphImporter::inputType(const onnx::ValueInfoProto& info) {
  if (!info.type().has_tensor_type())
    fail("graph input '", info.name(), "' is not a tensor (sequence, map, optional and sparse inputs are not supported)");
  const auto& tensorType = info.type().tensor_type();
  std::optional<DType> dtype = dtypeFromOnnx(tensorType.elem_type());
  if (!dtype) fail("graph input '", info.name(), "': element type ", onnxTypeName(tensorType.elem_type()), " is not supported");
  if (!tensorType.has_shape()) return {*dtype, std::nullopt};
  Shape shape;
  for (int i = 0; i < tensorType.shape().dim_size(); ++i) shape.push_back(dimFromOnnx(tensorType.shape().dim(i), info.name(), static_cast<size_t>(i)));
  return {*dtype, shape};
}

AttrMap OnnxGraphImporter::convertAttributes(const onnx::NodeProto& node, const Scope& scope) {
  AttrMap attrs;
  auto converter = [this](const onnx::TensorProto& proto, const std::string& what) { return convertTensor(proto, what); };
  for (const auto& attribute : node.attribute()) {
    const onnx::AttributeProto* source = &attribute;
    if (!attribute.ref_attr_name().empty()) {
      if (!scope.function) fail("attribute '", attribute.name(), "' refers to '", attribute.ref_attr_name(), "' outside a function");
      auto it = scope.attrs.find(attribute.ref_attr_name());
      if (it == scope.attrs.end()) continue;  // not given by the call: the op's default applies
      source = it->second;
    }
    attrs[attribute.name()] = attributeFromOnnx(*source, converter);
  }
  return attrs;
}

void OnnxGraphImporter::importNode(const onnx::NodeProto& node, Scope& scope) {
  std::string domain = normalizeDomain(node.domain());
  std::string nodeName = scope.prefix.empty() ? node.name() : scope.prefix + "/" + node.name();
  auto opsetIt = scope.opsets.find(domain);
  std::string where = "node '" + nodeName + "' (op " + node.op_type() + ", domain '" + node.domain() + "', opset " +
                      (opsetIt == scope.opsets.end() ? std::string("none") : std::to_string(opsetIt->second)) + ")";
  if (node.name().empty() && node.output_size()) where += " (output '" + node.output(0) + "')";

  auto function = functions_.find({domain, node.op_type(), nodeOverload(node)});
  if (function != functions_.end()) {
    if (scope.depth >= kMaxFunctionDepth) fail(where, ": local functions nest deeper than ", kMaxFunctionDepth, " (recursive?)");
    inlineFunction(node, *function->second, scope, nodeName.empty() ? node.op_type() : nodeName, where);
    return;
  }
  try {
    convertNode(node, scope, nodeName, where);
  } catch (const Error& e) {
    std::string message = e.what();
    if (message.rfind(where, 0) == 0) throw;
    fail(where, ": ", message);
  }
}

void OnnxGraphImporter::convertNode(const onnx::NodeProto& node, Scope& scope, const std::string& nodeName, const std::string& where) {
  std::string domain = normalizeDomain(node.domain());
  for (const auto& attribute : node.attribute())
    if (isSubgraphAttribute(attribute))
      fail(where, ": subgraphs (attribute '", attribute.name(), "') are not supported yet (If, Loop and Scan)");

  auto opsetIt = scope.opsets.find(domain);
  if (opsetIt == scope.opsets.end()) fail(where, ": the model does not import domain '", node.domain(), "'");
  int64_t opset = opsetIt->second;
  std::string irName;
  if (domain.empty()) {
    if (opset < kOldestOnnxOpset || opset > kNewestOnnxOpset)
      fail(where, ": default-domain opset ", opset, " is not supported (", kOldestOnnxOpset, "..", kNewestOnnxOpset, ")");
    irName = node.op_type();
  } else if (domain == "com.microsoft") {
    if (opset != kComMicrosoftOpset) fail(where, ": com.microsoft opset ", opset, " is not supported (", kComMicrosoftOpset, ")");
    irName = "com.microsoft." + node.op_type();
  } else {
    fail(where, ": unsupported op (unknown domain)");
  }
  const OpDef* def = OpRegistry::instance().find(irName);
  if (!def) fail(where, ": unsupported op");

  NodeForm form;
  form.opType = node.op_type();
  form.attrs = convertAttributes(node, scope);
  for (const auto& input : node.input()) form.operands.push_back(input.empty() ? nullptr : lookup(scope, input, where));
  int numOutputs = node.output_size();
  while (numOutputs > 0 && node.output(numOutputs - 1).empty()) --numOutputs;
  form.numResults = static_cast<size_t>(numOutputs);

  if (irName == "Constant") {
    // value, value_float(s), value_int(s): all become one tensor.
    if (form.attrs.size() != 1 || numOutputs != 1) fail(where, ": a Constant needs exactly one value attribute and one output");
    const auto& [key, attribute] = *form.attrs.begin();
    Tensor value;
    if (key == "value" && attribute.kind() == AttrKind::Tensor) {
      value = attribute.asTensor();
    } else if (key == "value_float" && attribute.kind() == AttrKind::Float) {
      value = Tensor::fromValues<float>(DType::F32, {}, {static_cast<float>(attribute.asFloat())});
    } else if (key == "value_floats" && attribute.kind() == AttrKind::Floats) {
      std::vector<float> values(attribute.asFloats().begin(), attribute.asFloats().end());
      value = Tensor::fromValues<float>(DType::F32, {static_cast<int64_t>(values.size())}, values);
    } else if (key == "value_int" && attribute.kind() == AttrKind::Int) {
      value = Tensor::fromValues<int64_t>(DType::I64, {}, {attribute.asInt()});
    } else if (key == "value_ints" && attribute.kind() == AttrKind::Ints) {
      value = Tensor::fromValues<int64_t>(DType::I64, {static_cast<int64_t>(attribute.asInts().size())}, attribute.asInts());
    } else if (key == "value_string" || key == "value_strings") {
      fail(where, ": string constants are not supported");
    } else {
      fail(where, ": unsupported Constant attribute '", key, "'");
    }
    bind(scope, node.output(0), importTensor(std::move(value), resultName(scope, node.output(0)), nodeName), where);
    return;
  }

  std::vector<std::string> names;
  for (int i = 0; i < numOutputs; ++i)
    names.push_back(node.output(i).empty() ? freshName((nodeName.empty() ? node.op_type() : nodeName) + "_unused" + std::to_string(i))
                                           : resultName(scope, node.output(i)));
  if (domain.empty()) {
    currentNodeName_ = nodeName;
    hintBase_ = names.empty() ? nodeName : names[0];
    upgradeToLatestOpset(form, opset, *this);
  }

  for (auto& [key, attribute] : form.attrs) {
    const AttrSpec* spec = nullptr;
    for (const AttrSpec& candidate : def->attrs)
      if (candidate.name == key) spec = &candidate;
    if (!spec) fail(where, ": attribute '", key, "' is not declared by the IR op ", irName);
    if (spec->kind == AttrKind::Type && attribute.kind() == AttrKind::Int) {
      std::optional<DType> dtype = dtypeFromOnnx(static_cast<int32_t>(attribute.asInt()));
      if (!dtype) fail(where, ": attribute '", key, "' names element type ", onnxTypeName(static_cast<int32_t>(attribute.asInt())), ", which is not supported");
      attribute = Attribute(*dtype);
    }
  }
  while (!form.operands.empty() && !form.operands.back()) form.operands.pop_back();

  Op* op = nullptr;
  if (form.restoreShapeOf) {
    if (names.size() != 1) fail(where, ": expected one output");
    std::string finalName = names[0];
    names[0] = freshName(finalName + "_2d");
    Op* flat = append(irName, form.operands, form.attrs, names, nodeName);
    Value* shape = append("Shape", {form.restoreShapeOf}, {}, {freshName(finalName + "_shape")}, nodeName)->result();
    op = append("Reshape", {flat->result(), shape}, {}, {finalName}, nodeName);
  } else {
    op = append(irName, std::move(form.operands), std::move(form.attrs), names, nodeName);
  }
  for (int i = 0; i < numOutputs; ++i)
    if (!node.output(i).empty()) bind(scope, node.output(i), op->results[static_cast<size_t>(i)], where);
}

void OnnxGraphImporter::inlineFunction(const onnx::NodeProto& node, const onnx::FunctionProto& function, Scope& caller,
                                       const std::string& nodeName, const std::string& where) {
  Scope inner;
  inner.function = &function;
  inner.depth = caller.depth + 1;
  inner.prefix = nodeName;
  inner.opsets = caller.opsets;
  for (const auto& import : function.opset_import()) inner.opsets[normalizeDomain(import.domain())] = import.version();

  for (int i = 0; i < function.input_size(); ++i) {
    bool given = i < node.input_size() && !node.input(i).empty();
    if (given) inner.values[function.input(i)] = lookup(caller, node.input(i), where);
    else inner.omitted.insert(function.input(i));
  }
  for (const auto& attribute : functionDefaults_.at(&function)) inner.attrs[attribute.name()] = &attribute;
  for (const auto& attribute : node.attribute()) {
    if (attribute.ref_attr_name().empty()) {
      inner.attrs[attribute.name()] = &attribute;
    } else if (auto it = caller.attrs.find(attribute.ref_attr_name()); it != caller.attrs.end()) {
      inner.attrs[attribute.name()] = it->second;
    }
  }
  std::vector<std::string> callerNames(static_cast<size_t>(function.output_size()));
  for (int i = 0; i < function.output_size() && i < node.output_size(); ++i) {
    if (node.output(i).empty()) continue;
    callerNames[static_cast<size_t>(i)] = resultName(caller, node.output(i));
    inner.outputNames[function.output(i)] = callerNames[static_cast<size_t>(i)];
  }

  for (const auto& body : function.node()) importNode(body, inner);

  for (int i = 0; i < function.output_size() && i < node.output_size(); ++i) {
    if (node.output(i).empty()) continue;
    auto it = inner.values.find(function.output(i));
    if (it == inner.values.end() || !it->second)
      fail(where, ": local function '", function.name(), "' does not define its output '", function.output(i), "'");
    Value* value = it->second;
    // An output that passes an input (or another output) through still gets the caller's name.
    if (value->name != callerNames[static_cast<size_t>(i)])
      value = append("Identity", {value}, {}, {callerNames[static_cast<size_t>(i)]}, nodeName)->result();
    bind(caller, node.output(i), value, where);
  }
}

std::unique_ptr<Graph> OnnxGraphImporter::run() {
  const onnx::GraphProto& onnxGraph = model_->graph();
  graph_ = std::make_unique<Graph>();
  graph_->name = sanitizeIdentifier(onnxGraph.name(), "main");
  if (onnxGraph.sparse_initializer_size()) fail("sparse initializers are not supported");
  for (const auto& function : model_->functions()) {
    functions_[{normalizeDomain(function.domain()), function.name(), functionOverload(function)}] = &function;
    functionDefaults_[&function] = functionAttributeDefaults(function);
  }

  Scope main;
  for (const auto& import : model_->opset_import()) main.opsets[normalizeDomain(import.domain())] = import.version();

  // Names the model uses are reserved so that names the importer invents never take them.
  for (const auto& input : onnxGraph.input()) reserved_.insert(input.name());
  for (const auto& initializer : onnxGraph.initializer()) reserved_.insert(initializer.name());
  std::set<std::string> used;
  for (const auto& node : onnxGraph.node()) {
    for (const auto& output : node.output()) reserved_.insert(output);
    for (const auto& input : node.input()) used.insert(input);
  }
  for (const auto& output : onnxGraph.output()) used.insert(output.name());
  reserved_.erase("");

  InferContext::freshCounter() = 0;
  std::set<std::string> initializerNames;
  for (const auto& initializer : onnxGraph.initializer()) initializerNames.insert(initializer.name());
  // Older exporters list initializers among the inputs too; those are constants, not inputs.
  for (const auto& input : onnxGraph.input()) {
    if (initializerNames.count(input.name())) continue;
    bind(main, input.name(), graph_->addInput(input.name(), inputType(input)), "graph input '" + input.name() + "'");
  }
  for (const auto& initializer : onnxGraph.initializer()) {
    if (!used.count(initializer.name())) continue;
    Value* value = importTensor(convertTensor(initializer, initializer.name()), initializer.name(), "");
    bind(main, initializer.name(), value, "initializer '" + initializer.name() + "'");
  }
  for (const auto& node : onnxGraph.node()) importNode(node, main);
  for (const auto& output : onnxGraph.output()) {
    auto it = main.values.find(output.name());
    if (it == main.values.end()) fail("graph output '", output.name(), "' is not defined by any node, input or initializer");
    graph_->outputs.push_back(it->second);
  }

  inferTypes(*graph_);
  if (options_.verify) verifyOrThrow(*graph_);
  return std::move(graph_);
}

}  // namespace

std::unique_ptr<Graph> importOnnx(const std::string& path, const OnnxImportOptions& options) {
  auto model = loadOnnxModel(path);
  try {
    return OnnxGraphImporter(model, path, options).run();
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

}  // namespace pagedc
