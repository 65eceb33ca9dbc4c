// Helpers of PagedAttentionKernelTest: element types and their rounding (ir/HalfFloat.h, independent
// of the kernels' own conversions), tolerances, and guard-paged device arrays on the emulator.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "emulation/cuda_emulation.h"
#include "ir/HalfFloat.h"
#include "pagedc_cuda.cuh"

namespace pagedc::pagedattentiontest {

template <class T>
struct Element;
template <>
struct Element<float> {
  static constexpr const char* name = "f32";
  static constexpr int mantissaBits = 23;
  static constexpr int minExponent = -126;
  static float store(float v) { return v; }
  static float load(float v) { return v; }
};
template <>
struct Element<f16> {
  static constexpr const char* name = "f16";
  static constexpr int mantissaBits = 10;
  static constexpr int minExponent = -14;
  static f16 store(float v) { return f16{floatToF16(v)}; }
  static float load(f16 v) { return f16ToFloat(v.bits); }
};
template <>
struct Element<bf16> {
  static constexpr const char* name = "bf16";
  static constexpr int mantissaBits = 7;
  static constexpr int minExponent = -126;
  static bf16 store(float v) { return bf16{floatToBf16(v)}; }
  static float load(bf16 v) { return bf16ToFloat(v.bits); }
};

// A value uniform in [lo, hi) rounded to T, so the reference and the kernel see the same input.
template <class T>
float randomRounded(std::mt19937& rng, float lo, float hi) {
  return Element<T>::load(Element<T>::store(std::uniform_real_distribution<float>(lo, hi)(rng)));
}

template <class T>
std::vector<T> toStorage(const std::vector<float>& values) {
  std::vector<T> out;
  out.reserve(values.size());
  for (float v : values) out.push_back(Element<T>::store(v));
  return out;
}

template <class T>
std::vector<float> widen(const std::vector<T>& values) {
  std::vector<float> out;
  out.reserve(values.size());
  for (const T& v : values) out.push_back(Element<T>::load(v));
  return out;
}

// |got - want| <= ulps * ulp_T(|want|) + absolute; ulp_T(x) is the spacing of T's values at x (at
// least that of T's smallest normal numbers). NaN must match NaN (an output left unwritten).
struct Tolerance {
  double ulps = 0;
  double absolute = 0;
};

template <class T>
double ulpOf(double x) {
  const int exponent = x == 0 ? Element<T>::minExponent : std::max(Element<T>::minExponent, std::ilogb(x));
  return std::ldexp(1.0, exponent - Element<T>::mantissaBits);
}

template <class T>
void expectClose(const std::vector<float>& got, const std::vector<float>& want, Tolerance tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  double worst = 0;
  std::ostringstream first;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got[i], w = want[i];
    bool ok;
    if (std::isnan(w) || std::isnan(g)) {
      ok = std::isnan(w) && std::isnan(g);
    } else {
      const double diff = std::fabs(g - w);
      worst = std::max(worst, diff);
      ok = diff <= tolerance.ulps * ulpOf<T>(std::fabs(w)) + tolerance.absolute;
    }
    if (!ok && bad++ < 5) first << "\n  [" << i << "] got " << g << " want " << w << " (diff " << (g - w) << ")";
  }
  EXPECT_EQ(bad, 0u) << what << " (" << Element<T>::name << "): " << bad << " of " << want.size() << " elements differ, largest finite difference "
                     << worst << first.str();
}

inline void expectSameBits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) ++bad;
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << want.size() << " elements differ";
}

// A typed guard-paged device allocation filled from a host vector, read back as a vector.
template <class T>
class DeviceArray {
public:
  explicit DeviceArray(const std::vector<T>& values) : buffer_(std::max<size_t>(1, values.size()) * sizeof(T)), size_(values.size()) {
    if (!values.empty()) std::memcpy(buffer_.data(), values.data(), values.size() * sizeof(T));
  }
  T* get() { return static_cast<T*>(buffer_.data()); }
  std::vector<T> read() const {
    std::vector<T> out(size_);
    if (size_) std::memcpy(out.data(), buffer_.data(), size_ * sizeof(T));
    return out;
  }

private:
  emu::DeviceBuffer buffer_;
  size_t size_;
};

}  // namespace pagedc::pagedattentiontest
