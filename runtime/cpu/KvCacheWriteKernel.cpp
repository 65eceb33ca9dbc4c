#include "runtime/cpu/KvCacheWriteKernel.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "ir/Error.h"
#include "ir/HalfFloat.h"
#include "runtime/cpu/CpuIsa.h"

namespace pagedc::cpu {

namespace {

// Narrowing one row of n floats to 16 bits, the same bits as floatToBf16 / floatToF16.
using NarrowFn = void (*)(const float*, uint16_t*, int64_t);

void narrowBf16Portable(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = floatToBf16(src[i]);
}
void narrowF16Portable(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = floatToF16(src[i]);
}

#if PAGEDC_X86

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() (a self-initialised variable) as the unused
// merge source, which -Wuninitialized flags once inlined: a false positive (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Round to nearest even by integer arithmetic, as floatToBf16: bits + 0x7fff + lsb, top half;
// a NaN keeps its top bits with the quiet bit set.
[[gnu::target("avx2")]] __m128i bf16Of8(__m256 x) {
  const __m256i bits = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
  const __m256i isNan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  const __m256i r = _mm256_blendv_epi8(rounded, quiet, isNan);
  // Pack the low 16 bits of the 8 lanes (values are < 65536, so unsigned saturation is exact).
  return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

[[gnu::target("avx2")]] void narrowBf16Avx2(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), bf16Of8(_mm256_loadu_ps(src + i)));
  for (; i < n; ++i) dst[i] = floatToBf16(src[i]);
}

// F16C rounds to nearest even like floatToF16; NaNs are replaced by floatToF16's sign | 0x7e00.
[[gnu::target("avx2,f16c")]] void narrowF16Avx2(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(src + i);
    const __m128i half = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i nan32 = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    const __m128i isNan = _mm_packs_epi32(_mm256_castsi256_si128(nan32), _mm256_extracti128_si256(nan32, 1));
    const __m128i canonical = _mm_or_si128(_mm_and_si128(half, _mm_set1_epi16(static_cast<short>(0x8000))), _mm_set1_epi16(0x7e00));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_blendv_epi8(half, canonical, isNan));
  }
  for (; i < n; ++i) dst[i] = floatToF16(src[i]);
}

[[gnu::target("avx512f,avx512bw")]] void narrowBf16Avx512(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(src + i);
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
    const __m512i r = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), rounded, quiet);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(r));
  }
  for (; i < n; ++i) dst[i] = floatToBf16(src[i]);
}

[[gnu::target("avx512f,avx512bw,avx512vl")]] void narrowF16Avx512(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(src + i);
    const __m256i half = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i canonical = _mm256_or_si256(_mm256_and_si256(half, _mm256_set1_epi16(static_cast<short>(0x8000))), _mm256_set1_epi16(0x7e00));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_mask_blend_epi16(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), half, canonical));
  }
  for (; i < n; ++i) dst[i] = floatToF16(src[i]);
}

#pragma GCC diagnostic pop
#endif  // PAGEDC_X86

NarrowFn narrowFn(DType type) {
  const bool bf16 = type == DType::BF16;
  switch (activeCpuIsa()) {
#if PAGEDC_X86
    case CpuIsa::Avx512: return bf16 ? narrowBf16Avx512 : narrowF16Avx512;
    case CpuIsa::Avx2: return bf16 ? narrowBf16Avx2 : narrowF16Avx2;
#endif
    default: return bf16 ? narrowBf16Portable : narrowF16Portable;
  }
}

// Below this many elements a write runs on the calling thread.
constexpr int64_t kMinParallelElements = 1 << 16;

}  // namespace

void kvCacheWrite(const KvCacheWriteArgs& a) {
  if (a.numTokens < 0 || a.numBlocks < 0 || a.kvHeads <= 0 || a.blockSize <= 0 || a.headDim <= 0)
    fail("kv cache write: bad geometry (tokens ", a.numTokens, ", blocks ", a.numBlocks, ", kv heads ", a.kvHeads, ", block size ", a.blockSize,
         ", head dim ", a.headDim, ")");
  if (a.cacheType != DType::F32 && a.cacheType != DType::BF16 && a.cacheType != DType::F16)
    fail("kv cache write: the caches must be f32, bf16 or f16, not ", dtypeName(a.cacheType));
  const int64_t rowElems = a.kvHeads * a.headDim;
  const int64_t keyStride = a.keyTokenStride != 0 ? a.keyTokenStride : rowElems;
  const int64_t valueStride = a.valueTokenStride != 0 ? a.valueTokenStride : rowElems;
  if (keyStride < rowElems || valueStride < rowElems)
    fail("kv cache write: token strides (", keyStride, ", ", valueStride, ") are less than kv heads * head dim (", rowElems, ")");
  if (a.numTokens == 0) return;
  if (!a.key || !a.value || !a.keyCache || !a.valueCache || !a.slots) fail("kv cache write: missing key, value, cache or slots");
  const int64_t numSlots = a.numBlocks * a.blockSize;
  for (int64_t t = 0; t < a.numTokens; ++t)
    if (a.slots[t] >= numSlots) fail("token ", t, " has slot ", a.slots[t], " beyond the cache of ", a.numBlocks, " blocks of ", a.blockSize);

  // Threads split the kv heads, each head's tokens in order: a slot written twice keeps the last
  // token's row, as in the reference, and no two threads touch the same cache row.
  const int64_t elements = a.numTokens * rowElems;
  const int threads = elements < kMinParallelElements ? 1 : static_cast<int>(std::min<int64_t>(omp_get_max_threads(), a.kvHeads));
  const NarrowFn narrow = a.cacheType == DType::F32 ? nullptr : narrowFn(a.cacheType);
  const int64_t d = a.headDim;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (int64_t h = 0; h < a.kvHeads; ++h)
    for (int64_t t = 0; t < a.numTokens; ++t) {
      const int64_t slot = a.slots[t];
      if (slot < 0) continue;  // padding
      const int64_t row = ((slot / a.blockSize * a.kvHeads + h) * a.blockSize + slot % a.blockSize) * d;
      const float* k = a.key + t * keyStride + h * d;
      const float* v = a.value + t * valueStride + h * d;
      if (!narrow) {
        std::memcpy(static_cast<float*>(a.keyCache) + row, k, static_cast<size_t>(d) * sizeof(float));
        std::memcpy(static_cast<float*>(a.valueCache) + row, v, static_cast<size_t>(d) * sizeof(float));
      } else {
        narrow(k, static_cast<uint16_t*>(a.keyCache) + row, d);
        narrow(v, static_cast<uint16_t*>(a.valueCache) + row, d);
      }
    }
}

}  // namespace pagedc::cpu
