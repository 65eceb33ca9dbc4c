// The sampler's row kernels on f32 logits: softmax with temperature, argmax, and the top-k / top-p
// filter. Semantics: SoftmaxParams, ArgmaxParams and TopKTopPParams in kernel_params.h, which follow
// the CPU sampler (runtime/Sampler.cpp) except where those comments say otherwise.
//
// One CTA per row (grid: rows); its threads stride over the vocabulary (any size), each summing its
// own elements in index order before a fixed-tree block reduction, so a row's result does not
// depend on the other rows or on the schedule (no float atomics anywhere).
//
// The top-k / top-p thresholds are found without sorting: a float maps to a 32-bit key that orders
// like the float (order_key), and "the largest key K whose mass (count, or probability) of elements
// with key >= K reaches a target" is found one 4-bit digit at a time (3 bits at 1024 threads),
// most significant first. Each of the 8 passes over the row accumulates the mass at the 15
// candidate keys base + d * 2^shift (d = 1..15) per thread, sums all 15 with one block reduction
// and keeps the largest candidate that reaches the target. The mass is monotone in the key, also
// in f32 (every candidate's sum adds a subset of the same non-negative terms in the same order), so
// this is an exact search over the key space, and ties (equal floats have equal keys) all land on
// the same side of the threshold.
#pragma once

#include "pagedc_cuda.cuh"

