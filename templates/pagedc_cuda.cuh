// The prelude every kernel template includes: what differs between the GPU (NVRTC or nvcc) and the
// host (the CPU emulation in templates/emulation/), and the small device helpers the kernels share.
//
// Kernel templates use only what this file and kernel_params.h provide (no standard headers, no
// cuda_fp16.h), so the same text compiles in NVRTC without include paths, in nvcc, and in the host
// compiler against the emulation. 16-bit floats are pagedc's own storage types: on the GPU they
// convert with single PTX instructions (cvt), on the host with the same round-to-nearest-even.
#pragma once

#include "kernel_params.h"

#if defined(__CUDACC__)
#define PAGEDC_GPU 1
#define PAGEDC_DEVICE __device__ __forceinline__
#else
#define PAGEDC_GPU 0
#include "emulation/cuda_emulation.h"
#endif

namespace pagedc {

// IEEE binary16 and bfloat16 as 16 bits of storage; arithmetic happens in f32.
struct f16 {
  u16 bits;
};
struct bf16 {
  u16 bits;
};

PAGEDC_DEVICE float to_float(float x) { return x; }

#if PAGEDC_GPU

PAGEDC_DEVICE float to_float(f16 h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.bits));
  return f;
}
PAGEDC_DEVICE float to_float(bf16 h) { return __uint_as_float(static_cast<u32>(h.bits) << 16); }
PAGEDC_DEVICE f16 to_f16(float f) {
  u16 b;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(b) : "f"(f));
  return f16{b};
}
PAGEDC_DEVICE bf16 to_bf16(float f) {
  u16 b;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(b) : "f"(f));
  return bf16{b};
}

#else

PAGEDC_DEVICE float to_float(f16 h) { return emu::halfBitsToFloat(h.bits); }
PAGEDC_DEVICE float to_float(bf16 h) { return emu::bfloat16BitsToFloat(h.bits); }
PAGEDC_DEVICE f16 to_f16(float f) { return f16{emu::floatToHalfBits(f)}; }
PAGEDC_DEVICE bf16 to_bf16(float f) { return bf16{emu::floatToBfloat16Bits(f)}; }

#endif

// from_float<T>(x): x rounded to T (round to nearest even).
template <typename T>
struct FloatConvert;
template <>
struct FloatConvert<float> {
  static PAGEDC_DEVICE float from(float x) { return x; }
};
template <>
struct FloatConvert<f16> {
  static PAGEDC_DEVICE f16 from(float x) { return to_f16(x); }
};
template <>
struct FloatConvert<bf16> {
  static PAGEDC_DEVICE bf16 from(float x) { return to_bf16(x); }
};
template <typename T>
PAGEDC_DEVICE T from_float(float x) {
  return FloatConvert<T>::from(x);
}

constexpr int kWarpSize = 32;
constexpr u32 kFullWarp = 0xffffffffu;

// Butterfly reductions: every lane of the warp ends with the result.
PAGEDC_DEVICE float warp_sum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullWarp, v, offset);
  return v;
}
PAGEDC_DEVICE float warp_max(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(kFullWarp, v, offset));
  return v;
}

// Block-wide reductions over NUM_THREADS threads (a multiple of 32); every thread gets the result.
// `scratch` is shared memory of at least NUM_THREADS / 32 floats, free before the call; the
// function syncs before returning, so it may be reused at once.
template <int NUM_THREADS>
PAGEDC_DEVICE float block_sum(float v, float* scratch) {
  static_assert(NUM_THREADS % kWarpSize == 0, "NUM_THREADS must be a multiple of the warp size");
  constexpr int kWarps = NUM_THREADS / kWarpSize;
  v = warp_sum(v);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = lane < kWarps ? scratch[lane] : 0.0f;
  total = warp_sum(total);
  __syncthreads();
  return total;
}
template <int NUM_THREADS>
PAGEDC_DEVICE float block_max(float v, float* scratch) {
  static_assert(NUM_THREADS % kWarpSize == 0, "NUM_THREADS must be a multiple of the warp size");
  constexpr int kWarps = NUM_THREADS / kWarpSize;
  v = warp_max(v);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = lane < kWarps ? scratch[lane] : -__int_as_float(0x7f800000);
  total = warp_max(total);
  __syncthreads();
  return total;
}

}  // namespace pagedc
