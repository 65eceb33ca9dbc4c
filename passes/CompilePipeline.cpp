// The compile pipeline: each stage is a pass of its own; this file only orders them.
#include "passes/CompilePipeline.h"

#include "ir/Error.h"
#include "ir/TypeInference.h"
#include "ir/Verifier.h"
#include "passes/Cleanup.h"
#include "passes/ConvertWeightDType.h"
#include "passes/DeadCodeElimination.h"
#include "passes/Fusion.h"
#include "passes/LogitsOnlyWhereSampled.h"
#include "passes/PagedAttentionRewrite.h"

namespace pagedc {

std::map<std::string, int64_t> countOps(const Graph& graph) {
  std::map<std::string, int64_t> counts;
  for (const auto& op : graph.ops()) ++counts[op->opName()];
  return counts;
}

CompileResult compileGraph(Graph& graph, const CompileOptions& options, const std::function<void(std::string_view)>& progress) {
  auto stage = [&](std::string_view name) {
    if (progress) progress(name);
  };
  if (options.blockSize <= 0 || (options.blockSize & (options.blockSize - 1)) != 0)
    fail("block size ", options.blockSize, " must be a power of two");
  if (options.target != "cpu" && options.target != "cuda") fail("unknown target '", options.target, "' (cpu or cuda)");
  CompileResult result;
  result.opCountsBefore = countOps(graph);

  stage("cleanup");
  runCleanup(graph);

  stage("fusions");
  runFusions(graph);

  stage("attention rewrite");
  result.facts = rewriteToPagedForm(graph, {.blockSize = options.blockSize, .kvDType = options.dtype});

  // Rotary parameters of fused `rope` ops (GroupQueryAttention's were recorded by the rewrite).
  for (const auto& op : graph.ops()) {
    if (op->opName() != "rope") continue;
    result.facts.rotary.present = true;
    result.facts.rotary.interleaved = op->intAttr("interleaved", 0) != 0;
    result.facts.rotary.rotaryDim = op->intAttr("rotary_dim", 0);
    const TensorType& table = op->operands[2]->type;
    if (table.hasRank() && table.rank() == 2)
      if (auto rows = table.dim(0).constant()) result.facts.maxPositions = *rows;
  }

  stage("logits only where sampled");
  computeLogitsOnlyWhereSampled(graph);

  stage("final cleanup");
  runCleanup(graph);

  // Last, so no folding turns the casts of narrow weights back into wide weights.
  stage("weight dtype");
  convertWeightDType(graph, options.dtype);
  eliminateDeadCode(graph);
  verifyOrThrow(graph);
  result.facts.weightDType = options.dtype;
  result.opCountsAfter = countOps(graph);
  return result;
}

}  // namespace pagedc
