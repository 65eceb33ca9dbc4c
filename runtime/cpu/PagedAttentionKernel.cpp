// Paged attention on the CPU: validation, work split and OpenMP threading here; the per-ISA kernel
// body in PagedAttentionKernelBody.inc (see there for the fixed per-row arithmetic order).
#include "runtime/cpu/PagedAttentionKernel.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <tuple>
#include <vector>

#include "ir/Error.h"
#include "ir/HalfFloat.h"
#include "runtime/cpu/CpuIsa.h"

namespace pagedc::cpu {

namespace {

// The validated arguments, strides resolved.
struct Problem {
  const float* query;
  int64_t queryTokenStride;
  float* output;
  const void* keyCache;
  const void* valueCache;
  DType cacheType;
  const int64_t* blockTables;
  const int64_t* contextLens;
  const int64_t* queryStartLoc;
  int64_t maxBlocks, kvHeads, heads, group, blockSize, headDim;
  float scale, softcap, invSoftcap;
  int64_t slidingWindow;
};

// A unit of work for one thread: see runItem in PagedAttentionKernelBody.inc.
struct WorkItem {
  int64_t seq, kvHeadBegin, kvHeadCount, headBegin, headCount, tokenBegin, tokenCount;
  int64_t cost;  // about the multiply-adds: rows times keys seen
};

using ItemFn = void (*)(const Problem&, const WorkItem&, float*);

// ---- Portable C++: 8 "lanes" in plain arrays (no FMA contraction: baseline x86-64 has no FMA) ----
namespace portable {

struct Isa {
  static constexpr int W = 8;
  struct V {
    float v[8];
  };
  static V zero() { return set1(0.0f); }
  static V set1(float x) {
    V r;
    for (float& e : r.v) e = x;
    return r;
  }
  static V load(const float* p) {
    V r;
    std::memcpy(r.v, p, sizeof r.v);
    return r;
  }
  static V loadN(const float* p, int n) {
    V r = zero();
    for (int i = 0; i < n; ++i) r.v[i] = p[i];
    return r;
  }
  static void store(float* p, V x) { std::memcpy(p, x.v, sizeof x.v); }
  static void storeN(float* p, V x, int n) {
    for (int i = 0; i < n; ++i) p[i] = x.v[i];
  }
#define PAGEDC_PORTABLE_BINARY(name, expr)  \
  static V name(V a, V b) {                 \
    V r;                                    \
    for (int i = 0; i < W; ++i) {           \
      const float x = a.v[i], y = b.v[i];   \
      r.v[i] = (expr);                      \
    }                                       \
    return r;                               \
  }
  PAGEDC_PORTABLE_BINARY(add, x + y)
  PAGEDC_PORTABLE_BINARY(sub, x - y)
  PAGEDC_PORTABLE_BINARY(mul, x* y)
  PAGEDC_PORTABLE_BINARY(div, x / y)
  PAGEDC_PORTABLE_BINARY(max, x > y ? x : y)
  PAGEDC_PORTABLE_BINARY(min, x < y ? x : y)
#undef PAGEDC_PORTABLE_BINARY
  static V fmadd(V a, V b, V c) {  // a * b + c, two roundings
    V r;
    for (int i = 0; i < W; ++i) {
      const float product = a.v[i] * b.v[i];
      r.v[i] = product + c.v[i];
    }
    return r;
  }
  static V fnmadd(V a, V b, V c) {  // c - a * b
    V r;
    for (int i = 0; i < W; ++i) {
      const float product = a.v[i] * b.v[i];
      r.v[i] = c.v[i] - product;
    }
    return r;
  }
  static float fmaScalar(float a, float b, float c) {
    const float product = a * b;
    return product + c;
  }
  static V roundNearest(V x) {
    V r;
    for (int i = 0; i < W; ++i) r.v[i] = std::nearbyint(x.v[i]);
    return r;
  }
  static V pow2(V y, V n) {  // y * 2^n, n integral in [-126, 127]
    V r;
    for (int i = 0; i < W; ++i) {
      const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n.v[i]) + 127) << 23;
      float scale;
      std::memcpy(&scale, &bits, sizeof scale);
      r.v[i] = y.v[i] * scale;
    }
    return r;
  }
  static V abs(V x) {
    for (float& e : x.v) e = std::fabs(e);
    return x;
  }
  static V copySign(V magnitude, V sign) {
    for (int i = 0; i < W; ++i) magnitude.v[i] = std::copysign(magnitude.v[i], sign.v[i]);
    return magnitude;
  }
  static V selectLess(V a, V b, V ifLess, V otherwise) {
    for (int i = 0; i < W; ++i)
      if (a.v[i] < b.v[i]) otherwise.v[i] = ifLess.v[i];
    return otherwise;
  }
  static V maskRange(V x, int lo, int hi, float fill) {
    for (int i = 0; i < W; ++i)
      if (i < lo || i >= hi) x.v[i] = fill;
    return x;
  }
  static float first(V x) { return x.v[0]; }
  static float hsum(V x) { return ((x.v[0] + x.v[4]) + (x.v[2] + x.v[6])) + ((x.v[1] + x.v[5]) + (x.v[3] + x.v[7])); }
  static float hmax(V x) {
    float m = x.v[0];
    for (int i = 1; i < W; ++i) m = x.v[i] > m ? x.v[i] : m;
    return m;
  }
  // Key j's score = hsum(acc[j]): reduceHalf takes keys 0..3 or 4..7, reduceFinish joins them.
  static V reduceHalf(const V* acc) {
    V r = zero();
    for (int j = 0; j < W / 2; ++j) r.v[j] = hsum(acc[j]);
    return r;
  }
  static V reduceFinish(V low, V high) {
    for (int j = 0; j < W / 2; ++j) low.v[W / 2 + j] = high.v[j];
    return low;
  }
  static void widenBf16(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16ToFloat(src[i]);
  }
  static void widenF16(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16ToFloat(src[i]);
  }
  static void prefetch(const void* p) { __builtin_prefetch(p); }
};

#include "runtime/cpu/PagedAttentionKernelBody.inc"

}  // namespace portable

