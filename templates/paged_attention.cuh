// Paged attention: decode (one pass or split-K partitions), the split-K reduction, and prefill
// (query tiles, which also serve chunked prefill and recompute). Semantics: PagedAttentionParams in
// kernel_params.h and the reference op paged_attention (ir/ops/PagedAttentionOps.cpp).
//
// All three kernels share one core, PagedAttentionTile: a CTA owns a set of query rows (a row is one
// query token times one query head; all Q_PER_KV heads of one kv head, for one token in decode or
// TILE_TOKENS tokens in prefill) and streams the keys they see through shared memory in chunks:
//
//   for each chunk of kChunk keys:
//     every thread copies part of the chunk's K and V rows into shared memory (16-byte loads, a warp
//     reads contiguous head_dim rows of a cache block; keys outside the range become zeros), sync;
//     each "slot" of kTpr adjacent lanes owns up to kRpt rows and one key group; its lanes split
//     head_dim (a lane holds kDpt dims of the query and of the output accumulator in registers),
//     form partial dot products against the staged keys, sum them with kTpr-wide butterflies, and
//     apply the online softmax and the P.V update from the staged values, in sub-chunks small
//     enough for the scores to stay in registers (one accumulator rescale per sub-chunk); sync.
//
// So K/V are read from global memory once per CTA per pass (one pass unless a tile has more rows
// than kSlots * kRpt), shared memory does not grow with the context, and all arithmetic is f32.
// When a CTA has fewer rows than slots (decode, small tiles), the spare slots split each chunk's
// keys into kKsplit groups with their own softmax state, merged through shared memory at the end.
//
// Scores are kept in base 2 (scaled by log2(e)) so exponentials are exp2f; partial_max is written in
// natural units (the scores' max), as kernel_params.h documents.
//
// Host obligations (the kernels do not check them): num_heads == num_kv_heads * Q_PER_KV;
// partition_size == PARTITION_SIZE of the decode variant; max_partitions >= the number of
// partitions of every decode sequence (see below); block table entries a sequence reads are valid;
// the cache, query and output pointers are 16-byte aligned (cudaMalloc's are). Query rows may have
// any stride (they are read element by element, once per CTA).
//
// Split-K partitions count from the start of the visible key range: a decode token at position
// P = context_len - 1 sees keys first .. P with first = max(0, P - sliding_window + 1) (0 without a
// window); partition z covers keys first + z * PARTITION_SIZE .. first + (z+1) * PARTITION_SIZE - 1
// (clipped to P), so a sequence has ceil((P + 1 - first) / PARTITION_SIZE) partitions and a sliding
// window bounds them by ceil(sliding_window / PARTITION_SIZE). A sequence with a single partition
// is finished by the decode kernel itself (it writes out, no scratch); the reduce kernel computes
// the same count and skips it.
#pragma once

#include "pagedc_cuda.cuh"