namespace pagedc {

namespace sampling_detail {

constexpr u32 kNegInfBits = 0xff800000u;
constexpr float kFloatMin = 1.17549435e-38f;  // smallest normal float

PAGEDC_DEVICE float negative_infinity() { return __uint_as_float(kNegInfBits); }

// A key that orders like the float: larger float, larger key; -0 and +0 share one key, and NaN gets
// key 0, below -inf (0x007fffff), so a filter always drops it.
PAGEDC_DEVICE u32 order_key(float v) {
  if (v != v) return 0u;
  const u32 bits = __float_as_uint(v + 0.0f);  // -0 + 0 = +0
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// Sums K values over the block at once (one pair of barriers instead of K); every thread gets the
// K totals. `scratch` holds K * NUM_THREADS / 32 floats and may be reused when this returns.
template <int NUM_THREADS, int K>
PAGEDC_DEVICE void block_sum_many(float (&values)[K], float* scratch) {
  constexpr int kWarps = NUM_THREADS / kWarpSize;
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  for (int k = 0; k < K; ++k) {
    const float warp_total = warp_sum(values[k]);
    if (lane == 0) scratch[k * kWarps + warp] = warp_total;
  }
  __syncthreads();
  for (int k = 0; k < K; ++k) values[k] = warp_sum(lane < kWarps ? scratch[k * kWarps + lane] : 0.0f);
  __syncthreads();
}

// The row's argmax: the lowest index among equal maxima, NaN never chosen; index -1 (value -inf)
// when every element is -inf or NaN. Every thread gets the result. `scratch_*` hold NUM_THREADS / 32.
template <int NUM_THREADS>
PAGEDC_DEVICE void block_argmax(const float* row, i64 vocab, float* scratch_value, int* scratch_index, float& best,
                                int& best_index) {
  constexpr int kWarps = NUM_THREADS / kWarpSize;
  best = negative_infinity();
  best_index = -1;
  // Strictly greater while walking up the indices: a thread keeps the first of its equal maxima.
  for (i64 i = threadIdx.x; i < vocab; i += NUM_THREADS) {
    const float v = row[i];
    if (v > best) {
      best = v;
      best_index = static_cast<int>(i);
    }
  }
  // (value, index) pairs combine by larger value, then lower index; only -inf pairs carry index -1,
  // and -inf never beats a real index, since a thread that saw a finite value has a finite best.
  auto combine = [&](float other, int other_index) {
    if (other > best || (other == best && other_index >= 0 && (best_index < 0 || other_index < best_index))) {
      best = other;
      best_index = other_index;
    }
  };
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(kFullWarp, best, offset);
    const int other_index = __shfl_xor_sync(kFullWarp, best_index, offset);
    combine(other, other_index);
  }
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  if (lane == 0) {
    scratch_value[warp] = best;
    scratch_index[warp] = best_index;
  }
  __syncthreads();
  best = negative_infinity();
  best_index = -1;
  if (lane < kWarps) {
    best = scratch_value[lane];
    best_index = scratch_index[lane];
  }
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const float other = __shfl_xor_sync(kFullWarp, best, offset);
    const int other_index = __shfl_xor_sync(kFullWarp, best_index, offset);
    combine(other, other_index);
  }
  __syncthreads();
}

template <int NUM_THREADS>
PAGEDC_DEVICE float block_row_max(const float* row, i64 vocab, float* scratch) {
  float m = negative_infinity();
  for (i64 i = threadIdx.x; i < vocab; i += NUM_THREADS) m = fmaxf(m, row[i]);
  return block_max<NUM_THREADS>(m, scratch);
}

// Key bits resolved per pass: 4 (15 candidate sums per thread), 3 at 1024 threads, where the
// 64-register limit would otherwise spill.
template <int NUM_THREADS>
constexpr int kDigitBits = NUM_THREADS >= 1024 ? 3 : 4;
constexpr int kMaxCandidates = 15;

// (x - max) / temperature, exactly 0 for the maximum itself: as in the CPU sampler, a +inf logit
// then gets weight 1 instead of exp(inf - inf) = NaN.
PAGEDC_DEVICE float scaled_logit(float x, float max, float temperature) { return x == max ? 0.0f : (x - max) / temperature; }

// Every element weighs 1: the mass of a key is how many elements are at least it (top-k).
struct CountWeight {
  PAGEDC_DEVICE float operator()(float, u32) const { return 1.0f; }
};

// Unnormalised probability exp((x - max) / temperature) of the elements top-k kept (top-p).
struct ProbabilityWeight {
  float max;
  float temperature;
  u32 min_key;
  PAGEDC_DEVICE float operator()(float x, u32 key) const { return key >= min_key ? expf(scaled_logit(x, max, temperature)) : 0.0f; }
};

// The largest key K such that the weights of the elements with key >= K sum to at least `target`
// (the caller guarantees that all elements together reach it, so K = 0 always qualifies).
template <int NUM_THREADS, typename Weight>
PAGEDC_DEVICE u32 largest_key_reaching(const float* row, i64 vocab, float target, const Weight& weight, float* scratch) {
  constexpr int kBits = kDigitBits<NUM_THREADS>;
  constexpr int kCandidates = (1 << kBits) - 1;
  u32 base = 0;
  // Digits from the top; the last one is narrower when kBits does not divide 32.
  for (int low = 32; low > 0;) {
    const int width = low < kBits ? low : kBits;
    const int shift = low - width;
    low = shift;
    const u32 top_digit = (1u << width) - 1;
    // mass[d]: weight of the elements with key >= base + (d + 1) << shift.
    float mass[kCandidates];
    for (int d = 0; d < kCandidates; ++d) mass[d] = 0.0f;
    for (i64 i = threadIdx.x; i < vocab; i += NUM_THREADS) {
      const float x = row[i];
      const u32 key = order_key(x);
      if (key < base) continue;
      const u32 above = (key - base) >> shift;  // candidates the element reaches (capped below)
      const u32 reached = above < top_digit ? above : top_digit;
      const float w = weight(x, key);
      for (int d = 0; d < kCandidates; ++d) mass[d] += static_cast<u32>(d) < reached ? w : 0.0f;
    }
    block_sum_many<NUM_THREADS, kCandidates>(mass, scratch);
    u32 digit = 0;
    for (int d = 0; d < kCandidates; ++d)
      if (static_cast<u32>(d) < top_digit && mass[d] >= target) digit = static_cast<u32>(d + 1);
    base += digit << shift;
  }
  return base;
}

}  // namespace sampling_detail