#if PAGEDC_X86

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() (a self-initialised variable) as the unused
// merge source, which -Wuninitialized flags once inlined: a false positive (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// ---- AVX2 + FMA + F16C: 8 lanes ----------------------------------------------------------------
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace avx2 {

struct Isa {
  static constexpr int W = 8;
  using V = __m256;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static __m256i firstLanes(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static V loadN(const float* p, int n) { return _mm256_maskload_ps(p, firstLanes(n)); }
  static void store(float* p, V x) { _mm256_storeu_ps(p, x); }
  static void storeN(float* p, V x, int n) { _mm256_maskstore_ps(p, firstLanes(n), x); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
  static float fmaScalar(float a, float b, float c) { return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c))); }
  static V roundNearest(V x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V pow2(V y, V n) {
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
  }
  static V abs(V x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }
  static V copySign(V magnitude, V sign) {
    const V signBit = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(signBit, magnitude), _mm256_and_ps(signBit, sign));
  }
  static V selectLess(V a, V b, V ifLess, V otherwise) { return _mm256_blendv_ps(otherwise, ifLess, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
  static V maskRange(V x, int lo, int hi, float fill) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i inside = _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(lo - 1)), _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane));
    return _mm256_blendv_ps(_mm256_set1_ps(fill), x, _mm256_castsi256_ps(inside));
  }
  static float first(V x) { return _mm256_cvtss_f32(x); }
  static float hsum(V x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(V x) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // Lane j of reduceFinish(reduceHalf(acc), reduceHalf(acc + 4)) = the sum of acc[j]'s lanes, by
  // the tree (l, l+4), (l, l+2), (l, l+1) for every j.
  static V reduceHalf(const V* acc) {  // keys 0..3 of acc: half h, lanes 0-1 key h, lanes 2-3 key 2 + h
    const V r0 = _mm256_add_ps(_mm256_permute2f128_ps(acc[0], acc[1], 0x20), _mm256_permute2f128_ps(acc[0], acc[1], 0x31));
    const V r1 = _mm256_add_ps(_mm256_permute2f128_ps(acc[2], acc[3], 0x20), _mm256_permute2f128_ps(acc[2], acc[3], 0x31));
    return _mm256_add_ps(_mm256_shuffle_ps(r0, r1, _MM_SHUFFLE(1, 0, 1, 0)), _mm256_shuffle_ps(r0, r1, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  static V reduceFinish(V low, V high) {
    const V u = _mm256_add_ps(_mm256_shuffle_ps(low, high, _MM_SHUFFLE(2, 0, 2, 0)), _mm256_shuffle_ps(low, high, _MM_SHUFFLE(3, 1, 3, 1)));
    // Lane 4h + m holds key h + 2m.
    return _mm256_permutevar8x32_ps(u, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  }
  static void widenBf16(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
      _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
    }
    for (; i < n; ++i) dst[i] = bf16ToFloat(src[i]);
  }
  static void widenF16(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    for (; i < n; ++i) dst[i] = f16ToFloat(src[i]);
  }
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
};

#include "runtime/cpu/PagedAttentionKernelBody.inc"

}  // namespace avx2
#pragma GCC pop_options

// ---- AVX-512 F/BW/DQ/VL: 16 lanes --------------------------------------------------------------
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")
namespace avx512 {

struct Isa {
  static constexpr int W = 16;
  using V = __m512;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static __mmask16 lanesBelow(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static V loadN(const float* p, int n) { return _mm512_maskz_loadu_ps(lanesBelow(n), p); }
  static void store(float* p, V x) { _mm512_storeu_ps(p, x); }
  static void storeN(float* p, V x, int n) { _mm512_mask_storeu_ps(p, lanesBelow(n), x); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
  static float fmaScalar(float a, float b, float c) { return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c))); }
  static V roundNearest(V x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static V pow2(V y, V n) { return _mm512_scalef_ps(y, n); }
  static V abs(V x) { return _mm512_abs_ps(x); }
  static V copySign(V magnitude, V sign) {
    const V signBit = _mm512_set1_ps(-0.0f);
    return _mm512_or_ps(_mm512_andnot_ps(signBit, magnitude), _mm512_and_ps(signBit, sign));
  }
  static V selectLess(V a, V b, V ifLess, V otherwise) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), otherwise, ifLess); }
  static V maskRange(V x, int lo, int hi, float fill) {
    const __mmask16 inside = static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
    return _mm512_mask_blend_ps(inside, _mm512_set1_ps(fill), x);
  }
  static float first(V x) { return _mm512_cvtss_f32(x); }
  static __m256 fold(V x) { return _mm256_add_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1)); }
  static float hsum(V x) {
    const __m256 h = fold(x);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(V x) {
    const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // Lane j of reduceFinish(reduceHalf(acc), reduceHalf(acc + 8)) = the sum of acc[j]'s lanes, by
  // the tree (l, l+8), (l, l+4), (l, l+2), (l, l+1) for every j.
  static V reduceHalf(const V* acc) {  // keys 0..7 of acc: quarter t, lanes 0-1 key t, lanes 2-3 key 4 + t
    V r[4];
    for (int i = 0; i < 4; ++i)
      r[i] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[2 * i], acc[2 * i + 1], 0x44), _mm512_shuffle_f32x4(acc[2 * i], acc[2 * i + 1], 0xEE));
    V s[2];  // s[i], quarter t: key 4i + t, 4 partial sums
    for (int i = 0; i < 2; ++i)
      s[i] = _mm512_add_ps(_mm512_shuffle_f32x4(r[2 * i], r[2 * i + 1], 0x88), _mm512_shuffle_f32x4(r[2 * i], r[2 * i + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_ps(s[0], s[1], _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(s[0], s[1], _MM_SHUFFLE(3, 2, 3, 2)));
  }
  static V reduceFinish(V low, V high) {
    const V x = _mm512_add_ps(_mm512_shuffle_ps(low, high, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(low, high, _MM_SHUFFLE(3, 1, 3, 1)));
    // Lane 4t + m holds key t + 4m.
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), x);
  }
  static void widenBf16(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
      _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
    }
    for (; i < n; ++i) dst[i] = bf16ToFloat(src[i]);
  }
  static void widenF16(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
    for (; i < n; ++i) dst[i] = f16ToFloat(src[i]);
  }
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
};

