// The register function of each op family; OpRegistry calls registerAllOps once.
#pragma once

namespace pagedc {

class OpRegistry;

void registerAllOps(OpRegistry& registry);

// One per file in ir/ops/.
void registerStructuralOps(OpRegistry& registry);    // Constant, weight, Identity
void registerElementwiseOps(OpRegistry& registry);   // unary/binary math, comparison, logic, Cast, Where
void registerReductionOps(OpRegistry& registry);     // ReduceMean/Sum/Max/..., Softmax, CumSum
void registerLinearAlgebraOps(OpRegistry& registry); // MatMul, Gemm
void registerShapeOps(OpRegistry& registry);         // Reshape, Transpose, Concat, Split, Slice, Gather, ...
void registerNormalizationOps(OpRegistry& registry); // LayerNormalization, RMSNormalization, contrib norms
void registerAttentionOps(OpRegistry& registry);     // Attention, RotaryEmbedding, GroupQueryAttention, ...
void registerQuantizationOps(OpRegistry& registry);  // MatMulNBits

}  // namespace pagedc