namespace pagedc {

namespace paged_attention_detail {

// Compile-time helpers used in both host (static member initialisers) and device code.
#if PAGEDC_GPU
#define PAGEDC_PA_CONSTEXPR __host__ __device__ constexpr
#else
#define PAGEDC_PA_CONSTEXPR constexpr
#endif

// Full unrolling of the loops over register arrays, none of the sub-chunk loop (the host compiler's
// own choice is fine for both).
#if PAGEDC_GPU
#define PAGEDC_PA_UNROLL _Pragma("unroll")
#else
#define PAGEDC_PA_UNROLL
#endif
#if PAGEDC_GPU
#define PAGEDC_PA_NO_UNROLL _Pragma("unroll 1")
#else
#define PAGEDC_PA_NO_UNROLL
#endif

PAGEDC_PA_CONSTEXPR int min_int(int a, int b) { return a < b ? a : b; }
PAGEDC_PA_CONSTEXPR int max_int(int a, int b) { return a > b ? a : b; }
PAGEDC_PA_CONSTEXPR int pow2_floor(int x) {
  int p = 1;
  while (p * 2 <= x) p *= 2;
  return p;
}
PAGEDC_PA_CONSTEXPR int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Elements per shared-memory read of a lane: the widest power of two up to 16 bytes dividing
// head_dim into units that split evenly over the row's lanes; failing that (head_dim / 2 odd, say),
// the widest dividing head_dim, and the last lanes of a row get one unit fewer.
PAGEDC_PA_CONSTEXPR int unit_elems(int head_dim, int elem_bytes, int tpr) {
  for (int u = 16 / elem_bytes; u >= 2; u /= 2)
    if (head_dim % (u * tpr) == 0) return u;
  for (int u = 16 / elem_bytes; u >= 2; u /= 2)
    if (head_dim % u == 0) return u;
  return 1;
}
// Lanes per row: aim at ~16 dims per lane (registers for q and the accumulator stay small), at most
// 16 lanes; more lanes while a lane would hold over 20 dims (head_dims 96 and 112, uneven splits).
PAGEDC_PA_CONSTEXPR int threads_per_row(int head_dim, int elem_bytes) {
  int tpr = min_int(16, pow2_floor(max_int(1, head_dim / 16)));
  while (tpr < 16) {
    const int u = unit_elems(head_dim, elem_bytes, tpr);
    if (ceil_div(head_dim / u, tpr) * u <= 20) break;
    tpr *= 2;
  }
  return tpr;
}
// Elements per global load: the widest power of two up to 16 bytes dividing head_dim.
PAGEDC_PA_CONSTEXPR int load_elems(int head_dim, int elem_bytes) {
  for (int u = 16 / elem_bytes; u >= 2; u /= 2)
    if (head_dim % u == 0) return u;
  return 1;
}

// A run of N elements read or written as one aligned access (ld/st .v2/.v4 on the GPU; a 32-byte
// run of f32 outputs is two 16-byte accesses, so never more than 16-byte alignment is assumed).
template <typename E, int N>
struct alignas(N * sizeof(E) < 16 ? N * sizeof(E) : 16) Units {
  E e[N];
};

struct alignas(16) Raw16 {
  u32 w[4];
};

template <int WIDTH>
PAGEDC_DEVICE float group_sum(float v) {
  for (int offset = WIDTH / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullWarp, v, offset);
  return v;
}

PAGEDC_DEVICE float neg_inf() { return -__int_as_float(0x7f800000); }

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Where a CTA's rows go: `out` normalised, or (partition >= 0) the split-K scratch at that index.
struct TileOutput {
  int partition;
};

template <typename T, typename C, int HEAD_DIM, int BLOCK_SIZE, int Q_PER_KV, int NUM_THREADS, int TILE_TOKENS>
struct PagedAttentionTile {
  static_assert(HEAD_DIM >= 2 && HEAD_DIM % 2 == 0, "HEAD_DIM must be even");
  static_assert(BLOCK_SIZE >= 1, "BLOCK_SIZE must be positive");
  static_assert(Q_PER_KV >= 1, "Q_PER_KV must be positive");
  static_assert(NUM_THREADS >= 32 && NUM_THREADS % 32 == 0 && NUM_THREADS <= 1024, "NUM_THREADS must be a multiple of 32");
  static_assert(TILE_TOKENS >= 1, "the query tile needs a token");

  static constexpr int kCacheBytes = static_cast<int>(sizeof(C));
  static constexpr int kTpr = threads_per_row(HEAD_DIM, kCacheBytes);  // lanes sharing one row
  static constexpr int kUnit = unit_elems(HEAD_DIM, kCacheBytes, kTpr);  // elements per shared read
  static constexpr int kUnitsPerRow = HEAD_DIM / kUnit;                 // lane `sub` has units sub, sub + kTpr, ...
  static constexpr int kUnitsPerThread = ceil_div(kUnitsPerRow, kTpr);
  static constexpr bool kEvenSplit = kUnitsPerRow % kTpr == 0;
  static constexpr int kDpt = kUnitsPerThread * kUnit;                  // dims per lane (registers)
  static constexpr int kSlots = NUM_THREADS / kTpr;
  static constexpr int kRows = TILE_TOKENS * Q_PER_KV;
  static constexpr int kLoadVec = load_elems(HEAD_DIM, kCacheBytes);
  static constexpr int kVecsPerRow = HEAD_DIM / kLoadVec;

