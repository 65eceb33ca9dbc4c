// Runs a graph on small concrete "probe" inputs to observe intermediate values, so that rewrites can
// check what a matched subgraph computes (its scale, its mask, its layout) instead of trusting its
// spelling. Probe inputs are made from the graph's own input types.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/Graph.h"

namespace pagedc {

// The roles of a decoder graph's inputs, found from their names (the exporters' shared convention:
// input_ids, attention_mask, position_ids, past_key_values.* / past_key.* / past_value.*) and
// shapes (past KV inputs are floating rank-4 [batch, kv_heads, past, head_dim]).
struct DecoderInputs {
  Value* inputIds = nullptr;
  Value* attentionMask = nullptr;
  Value* positionIds = nullptr;
  std::vector<Value*> pastKeyValues;
  std::string batchSymbol, seqSymbol, pastSymbol;  // empty when not symbolic / absent
};

// Throws an Error naming any input with no known role.
DecoderInputs classifyDecoderInputs(const Graph& graph);

struct ProbeShape {
  int64_t seq = 3;
  int64_t past = 2;
};

// Evaluates `values` for one sequence (batch 1) of `shape.seq` new tokens after `shape.past`
// cached ones, with an all-ones attention mask, positions past..past+seq-1, and deterministic
// pseudo-random past keys and values.
std::map<const Value*, Tensor> evaluateOnProbe(Graph& graph, const DecoderInputs& roles, const std::vector<Value*>& values,
                                               const ProbeShape& shape);

}  // namespace pagedc
