// The single declaration of an op: name, arity, attributes, shape rule (which also verifies) and
// reference implementation. Every op of the IR is declared once, in ir/ops/.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/Graph.h"

namespace pagedc {

struct AttrSpec {
  std::string name;
  AttrKind kind;
  bool required = false;
};

// What a shape rule sees: the op, its operands' types and, where known, their contents.
class InferContext {
public:
  InferContext(const Op& op, Graph& graph) : op_(op), graph_(graph) {}

  const Op& op() const { return op_; }
  size_t numOperands() const { return op_.operands.size(); }
  bool hasOperand(size_t i) const { return op_.hasOperand(i); }
  const TensorType& operandType(size_t i) const;
  // Rank of operand i; throws a diagnostic naming the operand when it is unknown.
  size_t operandRank(size_t i) const;
  // The operand's data when it is produced by a Constant op or a `weight` op with loaded data.
  const Tensor* constantOperand(size_t i) const;
  // The operand's integer contents when known symbolically (constants, shape arithmetic).
  std::optional<std::vector<Dim>> operandInts(size_t i) const;
  // Same, but only when every element is a known constant.
  std::optional<std::vector<int64_t>> operandConstInts(size_t i) const;

  // A dimension nobody can know until run time (a fresh symbol, printed as _uN).
  Dim unknownDim();
  Shape unknownShape(size_t rank);

  void setResult(size_t i, TensorType type, std::optional<std::vector<Dim>> knownInts = std::nullopt);
  size_t numResults() const { return op_.results.size(); }

  // Throws an Error that names the op: error("operand 1 must be i64, got f32").
  template <class... Parts>
  [[noreturn]] void error(Parts&&... parts) const {
    fail(op_.describe(), ": ", std::forward<Parts>(parts)...);
  }

  // Fresh-symbol numbering is per inference run; TypeInference sets the starting point.
  static int& freshCounter();

private:
  const Op& op_;
  Graph& graph_;
};

// What a reference implementation sees. Inputs arrive in canonical storage: every floating-point
// tensor as f32, every integer tensor as i64, bool as bool; outputs must use the same convention
// (the declared dtype of each result is in op().results[i]->type.dtype for ops such as Cast).
class EvalContext {
public:
  EvalContext(const Op& op, std::vector<Tensor> inputs) : op_(op), inputs_(std::move(inputs)), outputs_(op.results.size()) {}

  const Op& op() const { return op_; }
  size_t numInputs() const { return inputs_.size(); }
  bool hasInput(size_t i) const { return i < inputs_.size() && !inputs_[i].isNull(); }
  const Tensor& input(size_t i) const;
  void setOutput(size_t i, Tensor tensor);
  std::vector<Tensor>& outputs() { return outputs_; }
  DType resultDType(size_t i) const { return op_.results.at(i)->type.dtype; }

  template <class... Parts>
  [[noreturn]] void error(Parts&&... parts) const {
    fail(op_.describe(), ": ", std::forward<Parts>(parts)...);
  }

private:
  const Op& op_;
  std::vector<Tensor> inputs_;
  std::vector<Tensor> outputs_;
};

struct OpDef {
  std::string name;  // "MatMul", "com.microsoft.GroupQueryAttention", "weight"
  int minOperands = 0;
  int maxOperands = 0;  // -1: variadic
  int minResults = 1;
  int maxResults = 1;  // -1: variadic
  std::vector<AttrSpec> attrs;
  std::function<void(InferContext&)> infer;  // sets every result's type; throws on invalid operands
  std::function<void(EvalContext&)> evaluate;  // the reference implementation
  std::string summary;  // one line, shown by `pagedc-opt --list-ops`
};

class OpRegistry {
public:
  static const OpRegistry& instance();
  const OpDef* find(std::string_view name) const;
  const OpDef& get(std::string_view name) const;  // throws naming the unknown op
  std::vector<const OpDef*> all() const;

  void add(OpDef def);  // used by the register* functions in ir/ops/

private:
  OpRegistry();
  std::vector<std::unique_ptr<OpDef>> defs_;
};

// Broadcasting of two shapes by the numpy rule; throws on incompatible constant dims.
std::optional<Shape> broadcastShapes(const std::optional<Shape>& a, const std::optional<Shape>& b, InferContext& ctx);
// Normalises a possibly negative axis against a rank, with a diagnostic naming the attribute.
int64_t normalizeAxis(int64_t axis, int64_t rank, const Op& op, std::string_view what = "axis");

}  // namespace pagedc