#include "runtime/cpu/PagedAttentionKernelBody.inc"

}  // namespace avx512
#pragma GCC pop_options

#pragma GCC diagnostic pop
#endif  // PAGEDC_X86

// ---- Validation ---------------------------------------------------------------------------------

void validate(const PagedAttentionArgs& a) {
  if (a.numTokens < 0 || a.numSeqs < 0 || a.maxBlocks < 0 || a.numBlocks < 0)
    fail("paged attention: negative size (tokens ", a.numTokens, ", sequences ", a.numSeqs, ", max blocks ", a.maxBlocks, ", blocks ",
         a.numBlocks, ")");
  if (a.heads <= 0 || a.kvHeads <= 0 || a.heads % a.kvHeads != 0)
    fail("paged attention: query heads (", a.heads, ") must be a positive multiple of the kv heads (", a.kvHeads, ")");
  if (a.blockSize <= 0 || a.headDim <= 0) fail("paged attention: block size ", a.blockSize, " and head dim ", a.headDim, " must be positive");
  if (a.cacheType != DType::F32 && a.cacheType != DType::BF16 && a.cacheType != DType::F16)
    fail("paged attention: the caches must be f32, bf16 or f16, not ", dtypeName(a.cacheType));
  if (a.queryTokenStride != 0 && a.queryTokenStride < a.heads * a.headDim)
    fail("paged attention: query token stride ", a.queryTokenStride, " is less than heads * head dim (", a.heads * a.headDim, ")");
  if (!(a.softcap >= 0)) fail("paged attention: softcap ", a.softcap, " must be >= 0 (0: none)");
  if (a.numSeqs == 0 && a.numTokens == 0) return;
  if (!a.queryStartLoc || !a.contextLens || (a.numSeqs > 0 && a.maxBlocks > 0 && !a.blockTables))
    fail("paged attention: missing block tables, context lengths or query_start_loc");
  if (a.numTokens > 0 && (!a.query || !a.output || !a.keyCache || !a.valueCache)) fail("paged attention: missing query, output or cache");
  if (a.queryStartLoc[0] != 0 || a.queryStartLoc[a.numSeqs] != a.numTokens)
    fail("query_start_loc must run from 0 to num_tokens (", a.numTokens, "), got ", a.queryStartLoc[0], " .. ", a.queryStartLoc[a.numSeqs]);
  for (int64_t s = 0; s < a.numSeqs; ++s) {
    const int64_t queryLen = a.queryStartLoc[s + 1] - a.queryStartLoc[s], contextLen = a.contextLens[s];
    if (queryLen < 0 || queryLen > contextLen) fail("sequence ", s, ": ", queryLen, " query tokens but context length ", contextLen);
    if ((contextLen + a.blockSize - 1) / a.blockSize > a.maxBlocks)
      fail("sequence ", s, ": context length ", contextLen, " needs more than ", a.maxBlocks, " blocks");
    if (queryLen == 0) continue;
    // The blocks the kernel reads: from the first query token's first key to the last key.
    const int64_t firstPos = contextLen - queryLen;
    const int64_t firstKey = a.slidingWindow > 0 ? std::max<int64_t>(0, firstPos - a.slidingWindow + 1) : 0;
    const int64_t* table = a.blockTables + s * a.maxBlocks;
    for (int64_t b = firstKey / a.blockSize; b <= (contextLen - 1) / a.blockSize; ++b)
      if (table[b] < 0 || table[b] >= a.numBlocks)
        fail("sequence ", s, ": block table entry ", b, " is ", table[b], ", outside 0..", a.numBlocks - 1);
  }
}

