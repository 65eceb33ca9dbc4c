// The IR's graph: SSA values with tensor types, ops in topological order, inputs, outputs, weights.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "ir/Attribute.h"
#include "ir/TensorType.h"
#include "ir/WeightStore.h"

namespace pagedc {

class Op;
struct OpDef;

class Value {
public:
  std::string name;
  TensorType type;
  Op* producer = nullptr;  // null for graph inputs
  int resultIndex = -1;
  // Derived by type inference, not printed: the integer contents of small 1-D/0-D integer values
  // when they are known symbolically (shape arithmetic such as Shape -> Gather -> Concat).
  std::optional<std::vector<Dim>> knownInts;
};

class Op {
public:
  Op(const OpDef& def, std::string nodeName) : name(std::move(nodeName)), def_(&def) {}

  const OpDef& def() const { return *def_; }
  const std::string& opName() const;
  std::string name;  // the source node's name (ONNX node name), used in diagnostics; may be empty
  std::vector<Value*> operands;  // nullptr marks an omitted optional operand
  std::vector<Value*> results;
  AttrMap attrs;

  Value* operand(size_t i) const { return i < operands.size() ? operands[i] : nullptr; }
  bool hasOperand(size_t i) const { return operand(i) != nullptr; }
  Value* result(size_t i = 0) const { return results.at(i); }

  const Attribute* attr(std::string_view key) const;
  bool hasAttr(std::string_view key) const { return attr(key) != nullptr; }
  int64_t intAttr(std::string_view key, int64_t fallback) const;
  double floatAttr(std::string_view key, double fallback) const;
  std::string stringAttr(std::string_view key, const std::string& fallback) const;
  std::vector<int64_t> intsAttr(std::string_view key, const std::vector<int64_t>& fallback = {}) const;

  // "MatMul '/model/layers.0/MatMul' (result %x)": how diagnostics name an op.
  std::string describe() const;

private:
  const OpDef* def_;
};

class Graph {
public:
  Graph();
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  std::string name = "main";
  std::vector<Value*> inputs;
  std::vector<Value*> outputs;
  std::shared_ptr<WeightStore> weights;

  const std::vector<std::unique_ptr<Op>>& ops() const { return ops_; }
  std::vector<std::unique_ptr<Op>>& mutableOps() { return ops_; }

  Value* addInput(const std::string& valueName, TensorType type);
  // Creates a value owned by the graph (a result or input is attached by the caller).
  Value* newValue(const std::string& valueName, TensorType type = {});
  // Appends an op whose results get the given names (made unique) and placeholder types;
  // run inferTypes (ir/TypeInference.h) or set types explicitly afterwards.
  Op* appendOp(std::string_view opName, std::vector<Value*> operands, AttrMap attrs,
               const std::vector<std::string>& resultNames, std::string nodeName = "");
  // Same, inserted before ops()[index].
  Op* insertOp(size_t index, std::string_view opName, std::vector<Value*> operands, AttrMap attrs,
               const std::vector<std::string>& resultNames, std::string nodeName = "");

  // Gives a value a new unique name (its old name becomes free for reuse).
  void renameValue(Value* value, const std::string& newName);
  // Removes graph inputs that nothing uses any more; returns how many.
  size_t removeUnusedInputs();

  // A value name not used yet, derived from `hint`.
  std::string uniqueName(std::string_view hint);
  Value* findValue(std::string_view valueName) const;

  std::vector<Op*> users(const Value* value) const;
  void replaceAllUsesWith(Value* from, Value* to);
  // Removes ops for which `dead` is true; their results must have no remaining users.
  template <class Predicate>
  void eraseOpsIf(Predicate dead);

  size_t numValues() const { return values_.size(); }

private:
  std::unique_ptr<Op> makeOp(std::string_view opName, std::vector<Value*> operands, AttrMap attrs,
                             const std::vector<std::string>& resultNames, std::string nodeName);
  std::vector<std::unique_ptr<Op>> ops_;
  std::vector<std::unique_ptr<Value>> values_;
  std::unordered_set<std::string> usedNames_;
};

template <class Predicate>
void Graph::eraseOpsIf(Predicate dead) {
  std::erase_if(ops_, [&](const std::unique_ptr<Op>& op) { return dead(*op); });
}

}  // namespace pagedc
