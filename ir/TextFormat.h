// The IR's textual form: a printer and a parser that round-trip exactly.
//
//   graph @main(%input_ids: i64[batch, seq]) {
//     %w = weight() {name = "embed.weight"} : f32[256, 64]
//     %x = Gather(%w, %input_ids) {axis = 0} : f32[batch, seq, 64] loc("/model/embed/Gather")
//     %a, %b = Split(%x, none) {axis = 2, num_outputs = 2} : f32[batch, seq, 32], f32[batch, seq, 32]
//     return %a, %b
//   }
//
// `none` is an omitted optional operand; loc("...") keeps the source node's name for diagnostics;
// `//` starts a comment. Weights are referenced by name: their data lives in the graph's store.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ir/Graph.h"

namespace pagedc {

std::string printGraph(const Graph& graph);
std::string printOp(const Op& op);
std::string printAttribute(const Attribute& attribute);
std::string printValueName(const std::string& name);  // "%x" or %"odd name"

// Parses one graph; errors name the source, line and column. Weights are resolved against
// `weights` when given (types are checked against the data), otherwise left as references.
std::unique_ptr<Graph> parseGraph(std::string_view text, const std::string& sourceName = "<input>",
                                  std::shared_ptr<WeightStore> weights = nullptr);

}  // namespace pagedc
