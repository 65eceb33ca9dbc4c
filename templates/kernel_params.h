// The argument structs of pagedc's CUDA kernels: the ABI between the host code that launches a
// kernel (runtime/cuda, the emulator tests) and the kernel templates (templates/*.cuh).
//
// Each kernel takes exactly one of these structs by value, so a launch passes one pointer
// (`void* args[] = {&params}`) and the layout is the same in NVRTC, nvcc and the host compiler:
// only pointers, 64-bit integers and floats, in an order that leaves no padding holes that differ
// between compilers. This header must compile in NVRTC (no standard headers) and in C++20.
//
// Conventions: element strides count elements of the tensor's own type, not bytes. Index arrays
// (block tables, slots, positions, token ids) are i64, as the compiled graph's inputs are. Inputs
// that can index out of range (block ids, slots, positions, token ids) are validated by the host
// before a launch; a kernel never throws, it skips what it cannot compute (documented per field).
#pragma once

namespace pagedc {

using i64 = long long;
using u64 = unsigned long long;
using u32 = unsigned int;
using u16 = unsigned short;
using u8 = unsigned char;

// ---- paged attention (templates/paged_attention.cuh) -------------------------------------------
//
// Causal attention of each sequence's query tokens over its paged K/V cache. Sequence s owns query
// tokens query_start_loc[s] .. query_start_loc[s+1]-1, which are the last query_len positions of
// its context_lens[s] keys (so token i of the sequence sits at position context_len - query_len + i
// and sees keys 0 .. that position, or the last sliding_window of them).
//
// Cache layout: [num_blocks, num_kv_heads, BLOCK_SIZE, HEAD_DIM]; the key of position p of
// sequence s is in physical block block_tables[s * max_blocks_per_seq + p / BLOCK_SIZE], row
// p % BLOCK_SIZE. Query head h uses kv head h / queries_per_kv.
struct PagedAttentionParams {
  void* out;                   // [num_tokens, num_heads, HEAD_DIM] of T, dense
  const void* query;           // of T: token t, head h starts at query + t * query_token_stride + h * HEAD_DIM
  const void* key_cache;       // of C
  const void* value_cache;     // of C
  const i64* block_tables;     // [num_seqs, max_blocks_per_seq]
  const i64* context_lens;     // [num_seqs]
  const i64* query_start_loc;  // [num_seqs + 1]
  float* partial_out;          // split-K scratch: [num_seqs, num_heads, max_partitions, HEAD_DIM]
  float* partial_max;          // [num_seqs, num_heads, max_partitions]: running max of the scores
  float* partial_sum;          // [num_seqs, num_heads, max_partitions]: sum of exp(score - max)
  i64 query_token_stride;      // elements between consecutive query tokens (num_heads * HEAD_DIM when dense)
  i64 num_seqs;
  i64 num_heads;
  i64 num_kv_heads;
  i64 max_blocks_per_seq;
  i64 sliding_window;          // > 0: position p sees keys p - sliding_window + 1 .. p; else all
  i64 partition_size;          // split-K: keys per partition (the decode variant's PARTITION_SIZE)
  i64 max_partitions;          // split-K: partitions allocated per (seq, head) in the scratch
  i64 skip_single_token;       // prefill: nonzero leaves sequences with query_len == 1 to the decode kernel
  float scale;                 // score = scale * q.k
  float softcap;               // > 0: score = softcap * tanh(score / softcap)
};

// ---- KV cache (templates/kv_cache.cuh) ---------------------------------------------------------

// Scatters each token's new K and V rows into the cache at slot_mapping[t] (block * block_size +
// offset). A negative slot (padding) writes nothing.
struct KvCacheWriteParams {
  const void* key;          // of T: token t, kv head h at key + t * key_token_stride + h * head_dim
  const void* value;        // of T, same with value_token_stride
  void* key_cache;          // of C: [num_blocks, num_kv_heads, block_size, head_dim]
  void* value_cache;
  const i64* slot_mapping;  // [num_tokens]
  i64 key_token_stride;
  i64 value_token_stride;
  i64 num_tokens;
  i64 num_kv_heads;
  i64 head_dim;
  i64 block_size;
};

// Copy-on-write: for every layer and every pair, copies block src to block dst in both caches.
struct CopyBlocksParams {
  void* const* key_caches;    // [num_layers] device pointers to each layer's key cache
  void* const* value_caches;  // [num_layers]
  const i64* block_mapping;   // [num_pairs, 2]: (src, dst)
  i64 num_layers;
  i64 num_pairs;
  i64 block_bytes;            // bytes of one block of one layer's key (or value) cache
};

// Swap: copies whole blocks between two pools that may live in different memories (device
// memory and pinned host memory mapped into the device's address space), one launch for all pairs.
struct SwapBlocksParams {
  const void* src_pool;
  void* dst_pool;
  const i64* block_mapping;  // [num_pairs, 2]: (src block in src_pool, dst block in dst_pool)
  i64 num_pairs;
  i64 block_bytes;
};

// ---- normalisation (templates/normalization.cuh) -----------------------------------------------

// out = norm(x + residual) * weight (+ bias); sum_out (optional) receives x + residual. RMS norm
// (rms_norm kernel) or layer norm (layer_norm kernel: subtracts the mean, adds bias when given).
// out and sum_out may alias x or residual (each element is read before it is written, by one thread).
struct NormParams {
  void* out;             // [rows, hidden] of T
  void* sum_out;         // [rows, hidden] of T, or null
  const void* x;         // [rows, hidden] of T
  const void* residual;  // [rows, hidden] of T, or null
  const void* weight;    // [hidden] of T
  const void* bias;      // [hidden] of T, or null
  i64 rows;
  i64 hidden;
  float epsilon;
};

// ---- rotary embedding (templates/rotary.cuh) ---------------------------------------------------

// Rotates the first rotary_dim elements of each head of x at its token's position: halves
// (x[i], x[i + rotary_dim/2]) or, INTERLEAVED, adjacent pairs (x[2i], x[2i+1]), by the angle whose
// cos/sin are cos_table[position * rotary_dim/2 + i]. The rest of the head is copied. The token
// (b, s), head n of x starts at x + b * batch_stride + s * seq_stride + n * head_stride (out has the
// same strides and may alias x). A position outside 0 .. max_positions-1 leaves the head unchanged
// (out receives x's head as it is).
struct RopeParams {
  void* out;
  const void* x;
  const i64* positions;    // token (b, s) at positions[b * positions_batch_stride + s]
  const float* cos_table;  // [max_positions, rotary_dim / 2]
  const float* sin_table;
  i64 batch;
  i64 seq;
  i64 heads;
  i64 head_dim;
  i64 rotary_dim;
  i64 batch_stride;
  i64 seq_stride;
  i64 head_stride;
  i64 positions_batch_stride;  // 0 when every batch row shares the positions
  i64 max_positions;
};

// ---- activations (templates/activation.cuh) ----------------------------------------------------

// out[i] = act(x[i]) * up[i] when up is given (gated: SwiGLU, GeGLU), else act(x[i]).
struct ActivationParams {
  void* out;
  const void* x;
  const void* up;  // or null
  i64 count;
};

// ---- embedding (templates/embedding.cuh) -------------------------------------------------------

// out[t] = table[ids[t]]; an id outside 0 .. vocab-1 writes zeros.
struct EmbeddingParams {
  void* out;          // [num_tokens, hidden] of T
  const void* table;  // [vocab, hidden] of T
  const i64* ids;     // [num_tokens]
  i64 num_tokens;
  i64 hidden;
  i64 vocab;
};

// ---- sampler steps (templates/sampling.cuh), all on f32 logits ---------------------------------

// probs[r] = softmax(logits[r] / temperature[r]); temperatures null means 1. A temperature <= 0
// gives probability 1 to the argmax (greedy); a row of only -inf logits gives zeros. As in the CPU
// sampler the maximum's term is exactly exp(0), so a +inf logit takes all the probability.
struct SoftmaxParams {
  float* probs;
  const float* logits;
  const float* temperatures;  // [rows] or null
  i64 rows;
  i64 vocab;
};

// index[r] = argmax(logits[r]), the lowest index among equal maxima (NaN never wins); value[r] its
// logit. A row of only -inf (or NaN) gives index -1 and value -inf, as the CPU sampler's greedyToken.
struct ArgmaxParams {
  i64* index;
  float* value;  // or null
  const float* logits;
  i64 rows;
  i64 vocab;
};

// In place: logits outside row r's top-k (top_k[r] <= 0 or >= vocab: off) and outside its top-p
// nucleus (top_p[r] >= 1: off; the smallest set of most likely tokens whose probability reaches
// top_p) become -inf. Tokens tied with the last one kept are kept too (the CPU sampler keeps exactly
// k, ties to the lower ids). As in the CPU sampler, top-p applies after top-k, its probabilities are
// softmax((logits - max) / temperature[r]) renormalised over what top-k kept, and a row with
// temperature <= 0 (greedy) skips top-p. NaN logits always become -inf when a filter is on.
struct TopKTopPParams {
  float* logits;
  const i64* top_k;    // [rows] or null
  const float* top_p;  // [rows] or null
  i64 rows;
  i64 vocab;
  const float* temperatures;  // [rows] or null (1): the temperature top-p's probabilities use
};


// ---- generic tensor kernels (templates/tensor_ops.cuh), for the graph ops around the fused ones -

constexpr int kMaxCopyRank = 6;

// out (dense, row-major over shape) = in viewed through strides from in_offset: Transpose, Slice,
// Expand and each input of a Concat (out_offset / out_strides place it in the result) are all this.
// Dimensions beyond rank are ignored. Element types: T in, T out.
struct StridedCopyParams {
  void* out;
  const void* in;
  i64 shape[kMaxCopyRank];
  i64 in_strides[kMaxCopyRank];
  i64 out_strides[kMaxCopyRank];
  i64 in_offset;
  i64 out_offset;
  i64 rank;
  i64 count;  // product of shape
};

// out[i] = a[ia(i)] OP b[ib(i)] with numpy broadcasting expressed as strides (0 on broadcast axes);
// OP: 0 add, 1 sub, 2 mul, 3 div. All three of T.
struct BinaryParams {
  void* out;
  const void* a;
  const void* b;
  i64 shape[kMaxCopyRank];
  i64 a_strides[kMaxCopyRank];
  i64 b_strides[kMaxCopyRank];
  i64 rank;
  i64 count;
};

// out[i] = convert(in[i]) from TI to TO (round to nearest even).
struct CastParams {
  void* out;
  const void* in;
  i64 count;
};

}  // namespace pagedc