// ---- Work split -----------------------------------------------------------------------------

// Rows (query token x query head) one item aims for: enough that a K/V block read from memory
// serves many rows, few enough that the rows' state stays in L1/L2.
constexpr int64_t kTileRows = 32;
// Below this many multiply-adds (rows x keys x head dim) a call runs on the calling thread.
constexpr int64_t kMinParallelWork = 1 << 16;

// How a call is cut into items (none of this changes any row's arithmetic):
//  - prefill: tiles of kTileRows / group query tokens, one kv head (and its query heads) each;
//  - a sequence whose step fits one tile (decode): several kv heads per item, up to kTileRows
//    rows, so each block is one contiguous run of the cache for all of them;
//  - when that leaves fewer than 2 items per thread, fewer kv heads per item, then fewer query
//    heads per item (each such item reads its kv head's K/V itself).
class WorkSplit {
public:
  WorkSplit(const PagedAttentionArgs& a, int threads) : a_(a), group_(a.heads / a.kvHeads) {
    const int64_t wanted = threads > 1 ? 2 * static_cast<int64_t>(threads) : 1;
    kvCap_ = a.kvHeads;
    headsPerItem_ = group_;
    while (count() < wanted && kvCap_ > 1) kvCap_ = (kvCap_ + 1) / 2;
    const int64_t items = count();
    if (items < wanted && group_ > 1) {
      const int64_t splits = std::min<int64_t>(group_, (wanted + items - 1) / std::max<int64_t>(items, 1));
      headsPerItem_ = (group_ + splits - 1) / splits;
    }
  }

