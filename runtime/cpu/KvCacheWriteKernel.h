// CPU kernel of kv_cache_write (ir/ops/PagedAttentionOps.cpp): stores each token's key and value
// rows into its slot of the paged caches [num_blocks, kv_heads, block_size, head_dim], in place.
#pragma once

#include <cstdint>

#include "ir/DType.h"

namespace pagedc::cpu {

struct KvCacheWriteArgs {
  // [numTokens, kvHeads, headDim] f32 rows; token t's row starts at key + t * keyTokenStride
  // (0: kvHeads * headDim, the dense layout; a larger stride reads a slice of a fused QKV output).
  const float* key = nullptr;
  const float* value = nullptr;
  int64_t keyTokenStride = 0;
  int64_t valueTokenStride = 0;
  // The caches, [numBlocks, kvHeads, blockSize, headDim] of cacheType (F32, BF16 or F16).
  void* keyCache = nullptr;
  void* valueCache = nullptr;
  DType cacheType = DType::F32;
  // One slot per token: block * blockSize + offset; a negative slot is padding and writes nothing.
  const int64_t* slots = nullptr;
  int64_t numTokens = 0;
  int64_t numBlocks = 0;
  int64_t kvHeads = 0;
  int64_t blockSize = 0;
  int64_t headDim = 0;
};

// Writes every token with a slot >= 0. 16-bit caches get the values rounded to nearest even (the
// same bits as ir/HalfFloat.h's floatToBf16 / floatToF16, NaN included). Throws pagedc::Error,
// before writing anything, naming the first token whose slot is >= numBlocks * blockSize, or on
// bad geometry. Threads over tokens with OpenMP when the write is large.
void kvCacheWrite(const KvCacheWriteArgs& args);

}  // namespace pagedc::cpu
