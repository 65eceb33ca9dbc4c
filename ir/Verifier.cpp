// Graph verification: structure first, then each op's shape rule against the declared types.
#include "ir/Verifier.h"

#include <set>

#include "ir/Error.h"
#include "ir/OpDef.h"

namespace pagedc {

namespace {
bool isFresh(const Dim& dim) {
  for (const auto& name : dim.symbols())
    if (name.rfind("_u", 0) == 0) return true;
  return false;
}

// Declared and inferred types agree when dtypes and ranks match and no dimension contradicts.
// A fresh (unknowable) symbol on either side agrees with anything.
std::string typeMismatch(const TensorType& declared, const TensorType& inferred) {
  if (declared.dtype != inferred.dtype)
    return std::string("element type ") + std::string(dtypeName(declared.dtype)) + " but the shape rule gives " + std::string(dtypeName(inferred.dtype));
  if (!declared.shape || !inferred.shape) return "";
  if (declared.rank() != inferred.rank())
    return "rank " + std::to_string(declared.rank()) + " but the shape rule gives " + inferred.str();
  for (size_t i = 0; i < declared.rank(); ++i) {
    const Dim& d = declared.dim(i);
    const Dim& r = inferred.dim(i);
    if (d == r || isFresh(d) || isFresh(r)) continue;
    return "dimension " + std::to_string(i) + " is " + d.str() + " but the shape rule gives " + r.str();
  }
  return "";
}
}  // namespace

std::vector<std::string> verifyGraph(Graph& graph) {
  std::vector<std::string> problems;
  std::set<const Value*> defined(graph.inputs.begin(), graph.inputs.end());
  std::set<std::string> names;
  for (const Value* input : graph.inputs)
    if (!names.insert(input->name).second) problems.push_back("graph input %" + input->name + " is declared twice");

  for (const auto& opPtr : graph.ops()) {
    Op& op = *opPtr;
    const OpDef& def = op.def();
    size_t problemsBefore = problems.size();
    int numOperands = static_cast<int>(op.operands.size());
    if (numOperands < def.minOperands || (def.maxOperands >= 0 && numOperands > def.maxOperands))
      problems.push_back(op.describe() + ": takes " + std::to_string(def.minOperands) +
                         (def.maxOperands < 0 ? " or more" : (def.maxOperands == def.minOperands ? "" : " to " + std::to_string(def.maxOperands))) +
                         " operands, got " + std::to_string(numOperands));
    int numResults = static_cast<int>(op.results.size());
    if (numResults < def.minResults || (def.maxResults >= 0 && numResults > def.maxResults))
      problems.push_back(op.describe() + ": defines " + std::to_string(numResults) + " results, the op has " +
                         std::to_string(def.minResults) + (def.maxResults == def.minResults ? "" : (def.maxResults < 0 ? " or more" : " to " + std::to_string(def.maxResults))));
    for (size_t i = 0; i < op.operands.size(); ++i) {
      const Value* operand = op.operands[i];
      if (operand && !defined.count(operand))
        problems.push_back(op.describe() + ": operand " + std::to_string(i) + " (%" + operand->name + ") is used before it is defined");
    }
    for (const AttrSpec& spec : def.attrs) {
      const Attribute* a = op.attr(spec.name);
      if (!a && spec.required) problems.push_back(op.describe() + ": missing required attribute '" + spec.name + "'");
      bool floatFromInt = spec.kind == AttrKind::Float && a && a->kind() == AttrKind::Int;
      if (a && a->kind() != spec.kind && !floatFromInt)
        problems.push_back(op.describe() + ": attribute '" + spec.name + "' must be " + std::string(attrKindName(spec.kind)) + ", got " + std::string(attrKindName(a->kind())));
    }
    for (const auto& [key, value] : op.attrs) {
      bool known = false;
      for (const AttrSpec& spec : def.attrs) known = known || spec.name == key;
      if (!known) problems.push_back(op.describe() + ": unknown attribute '" + key + "'");
    }
    for (const Value* result : op.results) {
      if (!names.insert(result->name).second) problems.push_back(op.describe() + ": value %" + result->name + " is defined twice");
      defined.insert(result);
    }
    if (problems.size() != problemsBefore) continue;

    // Run the shape rule and compare with what the graph declares, then restore the declaration.
    std::vector<TensorType> declared;
    for (const Value* result : op.results) declared.push_back(result->type);
    try {
      InferContext ctx(op, graph);
      def.infer(ctx);
      for (size_t i = 0; i < op.results.size(); ++i) {
        std::string mismatch = typeMismatch(declared[i], op.results[i]->type);
        if (!mismatch.empty())
          problems.push_back(op.describe() + ": result " + std::to_string(i) + " (%" + op.results[i]->name + ") is declared " +
                             declared[i].str() + ": " + mismatch);
      }
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
    for (size_t i = 0; i < op.results.size(); ++i) op.results[i]->type = declared[i];
  }
  for (size_t i = 0; i < graph.outputs.size(); ++i) {
    const Value* output = graph.outputs[i];
    if (!output) problems.push_back("graph output " + std::to_string(i) + " is null");
    else if (!defined.count(output)) problems.push_back("graph output %" + output->name + " is not defined by the graph");
  }
  return problems;
}

void verifyOrThrow(Graph& graph) {
  auto problems = verifyGraph(graph);
  if (problems.empty()) return;
  std::string message = "verifier found " + std::to_string(problems.size()) + " problem" + (problems.size() == 1 ? "" : "s") + ":";
  for (const auto& p : problems) message += "\n  " + p;
  throw Error(message);
}

}  // namespace pagedc