  // Fills `items` (cleared first; its capacity is reused, so warm calls do not allocate).
  void items(std::vector<WorkItem>& items) const {
    items.clear();
    for (int64_t s = 0; s < a_.numSeqs; ++s) {
      const int64_t queryLen = this->queryLen(s), contextLen = a_.contextLens[s];
      const int64_t tile = tokensPerTile(), kvPer = kvPerItem(queryLen);
      const int64_t kvItems = (a_.kvHeads + kvPer - 1) / kvPer;
      for (int64_t t0 = 0; t0 < queryLen; t0 += tile) {
        const int64_t count = std::min(tile, queryLen - t0);
        int64_t keys = 0;  // keys seen by the tile's tokens
        for (int64_t t = t0; t < t0 + count; ++t) {
          const int64_t pos = contextLen - queryLen + t;
          keys += a_.slidingWindow > 0 ? std::min(pos + 1, a_.slidingWindow) : pos + 1;
        }
        for (int64_t k = 0; k < kvItems; ++k) {
          // kv heads in nearly equal runs
          const int64_t kvBegin = k * a_.kvHeads / kvItems, kvEnd = (k + 1) * a_.kvHeads / kvItems;
          for (int64_t h0 = 0; h0 < group_; h0 += headsPerItem_) {
            const int64_t heads = std::min(headsPerItem_, group_ - h0);
            items.push_back({s, kvBegin, kvEnd - kvBegin, h0, heads, t0, count, (keys + 16 * count) * heads * (kvEnd - kvBegin) * a_.headDim});
          }
        }
      }
    }
    // Longest first, so the dynamic schedule ends with short items (greedy longest-processing-time);
    // ties in creation order (std::sort, unlike std::stable_sort, needs no buffer).
    std::sort(items.begin(), items.end(), [](const WorkItem& x, const WorkItem& y) {
      return std::tie(y.cost, x.seq, x.tokenBegin, x.kvHeadBegin, x.headBegin) < std::tie(x.cost, y.seq, y.tokenBegin, y.kvHeadBegin, y.headBegin);
    });
  }

private:
  int64_t queryLen(int64_t s) const { return a_.queryStartLoc[s + 1] - a_.queryStartLoc[s]; }
  int64_t tokensPerTile() const { return std::max<int64_t>(1, kTileRows / headsPerItem_); }
  int64_t kvPerItem(int64_t queryLen) const {
    if (headsPerItem_ < group_ || queryLen == 0 || queryLen > tokensPerTile()) return 1;
    return std::clamp<int64_t>(kTileRows / (queryLen * group_), 1, kvCap_);
  }
  int64_t count() const {
    int64_t n = 0;
    const int64_t tile = tokensPerTile(), headItems = (group_ + headsPerItem_ - 1) / headsPerItem_;
    for (int64_t s = 0; s < a_.numSeqs; ++s) {
      const int64_t queryLen = this->queryLen(s), kvPer = kvPerItem(queryLen);
      n += (queryLen + tile - 1) / tile * ((a_.kvHeads + kvPer - 1) / kvPer) * headItems;
    }
    return n;
  }