  // K + V of a chunk take at most 32 KiB of shared memory.
  static constexpr int kSmemKeys = max_int(1, 16384 / (HEAD_DIM * kCacheBytes));
  // Merging key groups stages every active lane's accumulator: at most 32 KiB.
  static constexpr int kCombineKeys = 8192 / (kRows * HEAD_DIM);
  static constexpr int kKsplit =
      kRows >= kSlots ? 1 : max_int(1, min_int(min_int(kSlots / kRows, kCombineKeys), min_int(kSmemKeys, 64)));
  // Register budget: __launch_bounds__ asks for this many CTAs per SM, i.e. at most 128 registers.
  static constexpr int kMinBlocks = max_int(1, 512 / NUM_THREADS);
  static constexpr int kRowSlots = kSlots / kKsplit;
  // Rows per slot: enough for the tile in one pass, as long as q + accumulator stay <= 64 floats
  // (one row with an uneven split, whose guarded units cost registers of their own).
  static constexpr int kRpt = kKsplit > 1 || !kEvenSplit ? 1 : min_int(ceil_div(kRows, kSlots), max_int(1, 32 / kDpt));
  static constexpr int kRowsPerPass = kRowSlots * kRpt;
  // Keys staged per chunk (one pair of __syncthreads): bounded by shared memory (kSmemKeys) and by
  // the copies a thread holds in flight (kLoadKeys: 4 vectors of K and 4 of V per thread, 2 and 2
  // when the query and accumulator registers exceed 32 floats). A chunk is
  // consumed in kSubs sub-chunks of kSubKeys keys, kKpt per key group, so the scores a lane keeps
  // in registers stay at kRpt * kKpt <= kMaxScores (one accumulator rescale per sub-chunk).
  static constexpr int kMaxScores = 8;
  static constexpr int kLoadKeys = max_int(1, (2 * kRpt * kDpt <= 32 ? 4 : 2) * NUM_THREADS / kVecsPerRow);
  static constexpr int kStageKeys = min_int(min_int(kSmemKeys, kLoadKeys), 64);
  static constexpr int kKpt = max_int(1, min_int(kMaxScores / kRpt, kStageKeys / kKsplit));  // keys per lane per sub-chunk
  static constexpr int kSubKeys = kKpt * kKsplit;
  static constexpr int kSubs = max_int(1, kStageKeys / kSubKeys);
  static constexpr int kChunk = kSubs * kSubKeys;
  static constexpr int kChunkVecs = kChunk * kVecsPerRow;
  static constexpr int kLoadIters = ceil_div(kChunkVecs, NUM_THREADS);

  static constexpr int kStageBytes = 2 * kChunk * HEAD_DIM * kCacheBytes;
  static constexpr int kCombineThreads = kKsplit > 1 ? kRows * kKsplit * kTpr : 0;
  static constexpr int kCombineBytes = kCombineThreads * kDpt * 4;
  static constexpr int kBufferBytes = ceil_div(max_int(kStageBytes, kCombineBytes), 16) * 16;

  static_assert(kUnit >= 2 && HEAD_DIM % kUnit == 0, "lane split of head_dim");
  static_assert(kChunk % kSubKeys == 0 && kSubKeys % kKsplit == 0, "chunk split into sub-chunks and key groups");

  struct Shared {
    Raw16 buffer[kBufferBytes / 16];  // K chunk then V chunk, reused for merging key groups
    float slot_max[kSlots];
    float slot_sum[kSlots];
  };
  static_assert(sizeof(Shared) <= 48 * 1024, "static shared memory limit");

  using CacheUnit = Units<C, kUnit>;
  using CacheVec = Units<C, kLoadVec>;

