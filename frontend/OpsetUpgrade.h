// Rewrites default-domain ONNX nodes of older opsets into their latest-opset form.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ir/Graph.h"

namespace pagedc {

// The default-domain opsets the importer reads: from 13 every op matches the latest form up to
// attributes with defaults; 7..12 are read through the upgrades below.
inline constexpr int64_t kOldestOnnxOpset = 7;
inline constexpr int64_t kNewestOnnxOpset = 23;

// A node on its way into the IR: operands by position (nullptr: omitted) and converted attributes.
struct NodeForm {
  std::string opType;
  std::vector<Value*> operands;
  AttrMap attrs;
  size_t numResults = 1;
  // Set by the opset<13 Softmax family upgrade: the op then computes on the 2-D flattening of
  // this value and the importer reshapes its result back to this value's shape.
  Value* restoreShapeOf = nullptr;
};

// What an upgrade may add to the graph before the node itself.
class UpgradeBuilder {
public:
  virtual ~UpgradeBuilder() = default;
  virtual Value* constant(Tensor value, const std::string& hint) = 0;
  // A single-result op, appended and typed.
  virtual Value* emit(std::string_view opName, std::vector<Value*> operands, AttrMap attrs, const std::string& hint) = 0;
};

// Attributes that later opsets turned into inputs become Constant operands (Split, Squeeze,
// Unsqueeze, Reduce*, Slice, Clip, Dropout, Pad, TopK); opset<13 Softmax/LogSoftmax/Hardmax get
// their 2-D coercion made explicit; Split without sizes gets num_outputs. Throws Error (the caller
// names the node) for forms that have no latest equivalent.
void upgradeToLatestOpset(NodeForm& node, int64_t opset, UpgradeBuilder& builder);

}  // namespace pagedc