  const PagedAttentionArgs& a_;
  int64_t group_, kvCap_ = 1, headsPerItem_ = 1;
};

struct Kernel {
  ItemFn fn;
  int width;
};

Kernel selectKernel(int64_t headDim) {
  switch (activeCpuIsa()) {
#if PAGEDC_X86
    case CpuIsa::Avx512: return {avx512::itemFnFor(headDim), avx512::W};
    case CpuIsa::Avx2: return {avx2::itemFnFor(headDim), avx2::W};
#endif
    default: return {portable::itemFnFor(headDim), portable::W};
  }
}

}  // namespace

void pagedAttention(const PagedAttentionArgs& args) {
  validate(args);
  if (args.numTokens == 0) return;
  Problem p{};
  p.query = args.query;
  p.queryTokenStride = args.queryTokenStride != 0 ? args.queryTokenStride : args.heads * args.headDim;
  p.output = args.output;
  p.keyCache = args.keyCache;
  p.valueCache = args.valueCache;
  p.cacheType = args.cacheType;
  p.blockTables = args.blockTables;
  p.contextLens = args.contextLens;
  p.queryStartLoc = args.queryStartLoc;
  p.maxBlocks = args.maxBlocks;
  p.kvHeads = args.kvHeads;
  p.heads = args.heads;
  p.group = args.heads / args.kvHeads;
  p.blockSize = args.blockSize;
  p.headDim = args.headDim;
  p.scale = args.scale;
  p.softcap = args.softcap;
  p.invSoftcap = args.softcap > 0 ? 1.0f / args.softcap : 0.0f;
  p.slidingWindow = args.slidingWindow;

  const Kernel kernel = selectKernel(args.headDim);
  const int maxThreads = std::max(1, omp_get_max_threads());
  // The work list and scratch memory are kept per calling thread and reused: a warm call with the
  // same or smaller shapes allocates nothing.
  thread_local std::vector<WorkItem> items;
  thread_local std::vector<float> scratch;
  WorkSplit(args, maxThreads).items(items);
  int64_t maxRows = 0, work = 0;
  for (const WorkItem& item : items) {
    maxRows = std::max(maxRows, item.tokenCount * item.kvHeadCount * item.headCount);
    work += item.cost;
  }
  // Per thread: the rows' outputs (head dim padded to the vector width), running max and sum, two
  // rows' weights, and two kv heads' widened K/V slices; rounded up to whole cache lines.
  const int64_t dPad = (args.headDim + kernel.width - 1) / kernel.width * kernel.width;
  const int64_t perThread = (maxRows * dPad + 2 * maxRows + 2 * kernel.width + 4 * args.blockSize * args.headDim + 15) / 16 * 16;
  const int threads = work < kMinParallelWork ? 1 : static_cast<int>(std::min<int64_t>(maxThreads, static_cast<int64_t>(items.size())));
  const size_t scratchSize = static_cast<size_t>(perThread * threads + 16);
  if (scratch.size() < scratchSize) scratch.resize(scratchSize);
  float* base = scratch.data();
  base += (16 - (reinterpret_cast<uintptr_t>(base) / sizeof(float)) % 16) % 16;  // 64-byte aligned
  // Plain pointers into the calling thread's buffers (inside the region, `items` and `scratch`
  // would name each OpenMP thread's own thread_local copies).
  const WorkItem* const list = items.data();
  const int64_t numItems = static_cast<int64_t>(items.size());
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    float* mine = base + perThread * omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < numItems; ++i) kernel.fn(p, list[i], mine);
  }
}

}  // namespace pagedc::cpu
