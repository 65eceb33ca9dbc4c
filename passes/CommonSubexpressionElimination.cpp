// cse: merges ops that compute the same thing (same op, operands, attributes) into the first one.
#include "passes/CommonSubexpressionElimination.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "passes/Cleanup.h"

namespace pagedc {

namespace {

// A hash that equal ops share; collisions are resolved by sameComputation.
size_t hashOp(const Op& op) {
  size_t h = std::hash<std::string>()(op.opName());
  auto mix = [&h](size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  for (const Value* operand : op.operands) mix(std::hash<const Value*>()(operand));
  mix(op.results.size());
  // Constants have no operands: their contents tell them apart.
  if (const Attribute* value = op.attr("value"); value && value->kind() == AttrKind::Tensor) {
    const Tensor& t = value->asTensor();
    mix(static_cast<size_t>(t.dtype()));
    for (int64_t d : t.shape()) mix(static_cast<size_t>(d));
    std::string_view bytes(reinterpret_cast<const char*>(t.bytes()), std::min<size_t>(t.byteSize(), 256));
    mix(std::hash<std::string_view>()(bytes));
  }
  if (const Attribute* name = op.attr("name"); name && name->kind() == AttrKind::String) mix(std::hash<std::string>()(name->asString()));
  return h;
}

// Integer values whose contents type inference knows symbolically (shape arithmetic such as
// [batch, seq, -1, 16]) are equal whenever their known contents are: exporters recompute the same
// shape vector from a different Shape op in every layer.
std::optional<std::string> knownContentsKey(const Value& value) {
  if (!value.knownInts || !isInteger(value.type.dtype) || !value.type.hasRank() || value.type.rank() > 1) return std::nullopt;
  std::string key = value.type.str();
  for (const Dim& d : *value.knownInts) key += "," + d.str();
  return key;
}

bool sameComputation(const Op& a, const Op& b) {
  return a.opName() == b.opName() && a.operands == b.operands && a.results.size() == b.results.size() && a.attrs == b.attrs;
}

}  // namespace

size_t eliminateCommonSubexpressions(Graph& graph) {
  size_t merged = 0;
  std::unordered_map<size_t, std::vector<Op*>> seen;
  std::unordered_map<std::string, Value*> valuesByContents;
  // In order, so that the operands of a later op already point at the survivors of earlier merges.
  for (const auto& opPtr : graph.ops()) {
    Op& op = *opPtr;
    if (hasSideEffects(op) || op.results.empty()) continue;
    std::vector<Op*>& bucket = seen[hashOp(op)];
    Op* earlier = nullptr;
    for (Op* candidate : bucket)
      if (sameComputation(*candidate, op)) earlier = candidate;
    if (!earlier) {
      bucket.push_back(&op);
      for (Value* result : op.results) {
        auto key = knownContentsKey(*result);
        if (!key) continue;
        auto [it, inserted] = valuesByContents.emplace(*key, result);
        // The earlier value is defined before every use of this one (ops are in order).
        if (!inserted && replaceKeepingOutputNames(graph, result, it->second)) ++merged;
      }
      continue;
    }
    bool possible = true;
    for (size_t i = 0; i < op.results.size(); ++i) possible = possible && canReplaceKeepingOutputNames(graph, op.results[i], earlier->results[i]);
    if (!possible) continue;  // both are graph outputs: each keeps its own name
    for (size_t i = 0; i < op.results.size(); ++i) replaceKeepingOutputNames(graph, op.results[i], earlier->results[i]);
    ++merged;
  }
  return merged;
}

}  // namespace pagedc