// probs[r] = softmax((logits[r] - max) / temperature); temperature <= 0 puts 1 on the argmax (the
// CPU sampler's greedy distribution); a row whose logits are all -inf gets zeros.
template <int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) softmax_rows(SoftmaxParams p) {
  constexpr int kWarps = NUM_THREADS / kWarpSize;
  __shared__ float scratch[kWarps];
  __shared__ int scratch_index[kWarps];
  const i64 r = blockIdx.x;
  if (r >= p.rows) return;
  const i64 vocab = p.vocab;
  const float* row = p.logits + r * vocab;
  float* probs = p.probs + r * vocab;
  const float temperature = p.temperatures ? p.temperatures[r] : 1.0f;
  if (temperature <= 0.0f) {
    float best;
    int best_index;
    sampling_detail::block_argmax<NUM_THREADS>(row, vocab, scratch, scratch_index, best, best_index);
    for (i64 i = threadIdx.x; i < vocab; i += NUM_THREADS) probs[i] = i == best_index ? 1.0f : 0.0f;
    return;
  }
  const float max = sampling_detail::block_row_max<NUM_THREADS>(row, vocab, scratch);
  if (max == sampling_detail::negative_infinity()) {
    for (i64 i = threadIdx.x; i < vocab; i += NUM_THREADS) probs[i] = 0.0f;
    return;
  }
  float partial = 0.0f;
  using sampling_detail::scaled_logit;
  for (i64 i = threadIdx.x; i < vocab; i += NUM_THREADS) partial += expf(scaled_logit(row[i], max, temperature));
  const float total = block_sum<NUM_THREADS>(partial, scratch);
  for (i64 i = threadIdx.x; i < vocab; i += NUM_THREADS) probs[i] = expf(scaled_logit(row[i], max, temperature)) / total;
}

template <int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) argmax_rows(ArgmaxParams p) {
  constexpr int kWarps = NUM_THREADS / kWarpSize;
  __shared__ float scratch[kWarps];
  __shared__ int scratch_index[kWarps];
  const i64 r = blockIdx.x;
  if (r >= p.rows) return;
  float best;
  int best_index;
  sampling_detail::block_argmax<NUM_THREADS>(p.logits + r * p.vocab, p.vocab, scratch, scratch_index, best, best_index);
  if (threadIdx.x == 0) {
    p.index[r] = best_index;
    if (p.value) p.value[r] = best;
  }
}

// In place: -inf for every logit below the row's top-k threshold (the k-th largest value) or below
// its top-p threshold (the value of the last token of the nucleus), keeping all ties of either.
template <int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) top_k_top_p_filter(TopKTopPParams p) {
  using namespace sampling_detail;
  __shared__ float scratch[kMaxCandidates * (NUM_THREADS / kWarpSize)];
  const i64 r = blockIdx.x;
  if (r >= p.rows) return;
  const i64 vocab = p.vocab;
  float* row = p.logits + r * vocab;
  const i64 top_k = p.top_k ? p.top_k[r] : 0;
  const bool use_k = top_k > 0 && top_k < vocab;
  const float top_p = p.top_p ? p.top_p[r] : 1.0f;
  const float temperature = p.temperatures ? p.temperatures[r] : 1.0f;
  const bool use_p = top_p < 1.0f && temperature > 0.0f;
  if (!use_k && !use_p) return;

  u32 threshold = 0;
  if (use_k) threshold = largest_key_reaching<NUM_THREADS>(row, vocab, static_cast<float>(top_k), CountWeight{}, scratch);
  if (use_p) {
    const float max = block_row_max<NUM_THREADS>(row, vocab, scratch);
    if (max > negative_infinity()) {
      // Key 0 (NaN) weighs nothing even without top-k, so NaN cannot poison the total.
      const ProbabilityWeight weight{max, temperature, threshold > 0u ? threshold : 1u};
      float partial = 0.0f;
      for (i64 i = threadIdx.x; i < vocab; i += NUM_THREADS) {
        const float x = row[i];
        partial += weight(x, order_key(x));
      }
      const float total = block_sum<NUM_THREADS>(partial, scratch);
      // top_p <= 0 (outside the valid range) keeps the most likely tokens only.
      const float target = fmaxf(top_p * total, kFloatMin);
      const u32 nucleus = largest_key_reaching<NUM_THREADS>(row, vocab, target, weight, scratch);
      if (nucleus > threshold) threshold = nucleus;
    }
  }
  // At least key 1: NaN (key 0) goes even when the filters keep everything else.
  if (threshold == 0u) threshold = 1u;
  for (i64 i = threadIdx.x; i < vocab; i += NUM_THREADS)
    if (order_key(row[i]) < threshold) row[i] = negative_infinity();
}

}  // namespace pagedc
