// The list of passes pagedc-opt can run by name.
#include "passes/PassRegistry.h"

#include "ir/TypeInference.h"
#include "ir/Verifier.h"
#include "passes/Canonicalize.h"
#include "passes/Cleanup.h"
#include "passes/CommonSubexpressionElimination.h"
#include "passes/CompilePipeline.h"
#include "passes/ConstantFolding.h"
#include "passes/DeadCodeElimination.h"
#include "passes/FuseActivations.h"
#include "passes/FuseNormalization.h"
#include "passes/FuseRotary.h"
#include "passes/Fusion.h"
#include "passes/LogitsOnlyWhereSampled.h"
#include "passes/PagedAttentionRewrite.h"
#include "passes/ShapeArithmeticFolding.h"

namespace pagedc {

const std::vector<PassInfo>& allPasses() {
  static const std::vector<PassInfo> passes = {
      {"infer-types", "recompute every result type with the ops' shape rules", [](Graph& g) { inferTypes(g); }},
      {"verify", "check the graph's invariants", [](Graph& g) { verifyOrThrow(g); }},
      {"dce", "remove ops whose results nothing uses", [](Graph& g) { eliminateDeadCode(g); }},
      // The cleanup passes read inferred types and leave them re-inferred (fresh symbols renumbered).
      {"fold-shape-arith", "replace integer values whose contents are known constants by Constant ops",
       [](Graph& g) { inferTypes(g); foldShapeArithmetic(g); inferTypes(g); }},
      {"fold-constants", "evaluate ops whose operands are all constants (small weights included)",
       [](Graph& g) { inferTypes(g); foldConstants(g); inferTypes(g); }},
      {"canonicalize", "remove no-op ops and merge inverse or composable pairs",
       [](Graph& g) { inferTypes(g); canonicalize(g); inferTypes(g); }},
      {"cse", "merge ops computing the same thing", [](Graph& g) { inferTypes(g); eliminateCommonSubexpressions(g); inferTypes(g); }},
      {"cleanup", "fold-shape-arith, fold-constants, canonicalize, cse and dce to a fixed point", [](Graph& g) { runCleanup(g); }},
      {"paged-rewrite", "rewrite attention into kv_cache_write + paged_attention and the I/O into the ragged form (block size 16, f32 cache)",
       [](Graph& g) { rewriteToPagedForm(g, {}); }},
      {"logits-only-where-sampled", "run the LM head only on the tokens named by logits_indices", [](Graph& g) { computeLogitsOnlyWhereSampled(g); }},
      {"fuse-norms", "rms_norm / layer_norm (with the residual add) from every exported spelling; DCE after", [](Graph& g) { inferTypes(g); fuseNormalization(g); eliminateDeadCode(g); }},
      {"fuse-activations", "gelu, silu and gated_act from the exported chains; DCE after", [](Graph& g) { inferTypes(g); fuseActivations(g); eliminateDeadCode(g); }},
      {"fuse-rotary", "rope from x*cos + rotate_half(x)*sin and the RotaryEmbedding ops (tables for 4096 positions when computed); DCE after",
       [](Graph& g) { inferTypes(g); fuseRotary(g); eliminateDeadCode(g); }},
      {"fuse", "fuse-norms, fuse-activations and fuse-rotary, then DCE", [](Graph& g) { inferTypes(g); runFusions(g); }},
      {"compile", "the whole compile pipeline with default options", [](Graph& g) { compileGraph(g, {}); }},
  };
  return passes;
}

const PassInfo* findPass(std::string_view name) {
  for (const auto& pass : allPasses())
    if (pass.name == name) return &pass;
  return nullptr;
}

}  // namespace pagedc
