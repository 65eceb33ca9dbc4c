// The catalog of pagedc's CUDA kernel templates (docs/KERNELS.md's table): for each kernel its
// header, its params struct and its template parameters with their defaults and validation, and
// the grid of variants CI compiles. KernelKey::parse and makeKernelKey go through it, so every key
// anywhere in pagedc names a variant that exists and is valid.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/kernels/KernelKey.h"

namespace pagedc {

// What values a template parameter takes, and how it is spelled in the C++ instantiation.
enum class KernelParamKind {
  DType,        // f32 | f16 | bf16 -> float | pagedc::f16 | pagedc::bf16 (typename T, C, TI, TO)
  Threads,      // NUM_THREADS: a multiple of 32 in [32, 1024]
  HeadDim,      // HEAD_DIM: even, in [8, 512]
  BlockSize,    // BLOCK_SIZE: a power of two in [1, 256]
  QPerKv,       // Q_PER_KV: >= 1
  Partition,    // PARTITION_SIZE: 0 (one pass) or a positive multiple of the key's block
  QueryTile,    // QUERY_TILE: >= 1
  Interleaved,  // INTERLEAVED (bool): 0 | 1 -> false | true
  Activation,   // ACT: silu | gelu | gelu_tanh | relu -> 0 | 1 | 2 | 3
  BinaryOp,     // OP: add | sub | mul | div -> 0 | 1 | 2 | 3
};

struct KernelParamSpec {
  std::string name;  // "dtype", "cache", "head_dim", ... (the key's spelling)
  KernelParamKind kind;
  // The value parse() and makeKernelKey() fill in when the parameter is not given; "@dtype" means
  // "the value of the key's dtype parameter" (the cache type defaults to the activation type).
  std::string defaultValue;
};

struct KernelSpec {
  std::string name;        // "paged_attention_decode"
  std::string header;      // "paged_attention.cuh"
  std::string paramsType;  // "pagedc::PagedAttentionParams"
  std::vector<KernelParamSpec> params;  // in template order
};

// Every kernel of docs/KERNELS.md's table, in the table's order.
const std::vector<KernelSpec>& kernelCatalog();
// The kernel's spec; throws Error listing the known kernels when there is none of that name.
const KernelSpec& kernelSpec(std::string_view kernel);

// A key from named values: missing parameters get their defaults, every value is validated;
// throws Error naming the kernel and the parameter for an unknown parameter or a bad value.
KernelKey makeKernelKey(std::string_view kernel, const std::map<std::string, std::string>& values);
// Checks a key built by hand (all parameters present, in template order, values valid); throws
// Error naming the kernel and the parameter otherwise.
void validateKernelKey(const KernelKey& key);

// The CI grid: dtypes f32/f16/bf16 x head dims 64, 80, 96, 112, 128, 256 x blocks 8, 16, 32 x
// q_per_kv 1, 2, 4, 8 for attention (decode one-pass and partitioned, prefill; cache = dtype,
// default threads, partition and query tile), the reduce per dtype x head dim, and every other
// kernel per dtype / option with its default threads. In the catalog's order, no duplicates.
std::vector<KernelKey> kernelGrid();

}  // namespace pagedc