  // Copies keys chunk_start .. chunk_start + kChunk - 1 (zeros past key_hi) of kv head kvh of
  // sequence seq into the staging buffer: K rows then V rows, [kChunk][HEAD_DIM] of C each.
  static PAGEDC_DEVICE void load_chunk(const PagedAttentionParams& p, Shared& sh, const i64* table, int kvh, i64 chunk_start, i64 key_hi) {
    // Vector i of the chunk is row i / kVecsPerRow, column i % kVecsPerRow, and sits at element
    // i * kLoadVec of the staging buffer: one base pointer plus compile-time offsets.
    C* k_dst = reinterpret_cast<C*>(sh.buffer) + static_cast<int>(threadIdx.x) * kLoadVec;
    C* v_dst = k_dst + kChunk * HEAD_DIM;
    const C* key_cache = static_cast<const C*>(p.key_cache);
    const C* value_cache = static_cast<const C*>(p.value_cache);
    const i64 head_offset = static_cast<i64>(kvh) * (BLOCK_SIZE * HEAD_DIM);
    const i64 block_stride = p.num_kv_heads * (BLOCK_SIZE * HEAD_DIM);
PAGEDC_PA_UNROLL
    for (int it = 0; it < kLoadIters; ++it) {
      const int i = static_cast<int>(threadIdx.x) + it * NUM_THREADS;
      if (kChunkVecs % NUM_THREADS != 0 && i >= kChunkVecs) break;
      const int row = i / kVecsPerRow, col = i - row * kVecsPerRow;
      const i64 key = chunk_start + row;
      CacheVec kv{}, vv{};
      if (key <= key_hi) {
        const i64 offset = table[key / BLOCK_SIZE] * block_stride + head_offset + static_cast<int>(key % BLOCK_SIZE) * HEAD_DIM + col * kLoadVec;
        kv = *reinterpret_cast<const CacheVec*>(key_cache + offset);
        vv = *reinterpret_cast<const CacheVec*>(value_cache + offset);
      }
      *reinterpret_cast<CacheVec*>(k_dst + it * NUM_THREADS * kLoadVec) = kv;
      *reinterpret_cast<CacheVec*>(v_dst + it * NUM_THREADS * kLoadVec) = vv;
    }
  }

