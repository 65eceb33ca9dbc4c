// The whole compilation of an imported decoder graph into its paged, ragged form.
//
// Stages, in order: cleanup (shape-arithmetic and constant folding, canonicalisation, CSE, DCE),
// fusions (norms, activations, rotary), the attention rewrite (paged_attention + kv_cache_write,
// past/present and mask arithmetic removed, the batch flattened into the ragged token-major form),
// logits only where sampled, a final cleanup, and weight dtype conversion.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "ir/Graph.h"
#include "ir/ModelFacts.h"

namespace pagedc {

struct CompileOptions {
  int64_t blockSize = 16;
  DType dtype = DType::F32;    // weights and KV cache
  std::string target = "cpu";  // "cpu" or "cuda"
};

struct CompileResult {
  std::map<std::string, int64_t> opCountsBefore;
  std::map<std::string, int64_t> opCountsAfter;
  ModelFacts facts;
};

std::map<std::string, int64_t> countOps(const Graph& graph);

// Rewrites `graph` in place. Throws Error (naming the node and the step that failed) when an
// attention cannot be matched: never returns a silently unpaged model. `progress` is told the
// name of each stage as it starts.
CompileResult compileGraph(Graph& graph, const CompileOptions& options,
                           const std::function<void(std::string_view stage)>& progress = {});

}  // namespace pagedc
