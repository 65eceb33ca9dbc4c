// The compile pipeline: each stage is a pass of its own; this file only orders them.
#include "passes/CompilePipeline.h"

#include <set>

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

namespace {
// The kernel specialisations the compiled graph needs, one key per distinct variant: everything
// that changes the generated code (codegen/ turns each key into a kernel).
std::vector<std::string> collectKernelVariants(const Graph& graph, const ModelFacts& facts) {
  std::set<std::string> keys;
  auto lastDim = [](const Value* v) {
    return v && v->type.hasRank() && v->type.rank() ? v->type.dim(v->type.rank() - 1).str() : std::string("?");
  };
  const std::string kv = std::string(dtypeName(facts.kvDType));
  for (const auto& op : graph.ops()) {
    const std::string& name = op->opName();
    if (name == "paged_attention") {
      keys.insert("paged_attention:kv=" + kv + ",head_dim=" + std::to_string(facts.headDim) + ",block=" + std::to_string(facts.blockSize) +
                  ",q_per_kv=" + std::to_string(facts.numKvHeads ? facts.numHeads / facts.numKvHeads : 0) +
                  (op->hasAttr("softcap") ? ",softcap" : "") + (op->hasAttr("sliding_window") ? ",window" : ""));
    } else if (name == "kv_cache_write") {
      keys.insert("kv_cache_write:kv=" + kv + ",head_dim=" + std::to_string(facts.headDim) + ",block=" + std::to_string(facts.blockSize));
    } else if (name == "rope") {
      keys.insert("rope:head_dim=" + lastDim(op->operands[0]) + ",rotary_dim=" + std::to_string(op->intAttr("rotary_dim", 0)) +
                  ",interleaved=" + std::to_string(op->intAttr("interleaved", 0)));
    } else if (name == "RotaryEmbedding") {
      keys.insert("rope:hidden=" + lastDim(op->operands[0]) + ",interleaved=" + std::to_string(op->intAttr("interleaved", 0)));
    } else if (name == "rms_norm" || name == "layer_norm") {
      keys.insert(name + ":hidden=" + lastDim(op->operands[0]) + (op->results.size() > 1 ? ",residual" : ""));
    } else if (name == "gated_act" || name == "gelu") {
      keys.insert(name + ":" + op->stringAttr("activation", op->stringAttr("approximate", "none")));
    } else if (name == "silu") {
      keys.insert("silu");
    }
  }
  return {keys.begin(), keys.end()};
}
}  // namespace

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

  // A learned position table (GPT-2's wpe, OPT's offset one) bounds the positions too: a Gather
  // from a weight by the positions input, perhaps plus a constant offset.
  for (const auto& op : graph.ops()) {
    if (op->opName() != "Gather" || !op->operands[0]->producer || op->operands[0]->producer->opName() != "weight") continue;
    int64_t offset = 0;
    const Value* index = op->operands[1];
    for (int steps = 0; steps < 8 && index && index->producer; ++steps) {
      const Op* producer = index->producer;
      if (producer->opName() == "Add") {
        const Op* other = producer->operands[1]->producer;
        if (!other || other->opName() != "Constant" || other->attr("value")->asTensor().numElements() != 1) break;
        offset += other->attr("value")->asTensor().elementAsInt(0);
        index = producer->operands[0];
      } else if (producer->opName() == "Unsqueeze" || producer->opName() == "Cast" || producer->opName() == "Identity" || producer->opName() == "Reshape") {
        index = producer->operands[0];
      } else {
        break;
      }
    }
    const TensorType& table = op->operands[0]->type;
    if (index && index->name == "positions" && table.hasRank() && table.rank() == 2)
      if (auto rows = table.dim(0).constant()) result.facts.maxPositions = *rows - offset;
  }

  stage("logits only where sampled");
  computeLogitsOnlyWhereSampled(graph);

  // The hidden size: the width of the states the LM head reads.
  for (const auto& op : graph.ops()) {
    if (op->opName() != "Gather" || op->operands.size() < 2 || !op->operands[1] || op->operands[1]->name != "logits_indices") continue;
    const TensorType& states = op->operands[0]->type;
    if (states.hasRank() && states.rank() >= 1)
      if (auto width = states.dim(states.rank() - 1).constant()) result.facts.hiddenSize = *width;
  }

  stage("final cleanup");
  runCleanup(graph);

  // Last, so no folding turns the casts of narrow weights back into wide weights.
  stage("weight dtype");
  convertWeightDType(graph, options.dtype);
  eliminateDeadCode(graph);
  verifyOrThrow(graph);
  result.facts.weightDType = options.dtype;
  result.facts.kernelVariants = collectKernelVariants(graph, result.facts);
  result.opCountsAfter = countOps(graph);
  return result;
}

}  // namespace pagedc