  // Computes the rows of query tokens [0, tok_count) of the tile, the tile's token 0 being query
  // token q_begin at position pos_begin, against keys key_lo .. key_hi (further limited by each
  // row's causal and sliding-window range), and writes them as `dest` says.
  static PAGEDC_DEVICE void run(const PagedAttentionParams& p, Shared& sh, i64 seq, int kvh, i64 q_begin, i64 pos_begin, int tok_count,
                                i64 key_lo, i64 key_hi, TileOutput dest) {
    const int tid = static_cast<int>(threadIdx.x);
    const int sub = tid % kTpr;  // which dims of the row this lane holds
    const int slot = tid / kTpr;
    const int group = slot % kKsplit;  // which keys of each chunk this slot takes
    const int row_slot = slot / kKsplit;
    // Whether this lane's i-th unit exists (all do when the units split evenly over the lanes).
    auto unit_ok = [sub](int i) { return kEvenSplit || sub + i * kTpr < kUnitsPerRow; };
    const i64* table = p.block_tables + seq * p.max_blocks_per_seq;
    const i64 window = p.sliding_window;
    const bool softcapped = p.softcap > 0.0f;
    // Pre-scaled query: scores come out in base 2, or as tanh arguments when softcapped.
    const float q_scale = softcapped ? p.scale / p.softcap : p.scale * kLog2e;
    const float cap_log2 = p.softcap * kLog2e;
    const int num_rows = tok_count * Q_PER_KV;
    const int passes = ceil_div(num_rows, kRowsPerPass);

    for (int pass = 0; pass < passes; ++pass) {
      const int pass_row0 = pass * kRowsPerPass;
      const int pass_rows = min_int(kRowsPerPass, num_rows - pass_row0);
      // The pass's key range: from the first row's window start to the last row's position.
      const i64 pos_first = pos_begin + pass_row0 / Q_PER_KV;
      const i64 pos_last = pos_begin + (pass_row0 + pass_rows - 1) / Q_PER_KV;
      i64 lo = key_lo, hi = key_hi < pos_last ? key_hi : pos_last;
      if (window > 0 && pos_first - window + 1 > lo) lo = pos_first - window + 1;
      if (lo < 0) lo = 0;

      float q[kRpt][kDpt];
      float acc[kRpt][kDpt];
      float row_max[kRpt], row_sum[kRpt];
      i64 row_pos[kRpt];
      bool row_valid[kRpt];
PAGEDC_PA_UNROLL
      for (int r = 0; r < kRpt; ++r) {
        const int local = r * kRowSlots + row_slot;
        row_valid[r] = row_slot < kRowSlots && local < pass_rows;
        const int row = pass_row0 + local;
        const int token = row / Q_PER_KV;
        row_pos[r] = pos_begin + token;
        row_max[r] = neg_inf();
        row_sum[r] = 0.0f;
        const T* q_row = static_cast<const T*>(p.query) + (q_begin + token) * p.query_token_stride +
                         (static_cast<i64>(kvh) * Q_PER_KV + row % Q_PER_KV) * HEAD_DIM;
PAGEDC_PA_UNROLL
        for (int i = 0; i < kUnitsPerThread; ++i)
PAGEDC_PA_UNROLL
          for (int e = 0; e < kUnit; ++e) {
            q[r][i * kUnit + e] = row_valid[r] && unit_ok(i) ? to_float(q_row[(sub + i * kTpr) * kUnit + e]) * q_scale : 0.0f;
            acc[r][i * kUnit + e] = 0.0f;
          }
      }

      const i64 chunks = hi >= lo ? (hi - lo + kChunk) / kChunk : 0;
      // This lane's first staged element (key `group`, unit `sub`); the rest are compile-time offsets.
      const C* k_lane = reinterpret_cast<const C*>(sh.buffer) + group * HEAD_DIM + sub * kUnit;
      const C* v_lane = k_lane + kChunk * HEAD_DIM;
      for (i64 c = 0; c < chunks; ++c) {
        const i64 chunk_start = lo + c * kChunk;
        load_chunk(p, sh, table, kvh, chunk_start, hi);
        __syncthreads();

        // Each row's visible keys within this chunk, as chunk offsets [vis_lo, vis_hi] (32-bit, so
        // the per-key mask costs two integer compares).
        int vis_lo[kRpt], vis_hi[kRpt];
PAGEDC_PA_UNROLL
        for (int r = 0; r < kRpt; ++r) {
          i64 last = (hi < row_pos[r] ? hi : row_pos[r]) - chunk_start;
          i64 first = window > 0 ? row_pos[r] - window + 1 - chunk_start : 0;
          if (last > kChunk) last = kChunk;
          if (first < 0) first = 0;
          if (first > kChunk) first = kChunk;
          vis_hi[r] = row_valid[r] ? static_cast<int>(last) : -1;
          vis_lo[r] = static_cast<int>(first);
        }

        // Sub-chunks holding keys up to hi (the same count for every thread: no barrier inside).
        const i64 staged = hi - chunk_start + 1;
        const int subs = staged >= kChunk ? kSubs : static_cast<int>((staged + kSubKeys - 1) / kSubKeys);
PAGEDC_PA_NO_UNROLL
        for (int sc = 0; sc < subs; ++sc) {
          const int base = sc * kSubKeys;
          const C* k_sub = k_lane + base * HEAD_DIM;
          const C* v_sub = v_lane + base * HEAD_DIM;
          float s[kRpt][kKpt];
PAGEDC_PA_UNROLL
          for (int kk = 0; kk < kKpt; ++kk) {
            const int j = base + kk * kKsplit + group;
            float dot[kRpt];
PAGEDC_PA_UNROLL
            for (int r = 0; r < kRpt; ++r) dot[r] = 0.0f;
PAGEDC_PA_UNROLL
            for (int i = 0; i < kUnitsPerThread; ++i) {
              if (!unit_ok(i)) continue;
              const CacheUnit k = *reinterpret_cast<const CacheUnit*>(k_sub + (kk * kKsplit * HEAD_DIM + i * kTpr * kUnit));
PAGEDC_PA_UNROLL
              for (int e = 0; e < kUnit; ++e) {
                const float kf = to_float(k.e[e]);
PAGEDC_PA_UNROLL
                for (int r = 0; r < kRpt; ++r) dot[r] += q[r][i * kUnit + e] * kf;
              }
            }
PAGEDC_PA_UNROLL
            for (int r = 0; r < kRpt; ++r) {
              float score = group_sum<kTpr>(dot[r]);
              if (softcapped) score = cap_log2 * tanhf(score);
              s[r][kk] = j >= vis_lo[r] && j <= vis_hi[r] ? score : neg_inf();
            }
          }

          // Online softmax: one rescale of the accumulator per sub-chunk.
PAGEDC_PA_UNROLL
          for (int r = 0; r < kRpt; ++r) {
            float sub_max = s[r][0];
PAGEDC_PA_UNROLL
            for (int kk = 1; kk < kKpt; ++kk) sub_max = fmaxf(sub_max, s[r][kk]);
            const float new_max = fmaxf(row_max[r], sub_max);
            if (new_max == neg_inf()) {
PAGEDC_PA_UNROLL
              for (int kk = 0; kk < kKpt; ++kk) s[r][kk] = 0.0f;
              continue;
            }
            const float alpha = exp2f(row_max[r] - new_max);  // 0 when nothing was seen yet
            float sum = 0.0f;
PAGEDC_PA_UNROLL
            for (int kk = 0; kk < kKpt; ++kk) {
              s[r][kk] = exp2f(s[r][kk] - new_max);
              sum += s[r][kk];
            }
            row_sum[r] = row_sum[r] * alpha + sum;
            row_max[r] = new_max;
PAGEDC_PA_UNROLL
            for (int d = 0; d < kDpt; ++d) acc[r][d] *= alpha;
          }

PAGEDC_PA_UNROLL
          for (int kk = 0; kk < kKpt; ++kk) {
PAGEDC_PA_UNROLL
            for (int i = 0; i < kUnitsPerThread; ++i) {
              if (!unit_ok(i)) continue;
              const CacheUnit v = *reinterpret_cast<const CacheUnit*>(v_sub + (kk * kKsplit * HEAD_DIM + i * kTpr * kUnit));
PAGEDC_PA_UNROLL
              for (int e = 0; e < kUnit; ++e) {
                const float vf = to_float(v.e[e]);
PAGEDC_PA_UNROLL
                for (int r = 0; r < kRpt; ++r) acc[r][i * kUnit + e] += s[r][kk] * vf;
              }
            }
          }
        }
        __syncthreads();
      }

      if constexpr (kKsplit > 1) {
        // Merge the key groups of each row into group 0 (kRpt == 1 here, and a single pass).
        float* merge = reinterpret_cast<float*>(sh.buffer);
        if (tid < kCombineThreads) {
PAGEDC_PA_UNROLL
          for (int d = 0; d < kDpt; ++d) merge[d * kCombineThreads + tid] = acc[0][d];
          if (sub == 0) {
            sh.slot_max[slot] = row_max[0];
            sh.slot_sum[slot] = row_sum[0];
          }
        }
        __syncthreads();
        if (group == 0 && row_valid[0]) {
          float total_max = neg_inf();
          for (int g = 0; g < kKsplit; ++g) total_max = fmaxf(total_max, sh.slot_max[slot + g]);
          float total_sum = 0.0f;
PAGEDC_PA_UNROLL
          for (int d = 0; d < kDpt; ++d) acc[0][d] = 0.0f;
          if (total_max != neg_inf()) {
            for (int g = 0; g < kKsplit; ++g) {
              const float w = exp2f(sh.slot_max[slot + g] - total_max);
              total_sum += w * sh.slot_sum[slot + g];
PAGEDC_PA_UNROLL
              for (int d = 0; d < kDpt; ++d) acc[0][d] += w * merge[d * kCombineThreads + tid + g * kTpr];
            }
          }
          row_max[0] = total_max;
          row_sum[0] = total_sum;
        }
      }

      if (group == 0) {
PAGEDC_PA_UNROLL
        for (int r = 0; r < kRpt; ++r) {
          if (!row_valid[r]) continue;
          const int row = pass_row0 + r * kRowSlots + row_slot;
          const i64 token = q_begin + row / Q_PER_KV;
          const i64 head = static_cast<i64>(kvh) * Q_PER_KV + row % Q_PER_KV;
          if (dest.partition < 0) {
            const float inv = row_sum[r] > 0.0f ? 1.0f / row_sum[r] : 0.0f;
            T* o = static_cast<T*>(p.out) + (token * p.num_heads + head) * HEAD_DIM;
PAGEDC_PA_UNROLL
            for (int i = 0; i < kUnitsPerThread; ++i) {
              if (!unit_ok(i)) continue;
              Units<T, kUnit> packed;
PAGEDC_PA_UNROLL
              for (int e = 0; e < kUnit; ++e) packed.e[e] = from_float<T>(acc[r][i * kUnit + e] * inv);
              *reinterpret_cast<Units<T, kUnit>*>(o + (sub + i * kTpr) * kUnit) = packed;
            }
          } else {
            const i64 at = (seq * p.num_heads + head) * p.max_partitions + dest.partition;
            float* o = p.partial_out + at * HEAD_DIM;
PAGEDC_PA_UNROLL
            for (int i = 0; i < kUnitsPerThread; ++i) {
              if (!unit_ok(i)) continue;
              Units<float, kUnit> packed;
PAGEDC_PA_UNROLL
              for (int e = 0; e < kUnit; ++e) packed.e[e] = acc[r][i * kUnit + e];
              *reinterpret_cast<Units<float, kUnit>*>(o + (sub + i * kTpr) * kUnit) = packed;
            }
            if (sub == 0) {
              p.partial_max[at] = row_max[r] * kLn2;
              p.partial_sum[at] = row_sum[r];
            }
          }
        }
      }
      if (passes > 1) __syncthreads();  // the next pass restages the buffer the merge read
    }
  }
};

// First visible key of a token at `position` (sliding window or 0).
PAGEDC_DEVICE i64 first_visible_key(i64 position, i64 window) {
  const i64 first = window > 0 ? position - window + 1 : 0;
  return first > 0 ? first : 0;
}

}  // namespace paged_attention_detail

// Decode: one CTA per (kv head, sequence, partition); sequences with query_len != 1 are left to the
// prefill kernel. PARTITION_SIZE 0: the whole visible range in one CTA, written to out.
// PARTITION_SIZE > 0: see the partition scheme at the top of this file.
template <typename T, typename C, int HEAD_DIM, int BLOCK_SIZE, int Q_PER_KV, int NUM_THREADS, int PARTITION_SIZE>
__global__ void __launch_bounds__(NUM_THREADS, paged_attention_detail::PagedAttentionTile<T, C, HEAD_DIM, BLOCK_SIZE, Q_PER_KV, NUM_THREADS, 1>::kMinBlocks) paged_attention_decode(PagedAttentionParams p) {
  static_assert(PARTITION_SIZE >= 0 && PARTITION_SIZE % BLOCK_SIZE == 0, "PARTITION_SIZE must be 0 or a multiple of BLOCK_SIZE");
  using Tile = paged_attention_detail::PagedAttentionTile<T, C, HEAD_DIM, BLOCK_SIZE, Q_PER_KV, NUM_THREADS, 1>;
  __shared__ typename Tile::Shared shared;
  const int kvh = static_cast<int>(blockIdx.x);
  const i64 seq = blockIdx.y;
  const i64 q_begin = p.query_start_loc[seq];
  if (p.query_start_loc[seq + 1] - q_begin != 1) return;
  const i64 position = p.context_lens[seq] - 1;
  const i64 first = paged_attention_detail::first_visible_key(position, p.sliding_window);
  i64 lo = first, hi = position;
  int partition = -1;
  if constexpr (PARTITION_SIZE > 0) {
    const i64 partitions = (position + 1 - first + PARTITION_SIZE - 1) / PARTITION_SIZE;
    const i64 z = blockIdx.z;
    if (z >= partitions) return;
    lo = first + z * PARTITION_SIZE;
    if (lo + PARTITION_SIZE - 1 < hi) hi = lo + PARTITION_SIZE - 1;
    if (partitions > 1) partition = static_cast<int>(z);
  }
  Tile::run(p, shared, seq, kvh, q_begin, position, 1, lo, hi, paged_attention_detail::TileOutput{partition});
}

// Split-K reduction: one CTA per (query head, sequence) of a decode sequence with more than one
// partition: out = sum_z exp(m_z - M) * partial_out_z / sum_z exp(m_z - M) * partial_sum_z with M the
// largest m_z, so no exponential overflows.
template <typename T, int HEAD_DIM, int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) paged_attention_reduce(PagedAttentionParams p) {
  using paged_attention_detail::kLog2e;
  constexpr int kDimsPerThread = (HEAD_DIM + NUM_THREADS - 1) / NUM_THREADS;
  __shared__ float reduce_scratch[NUM_THREADS / kWarpSize];
  __shared__ float weights[NUM_THREADS];
  const i64 head = blockIdx.x;
  const i64 seq = blockIdx.y;
  const int tid = static_cast<int>(threadIdx.x);
  const i64 q_begin = p.query_start_loc[seq];
  if (p.query_start_loc[seq + 1] - q_begin != 1) return;
  const i64 position = p.context_lens[seq] - 1;
  const i64 first = paged_attention_detail::first_visible_key(position, p.sliding_window);
  const i64 partitions = p.partition_size > 0 ? (position + 1 - first + p.partition_size - 1) / p.partition_size : 1;
  if (partitions <= 1) return;  // the decode kernel wrote out itself
  const i64 base = (seq * p.num_heads + head) * p.max_partitions;

  float local_max = paged_attention_detail::neg_inf();
  for (i64 z = tid; z < partitions; z += NUM_THREADS) local_max = fmaxf(local_max, p.partial_max[base + z]);
  const float total_max = block_max<NUM_THREADS>(local_max, reduce_scratch);
  float local_sum = 0.0f;
  for (i64 z = tid; z < partitions; z += NUM_THREADS) local_sum += exp2f((p.partial_max[base + z] - total_max) * kLog2e) * p.partial_sum[base + z];
  const float total_sum = block_sum<NUM_THREADS>(local_sum, reduce_scratch);

  float acc[kDimsPerThread];
PAGEDC_PA_UNROLL
  for (int i = 0; i < kDimsPerThread; ++i) acc[i] = 0.0f;
  for (i64 z0 = 0; z0 < partitions; z0 += NUM_THREADS) {
    const i64 z = z0 + tid;
    weights[tid] = z < partitions ? exp2f((p.partial_max[base + z] - total_max) * kLog2e) : 0.0f;
    __syncthreads();
    const int count = partitions - z0 < NUM_THREADS ? static_cast<int>(partitions - z0) : NUM_THREADS;
    for (int zz = 0; zz < count; ++zz) {
      const float w = weights[zz];
      const float* part = p.partial_out + (base + z0 + zz) * HEAD_DIM;
PAGEDC_PA_UNROLL
      for (int i = 0; i < kDimsPerThread; ++i) {
        const int d = tid + i * NUM_THREADS;
        if (HEAD_DIM % NUM_THREADS == 0 || d < HEAD_DIM) acc[i] += w * part[d];
      }
    }
    __syncthreads();
  }
  const float inv = total_sum > 0.0f ? 1.0f / total_sum : 0.0f;
  T* o = static_cast<T*>(p.out) + (q_begin * p.num_heads + head) * HEAD_DIM;
PAGEDC_PA_UNROLL
  for (int i = 0; i < kDimsPerThread; ++i) {
    const int d = tid + i * NUM_THREADS;
    if (HEAD_DIM % NUM_THREADS == 0 || d < HEAD_DIM) o[d] = from_float<T>(acc[i] * inv);
  }
}

