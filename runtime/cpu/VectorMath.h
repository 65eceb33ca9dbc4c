// Vectorisable scalar math for the CPU kernels: loops over these compile to SIMD code (no libm
// calls), so activations run at memory speed. Accuracy: expApprox is within 2 ulp of expf over
// [-87, 88] (a degree-6 minimax-style polynomial after range reduction, the classic Cephes scheme).
#pragma once

#include <bit>
#include <cstdint>

namespace pagedc::cpu {

inline float expApprox(float x) {
  // Clamp so 2^n stays a normal float; exp(-87.3) is already below float's normal range.
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  // x - n ln2 in two parts, so the reduced argument keeps full precision.
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

inline float siluApprox(float x) { return x / (1.0f + expApprox(-x)); }

// tanh(y) = 1 - 2 / (exp(2y) + 1): exact limits at +-inf through the clamp in expApprox.
inline float tanhApprox(float y) { return 1.0f - 2.0f / (expApprox(2.0f * y) + 1.0f); }

inline float geluTanhApprox(float x) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * x * (1.0f + tanhApprox(k * (x + 0.044715f * x * x * x)));
}

}  // namespace pagedc::cpu
