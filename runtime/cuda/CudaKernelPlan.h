// Which CUDA kernel runs each op of a compiled graph: the op -> kernel mapping of the CUDA backend,
// shared by the executor (which launches them) and `pagedc kernels list` (which names the variants a
// model needs so they can be built ahead of time). Needs no GPU.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "ir/DType.h"
#include "ir/Graph.h"
#include "ir/ModelFacts.h"
#include "runtime/kernels/KernelKey.h"

namespace pagedc::cuda {

// The choices that pick kernel variants beyond what the graph fixes. 0 for a thread count or tile
// means the catalog's default (runtime/kernels/KernelCatalog.h).
struct CudaKernelChoices {
  // T: the dtype every floating-point activation (and weight) has on the device. The compiled graph
  // computes in f32 with 16-bit weights cast up; the backend runs in the artifact's dtype instead
  // (casts between floating types become views), so f16/bf16 artifacts run at 16-bit bandwidth.
  DType activation = DType::F32;
  int64_t elementwiseThreads = 0;  // activation, elementwise_binary, strided_copy, cast
  int64_t rowThreads = 0;          // rms_norm, layer_norm, rope, embedding, kv_cache_write
  int64_t attentionThreads = 0;    // paged_attention_decode / _prefill / _reduce
  int64_t blockCopyThreads = 0;    // copy_blocks, swap_blocks
  // Split-K decode: keys per partition (a multiple of the block size; 0 never splits). Contexts up
  // to one partition run the one-pass decode kernel; longer ones the partitioned kernel + reduce.
  int64_t partitionSize = 512;
  int64_t queryTile = 0;  // prefill: query tokens per CTA

  // activation = the artifact's weight dtype (f32, f16 or bf16).
  static CudaKernelChoices forModel(const ModelFacts& facts);
};

// Every kernel variant the CUDA backend launches for `graph` (sorted, unique): the kernels of its
// ops (both decode variants, one-pass and split-K + reduce, and the prefill kernel per attention
// geometry), the block copy kernels the runner uses, and the cast of the logits to f32. Throws
// Error naming the op, its node and why when the backend cannot run an op the outputs need
// (suggesting --device cpu).
std::vector<KernelKey> requiredKernels(const Graph& graph, const CudaKernelChoices& choices);

// ---- The plan the executor follows (exposed for it and for tests) ------------------------------

enum class CudaStepKind {
  View,            // Reshape, Squeeze, Unsqueeze, Flatten, Identity, Cast within float or within int: no work
  Embedding,       // Gather of rows of a static table (axis 0) by dynamic ids
  GatherRows,      // Gather of rows of a dynamic tensor whose leading dims are 1 (logits_indices)
  Gemm,            // MatMul / Gemm with a static weight: cuBLASLt
  Norm,            // rms_norm / layer_norm (+ residual, sum out)
  Rope,            // rope (x [batch, heads, seq, head_dim])
  OnnxRotary,      // RotaryEmbedding (4-D, or 3-D token-major with num_heads)
  Activation,      // silu, gelu, Relu; gated_act (with up)
  Binary,          // Add, Sub, Mul, Div with broadcasting
  Transpose,       // strided_copy
  Slice,           // strided_copy (static starts/ends/axes/steps)
  Concat,          // strided_copy per input
  Expand,          // strided_copy with zero strides on broadcast axes
  Split,           // strided_copy per result
  ZeroFill,        // ConstantOfShape with a zero value: memset
  KvCacheWrite,    // results alias the caches
  PagedAttention,  // decode (one-pass / split-K + reduce) and prefill
  HostCompute,     // integer arithmetic on step inputs and shapes (positions + 2, Shape): on the host each step
};

struct CudaStep {
  const Op* op = nullptr;
  CudaStepKind kind = CudaStepKind::View;
  std::vector<KernelKey> kernels;  // the variants this step may launch
  int act = 0;                     // Activation: 0 silu, 1 gelu, 2 gelu_tanh, 3 relu
  bool gated = false;              // Activation: gated_act (operand 1 multiplies)
  int binaryOp = 0;                // Binary: 0 add, 1 sub, 2 mul, 3 div
  int residualOperand = -1;        // Norm
  int biasOperand = -1;            // Norm (layer_norm's bias)
};

struct CudaGraphPlan {
  std::unordered_set<const Value*> staticValues;  // computed on the host at load
  std::vector<CudaStep> steps;                    // graph order; only what the outputs need
  std::vector<KernelKey> runnerKernels;           // copy_blocks, swap_blocks, the logits cast
  DType activation = DType::F32;                  // T
  DType cache = DType::F32;                       // C: the KV caches' dtype
};

// The operand indices a step reads as data (a Reshape's shape operand or a Slice's constants are
// not: shapes are planned from types, constants read on the host at load).
std::vector<size_t> dataOperands(const CudaStep& step);

// Classifies every op the outputs need; throws Error as requiredKernels does.
CudaGraphPlan planCudaGraph(const Graph& graph, const CudaKernelChoices& choices);

}  // namespace pagedc::cuda