// Prefill: one CTA per (kv head, sequence, tile of QUERY_TILE query tokens); causal over the keys up
// to the tile's last position. Every sequence, unless skip_single_token leaves query_len == 1 to
// the decode kernel.
template <typename T, typename C, int HEAD_DIM, int BLOCK_SIZE, int Q_PER_KV, int NUM_THREADS, int QUERY_TILE>
__global__ void __launch_bounds__(NUM_THREADS, paged_attention_detail::PagedAttentionTile<T, C, HEAD_DIM, BLOCK_SIZE, Q_PER_KV, NUM_THREADS, QUERY_TILE>::kMinBlocks) paged_attention_prefill(PagedAttentionParams p) {
  using Tile = paged_attention_detail::PagedAttentionTile<T, C, HEAD_DIM, BLOCK_SIZE, Q_PER_KV, NUM_THREADS, QUERY_TILE>;
  __shared__ typename Tile::Shared shared;
  const int kvh = static_cast<int>(blockIdx.x);
  const i64 seq = blockIdx.y;
  const i64 q_start = p.query_start_loc[seq];
  const i64 query_len = p.query_start_loc[seq + 1] - q_start;
  if (query_len == 1 && p.skip_single_token != 0) return;
  const i64 tile_begin = static_cast<i64>(blockIdx.z) * QUERY_TILE;
  if (tile_begin >= query_len) return;
  const int tokens = query_len - tile_begin < QUERY_TILE ? static_cast<int>(query_len - tile_begin) : QUERY_TILE;
  const i64 pos_begin = p.context_lens[seq] - query_len + tile_begin;
  Tile::run(p, shared, seq, kvh, q_start + tile_begin, pos_begin, tokens, 0, pos_begin + tokens - 1,
            paged_attention_detail::TileOutput{-1});
}

}  // namespace pagedc
