// The attention rewrite and the ragged I/O rewrite, which only make sense together: every attention
// becomes kv_cache_write + paged_attention over per-layer block caches, the past/present KV I/O and
// the attention-mask arithmetic disappear, and the batch becomes one token-major ragged sequence
// driven by block tables and slot mappings (ir/RaggedInterface.h).
#pragma once

#include "ir/Graph.h"
#include "ir/ModelFacts.h"

namespace pagedc {

struct PagedRewriteOptions {
  int64_t blockSize = 16;
  DType kvDType = DType::F32;
};

// Rewrites `graph` in place and returns what it learned about the model. Throws Error naming the
// attention (its Softmax or attention op) and the step that failed.
ModelFacts rewriteToPagedForm(Graph& graph, const PagedRewriteOptions& options);

}  // namespace pagedc
