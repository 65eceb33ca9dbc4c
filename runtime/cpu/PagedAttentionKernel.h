// CPU kernel of paged_attention (ir/ops/PagedAttentionOps.cpp): causal attention of each sequence's
// query tokens over its paged K/V cache, read through its block table.
//
// Batch invariance: the bits of one (query token, head) output depend only on that token's query
// row, its position, the cache contents it sees and the attributes; never on the other sequences
// in the batch, the thread count, or how its sequence's prompt was chunked across steps (how many
// query tokens share its tile). Each (token, head) runs its whole context on one thread, keys in
// position order, in groups fixed by the cache block size and the vector width (groups of W = 16
// keys with AVX-512, 8 with AVX2 and the portable path, never crossing a block), with one online
// softmax update per group, a fixed lane assignment and a fixed reduction tree. The instruction
// set is chosen once per process (runtime/cpu/CpuIsa.h: AVX-512, else AVX2+FMA+F16C, else portable
// C++), so results are reproducible within a machine, not across different instruction sets.
#pragma once

#include <cstdint>

#include "ir/DType.h"

namespace pagedc::cpu {

struct PagedAttentionArgs {
  // [numTokens, heads, headDim] f32. Token t's query row starts at query + t * queryTokenStride
  // (0: heads * headDim, the dense layout); the output is always dense.
  const float* query = nullptr;
  int64_t queryTokenStride = 0;
  float* output = nullptr;
  // [numBlocks, kvHeads, blockSize, headDim] of cacheType (F32, BF16 or F16).
  const void* keyCache = nullptr;
  const void* valueCache = nullptr;
  DType cacheType = DType::F32;
  // [numSeqs, maxBlocks]: logical block -> physical block. Only the entries a sequence reads are
  // looked at (those covering its keys, from the sliding window's start).
  const int64_t* blockTables = nullptr;
  const int64_t* contextLens = nullptr;    // [numSeqs]
  const int64_t* queryStartLoc = nullptr;  // [numSeqs + 1], from 0 to numTokens, non-decreasing
  int64_t numTokens = 0;
  int64_t numSeqs = 0;
  int64_t maxBlocks = 0;
  int64_t numBlocks = 0;
  int64_t heads = 0;
  int64_t kvHeads = 0;  // divides heads (GQA: heads / kvHeads query heads per kv head)
  int64_t blockSize = 0;
  int64_t headDim = 0;
  float scale = 0;          // the score is scale * q.k (the op's default is 1 / sqrt(headDim): pass it)
  float softcap = 0;        // > 0: score = softcap * tanh(score / softcap)
  int64_t slidingWindow = -1;  // > 0: the token at position p sees keys p - window + 1 .. p
};

// Each sequence's query tokens are the last queryLen positions of its context (causal). Throws
// pagedc::Error naming the sequence (before computing anything) for a block table entry it reads
// outside 0..numBlocks-1, queryLen > contextLen, a context needing more than maxBlocks blocks,
// query_start_loc not running from 0 to numTokens, or bad geometry. Threads with OpenMP (up to
// omp_get_max_threads(); one thread for tiny calls) over work items, longest first: a prefill's
// query-token tiles per kv head (each K/V block read once per tile, shared by the tile's tokens and
// the kv head's query heads), a decode's kv heads of a sequence together (one contiguous run of
// each block), split further into single kv heads, then query heads when there are too few items.
// Its work list and scratch memory are kept per calling thread and reused, so a warm call with the
// same or smaller shapes does not allocate; calls from different threads may run concurrently.
void pagedAttention(const PagedAttentionArgs& args);

}  // namespace pagedc::cpu
