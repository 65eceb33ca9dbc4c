// Fuses rotary position embeddings (rotate-half, interleaved, partial; ONNX/ORT RotaryEmbedding) into rope.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "ir/Graph.h"

namespace pagedc {

struct FuseRotaryOptions {
  // Rows of the materialised cos/sin tables when the export computes them at run time from the
  // positions (inv_freq x position): the graph carries no max_position_embeddings. Exports that
  // gather from a cache initializer use that cache's row count instead.
  int64_t maxPositions = 4096;
};

// Rewrites x * cos + rotate_half(x) * sin (rotate_half = Concat(-x2, x1) of the two halves of the
// last axis, or the interleaved pairs form; optionally on the first rotary_dim dims with the rest
// concatenated back) into rope(x [batch, heads, seq, head_dim], positions [batch, seq], cos_table,
// sin_table [max_positions, rotary_dim / 2]), inserting Transposes when x is [batch, seq, heads, d].
//
// The tables come from evaluating the export's own cos/sin subgraph, which must be a function of
// one [batch, seq] integer value (the positions) and constants only: it is run once at positions
// 0..max_positions-1 with the reference kernels, so inv_freq, rope scaling and attention-scaling
// factors baked into the graph are preserved whatever their form. A second evaluation at scattered
// positions checks the subgraph really is a per-position lookup before anything is rewritten.
// ONNX RotaryEmbedding (with position_ids) and com.microsoft.RotaryEmbedding map directly.
// GroupQueryAttention's internal rotary is left alone. Leaves the replaced chains dead (run DCE).
std::map<std::string, int64_t> fuseRotary(Graph& graph, const FuseRotaryOptions& options = {});

}  // namespace pagedc
