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
void registerShapeOps(OpRegistry& registry);         // Shape, Size, Reshape, Flatten, (Un)Squeeze, Transpose, Expand, Tile
void registerSliceOps(OpRegistry& registry);         // Slice, Concat, Split, Pad
void registerIndexingOps(OpRegistry& registry);      // Gather, GatherElements, GatherND, ScatterND, ScatterElements, NonZero
void registerGeneratorOps(OpRegistry& registry);     // ConstantOfShape, Range, EyeLike, Trilu
void registerNormalizationOps(OpRegistry& registry); // LayerNormalization, RMSNormalization, contrib norms
void registerAttentionOps(OpRegistry& registry);     // Attention, com.microsoft.MultiHeadAttention
void registerGroupQueryAttention(OpRegistry& registry); // com.microsoft.GroupQueryAttention
void registerRotaryEmbeddingOps(OpRegistry& registry); // RotaryEmbedding, com.microsoft.RotaryEmbedding
void registerGeluContribOps(OpRegistry& registry);   // com.microsoft.FastGelu, BiasGelu, QuickGelu
void registerQuantizationOps(OpRegistry& registry);  // MatMulNBits
void registerPagedAttentionOps(OpRegistry& registry); // kv_cache_write, paged_attention (the attention rewrite's output)
void registerFusedOps(OpRegistry& registry);         // rms_norm, layer_norm, gelu, silu, gated_act, rope (the fusions' output)

}  // namespace pagedc
