// Older-opset forms of default-domain ops, rewritten to the latest opset's operands and attributes.
#include "frontend/OpsetUpgrade.h"

#include <optional>
#include <set>

#include "ir/Error.h"

namespace pagedc {

namespace {
std::optional<Attribute> takeAttr(NodeForm& node, const std::string& name) {
  auto it = node.attrs.find(name);
  if (it == node.attrs.end()) return std::nullopt;
  Attribute value = std::move(it->second);
  node.attrs.erase(it);
  return value;
}

void setOperand(NodeForm& node, size_t index, Value* value) {
  if (node.operands.size() <= index) node.operands.resize(index + 1, nullptr);
  node.operands[index] = value;
}

const std::vector<int64_t>& intsOf(const Attribute& attribute, const std::string& name) {
  if (attribute.kind() != AttrKind::Ints) fail("attribute '", name, "' must be a list of ints");
  return attribute.asInts();
}

double floatOf(const Attribute& attribute, const std::string& name) {
  if (attribute.kind() == AttrKind::Int) return static_cast<double>(attribute.asInt());
  if (attribute.kind() != AttrKind::Float) fail("attribute '", name, "' must be a float");
  return attribute.asFloat();
}

Tensor int64Vector(const std::vector<int64_t>& values) {
  return Tensor::fromValues<int64_t>(DType::I64, {static_cast<int64_t>(values.size())}, values);
}

// A scalar of the element type of `like` (Clip bounds and Pad values must match the data).
Tensor scalarLike(double value, const Value* like) {
  Tensor tensor = Tensor::zeros(like->type.dtype, {});
  storeFromDouble(like->type.dtype, tensor.mutableBytes(), value);
  return tensor;
}

// Moves an ints attribute that later opsets take as input `index` into a Constant operand.
void intsAttrToOperand(NodeForm& node, const std::string& name, size_t index, UpgradeBuilder& builder) {
  if (auto attribute = takeAttr(node, name)) setOperand(node, index, builder.constant(int64Vector(intsOf(*attribute, name)), name));
}

const std::set<std::string, std::less<>> kReductionsWithAxesInputFrom18 = {
    "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};

// Before opset 13 these ops coerce their input to 2-D at `axis` (default 1) and normalise over
// the whole second dimension; from 13 they normalise along `axis` alone (default -1).
void upgradeCoercingSoftmax(NodeForm& node, UpgradeBuilder& builder) {
  int64_t axis = 1;
  if (auto attribute = takeAttr(node, "axis")) {
    if (attribute->kind() != AttrKind::Int) fail("attribute 'axis' must be an int");
    axis = attribute->asInt();
  }
  Value* input = node.operands.empty() ? nullptr : node.operands[0];
  if (!input) fail("missing input");
  const TensorType& type = input->type;
  int64_t rank = type.hasRank() ? static_cast<int64_t>(type.rank()) : -1;
  bool isLastAxis = axis == -1 || (rank >= 0 && (axis < 0 ? axis + rank : axis) == rank - 1);
  if (isLastAxis) {
    node.attrs["axis"] = Attribute(axis);
    return;
  }
  node.operands[0] = builder.emit("Flatten", {input}, {{"axis", Attribute(axis)}}, input->name + "_2d");
  node.attrs["axis"] = Attribute(int64_t{-1});
  node.restoreShapeOf = input;
}
}  // namespace

void upgradeToLatestOpset(NodeForm& node, int64_t opset, UpgradeBuilder& builder) {
  const std::string& op = node.opType;
  if (op == "Split") {
    if (opset < 13) intsAttrToOperand(node, "split", 1, builder);
    // From 18 an even split needs num_outputs; before, the number of outputs implied it.
    if (opset < 18 && (node.operands.size() < 2 || !node.operands[1]) && !node.attrs.count("num_outputs"))
      node.attrs["num_outputs"] = Attribute(static_cast<int64_t>(node.numResults));
  } else if (op == "Squeeze" || op == "Unsqueeze") {
    if (opset < 13) intsAttrToOperand(node, "axes", 1, builder);
  } else if (op == "ReduceSum") {
    if (opset < 13) intsAttrToOperand(node, "axes", 1, builder);
  } else if (kReductionsWithAxesInputFrom18.count(op)) {
    if (opset < 18) intsAttrToOperand(node, "axes", 1, builder);
  } else if (op == "Slice") {
    if (opset < 10) {
      intsAttrToOperand(node, "starts", 1, builder);
      intsAttrToOperand(node, "ends", 2, builder);
      intsAttrToOperand(node, "axes", 3, builder);
    }
  } else if (op == "Clip") {
    if (opset < 11) {
      if (node.operands.empty() || !node.operands[0]) fail("missing input");
      Value* input = node.operands[0];
      if (auto min = takeAttr(node, "min")) setOperand(node, 1, builder.constant(scalarLike(floatOf(*min, "min"), input), "min"));
      if (auto max = takeAttr(node, "max")) setOperand(node, 2, builder.constant(scalarLike(floatOf(*max, "max"), input), "max"));
    }
  } else if (op == "Dropout") {
    if (opset < 12) {
      if (auto ratio = takeAttr(node, "ratio"))
        setOperand(node, 1, builder.constant(Tensor::fromValues<float>(DType::F32, {}, {static_cast<float>(floatOf(*ratio, "ratio"))}), "ratio"));
    }
  } else if (op == "Pad") {
    if (opset < 11) {
      if (node.operands.empty() || !node.operands[0]) fail("missing input");
      Value* input = node.operands[0];
      intsAttrToOperand(node, "pads", 1, builder);
      if (auto value = takeAttr(node, "value")) setOperand(node, 2, builder.constant(scalarLike(floatOf(*value, "value"), input), "pad_value"));
    }
  } else if (op == "TopK") {
    if (opset < 10) {
      if (auto k = takeAttr(node, "k")) {
        if (k->kind() != AttrKind::Int) fail("attribute 'k' must be an int");
        setOperand(node, 1, builder.constant(int64Vector({k->asInt()}), "k"));
      }
    }
  } else if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") {
    if (opset < 13) upgradeCoercingSoftmax(node, builder);
  }
}

}  // namespace pagedc
