// Finds every attention of an imported decoder graph and works out what it computes: which values
// are the queries and the new tokens' keys and values, how many heads, the scale, and which graph
// outputs are its KV cache. Decomposed attentions (the MatMul/Softmax/MatMul chains of eager and
// SDPA exports) are recognised by shape and checked numerically on probe inputs; attention ops
// (com.microsoft.GroupQueryAttention) are read from their operands and attributes.
#pragma once

#include <string>
#include <vector>

#include "ir/Graph.h"
#include "passes/ProbeEvaluation.h"

namespace pagedc {

struct MatchedAttention {
  std::string where;           // the Softmax or attention op, as diagnostics name it
  Op* anchor = nullptr;        // the op after which the paged ops are inserted
  Value* output = nullptr;     // the value the paged attention output replaces
  bool packedLayout = false;   // tensors are [batch, seq, heads * head_dim] instead of [batch, heads, seq, head_dim]
  Value* query = nullptr;      // already scaled as the graph scales it before the scores
  Value* keyNew = nullptr;     // the new tokens' keys (after rotary) in the same layout, kv heads
  Value* valueNew = nullptr;
  bool keySeqMajor = false;    // keyNew is [batch, seq, kv_heads, head_dim] rather than heads-major
  bool valueSeqMajor = false;
  int64_t heads = 0;
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  double scale = 1.0;          // multiplies query . key
  double softcap = 0.0;
  int64_t slidingWindow = -1;  // keys visible to a query, itself included; -1 for all
  // Rotary embedding the attention op applies itself (GroupQueryAttention with do_rotary).
  Value* cosCache = nullptr;
  Value* sinCache = nullptr;
  bool rotaryInterleaved = false;
};

// Throws Error naming the Softmax (or attention op) and the step that did not match; a graph with
// no attention at all is an error too.
std::vector<MatchedAttention> matchAttentions(Graph& graph, const DecoderInputs& roles);

}  // namespace pagedc
