// Elementwise activations, plain or gated (SwiGLU, GeGLU: act(gate) * up). Semantics:
// ActivationParams in kernel_params.h; the reference ops are silu, gelu and gated_act
// (ir/ops/FusedOps.cpp, in double) and Relu.
//
// Grid-stride loop over count elements (grid: ceil(count / NUM_THREADS) covers each element once;
// a smaller grid also works). out may alias x or up.
#pragma once

#include "pagedc_cuda.cuh"

namespace pagedc {

namespace activation_detail {

// ACT values of the activation template.
constexpr int kSilu = 0;
constexpr int kGeluErf = 1;
constexpr int kGeluTanh = 2;
constexpr int kRelu = 3;

// The forms below avoid 1 + (something close to -1), which loses every significant bit for
// negative inputs in f32, and exp of large positive arguments (inf), so they keep a small relative
// error over the whole range, tails included:
//   silu(x)      = x sigmoid(x),  sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0, e = exp(-|x|)
//   gelu(x)      = 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2)
//   gelu_tanh(x) = 0.5 x (1 + tanh(u))         = x / (1 + exp(-2u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
// (In the negative tails erfc and exp multiply the relative rounding error of their f32 argument by
// about 2z^2 and 2|u|: tens of ulps at x = -5, inherent to evaluating them in f32.)
template <int ACT>
PAGEDC_DEVICE float activate(float x) {
  static_assert(ACT >= kSilu && ACT <= kRelu, "ACT: 0 silu, 1 gelu erf, 2 gelu tanh, 3 relu");
  if (ACT == kSilu) {
    const float e = expf(-fabsf(x));
    return x * ((x >= 0.0f ? 1.0f : e) / (1.0f + e));
  }
  if (ACT == kGeluErf) return 0.5f * x * erfcf(-0.70710678118654752f * x);
  if (ACT == kGeluTanh) {
    const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
    return x / (1.0f + expf(-2.0f * u));
  }
  return x > 0.0f ? x : 0.0f;
}

}  // namespace activation_detail

template <typename T, int ACT, int NUM_THREADS>
__global__ void __launch_bounds__(NUM_THREADS) activation(ActivationParams p) {
  const T* x = static_cast<const T*>(p.x);
  const T* up = static_cast<const T*>(p.up);
  T* out = static_cast<T*>(p.out);
  const i64 stride = static_cast<i64>(gridDim.x) * NUM_THREADS;
  for (i64 i = static_cast<i64>(blockIdx.x) * NUM_THREADS + threadIdx.x; i < p.count; i += stride) {
    float y = activation_detail::activate<ACT>(to_float(x[i]));
    if (up) y *= to_float(up[i]);
    out[i] = from_float<T>(y);
  }
}

}  // namespace pagedc
