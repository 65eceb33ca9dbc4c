// KV-cache maintenance: writing new tokens' K/V rows into their slots (kv_cache_write), copying
// blocks for copy-on-write (copy_blocks) and moving blocks between memory pools (swap_blocks).
// Semantics: KvCacheWriteParams, CopyBlocksParams and SwapBlocksParams in kernel_params.h; the
// reference of kv_cache_write is the IR op of the same name (ir/ops/PagedAttentionOps.cpp).
#pragma once

#include "pagedc_cuda.cuh"

namespace pagedc {

namespace kv_cache_detail {

// 16 bytes moved as one vector access (ld/st.v4.u32) when both ends are 16-byte aligned.
struct alignas(16) Bytes16 {
  u32 words[4];
};

// The CTA copies `bytes` bytes from src to dst, its NUM_THREADS threads striding over the widest
// unit (16, 4 or 1 bytes) that the addresses and the size allow. Consecutive threads touch
// consecutive units, so each warp's accesses coalesce.
template <int NUM_THREADS>
PAGEDC_DEVICE void copy_bytes(void* dst, const void* src, i64 bytes) {
  const u64 alignment = reinterpret_cast<u64>(dst) | reinterpret_cast<u64>(src) | static_cast<u64>(bytes);
  if (alignment % 16 == 0) {
    Bytes16* d = static_cast<Bytes16*>(dst);
    const Bytes16* s = static_cast<const Bytes16*>(src);
    for (i64 i = threadIdx.x; i < bytes / 16; i += NUM_THREADS) d[i] = s[i];
  } else if (alignment % 4 == 0) {
    u32* d = static_cast<u32*>(dst);
    const u32* s = static_cast<const u32*>(src);
    for (i64 i = threadIdx.x; i < bytes / 4; i += NUM_THREADS) d[i] = s[i];
  } else {
    u8* d = static_cast<u8*>(dst);
    const u8* s = static_cast<const u8*>(src);
    for (i64 i = threadIdx.x; i < bytes; i += NUM_THREADS) d[i] = s[i];
  }
}

}  // namespace kv_cache_detail

// One CTA per token (grid: num_tokens): its threads stride over the token's num_kv_heads * head_dim
// elements of K and of V, convert T -> C (round to nearest even) and store them in the token's
// slot. A negative slot (padding) writes nothing; slots beyond the cache are the host's to reject.
template <typename T, typename C, int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) kv_cache_write(KvCacheWriteParams p) {
  const i64 token = blockIdx.x;
  if (token >= p.num_tokens) return;
  const i64 slot = p.slot_mapping[token];
  if (slot < 0) return;
  const i64 block = slot / p.block_size, offset = slot % p.block_size;
  const T* key = static_cast<const T*>(p.key) + token * p.key_token_stride;
  const T* value = static_cast<const T*>(p.value) + token * p.value_token_stride;
  // Row (block, head h, offset) starts at ((block * num_kv_heads + h) * block_size + offset) * head_dim.
  const i64 head_step = p.block_size * p.head_dim;
  C* key_row0 = static_cast<C*>(p.key_cache) + (block * p.num_kv_heads * p.block_size + offset) * p.head_dim;
  C* value_row0 = static_cast<C*>(p.value_cache) + (block * p.num_kv_heads * p.block_size + offset) * p.head_dim;
  // A token's K (or V) is num_kv_heads * head_dim elements, far below 2^31: 32-bit index math.
  const int head_dim = static_cast<int>(p.head_dim);
  const int elements = static_cast<int>(p.num_kv_heads) * head_dim;
  for (int i = threadIdx.x; i < elements; i += NUM_THREADS) {
    const int h = i / head_dim, d = i - h * head_dim;
    const i64 at = h * head_step + d;
    key_row0[at] = from_float<C>(to_float(key[i]));
    value_row0[at] = from_float<C>(to_float(value[i]));
  }
}

// Copy-on-write (grid: num_layers, num_pairs): CTA (layer, pair) copies block src to block dst of
// that layer's key cache and of its value cache. Pairs must not chain (a dst that is another
// pair's src), since CTAs run in any order.
// The explicit minimum of one CTA per SM matters under link-time optimisation: without it
// nvJitLink -lto capped these copy loops at 32 registers and spilled (measured on sm_80 and sm_90).
template <int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS, 1) copy_blocks(CopyBlocksParams p) {
  const i64 layer = blockIdx.x, pair = blockIdx.y;
  if (layer >= p.num_layers || pair >= p.num_pairs) return;
  const i64 src = p.block_mapping[2 * pair], dst = p.block_mapping[2 * pair + 1];
  const i64 bytes = p.block_bytes;
  u8* key_cache = static_cast<u8*>(p.key_caches[layer]);
  u8* value_cache = static_cast<u8*>(p.value_caches[layer]);
  kv_cache_detail::copy_bytes<NUM_THREADS>(key_cache + dst * bytes, key_cache + src * bytes, bytes);
  kv_cache_detail::copy_bytes<NUM_THREADS>(value_cache + dst * bytes, value_cache + src * bytes, bytes);
}

// Swap in or out (grid: num_pairs): CTA `pair` copies block src of src_pool to block dst of
// dst_pool (one pool is typically pinned host memory mapped into the device's address space).
template <int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS, 1) swap_blocks(SwapBlocksParams p) {
  const i64 pair = blockIdx.x;
  if (pair >= p.num_pairs) return;
  const i64 src = p.block_mapping[2 * pair], dst = p.block_mapping[2 * pair + 1];
  const i64 bytes = p.block_bytes;
  kv_cache_detail::copy_bytes<NUM_THREADS>(static_cast<u8*>(p.dst_pool) + dst * bytes,
                                           static_cast<const u8*>(p.src_pool) + src * bytes, bytes);
}

}  // namespace pagedc
