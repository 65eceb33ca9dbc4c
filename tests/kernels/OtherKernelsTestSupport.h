// Shared by the tests of the kernels other than paged attention (kv cache, norms, rope, activations,
// embedding, sampling, tensor ops): the element types and their rounding, random inputs already
// rounded to a type, per-type tolerances, device buffers filled from and read back into vectors, and
// a launch repeated under several emulator schedules.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "emulation/cuda_emulation.h"
#include "ir/HalfFloat.h"
#include "ir/Tensor.h"
#include "pagedc_cuda.cuh"

namespace pagedc::kerneltest {

// ---- element types -------------------------------------------------------------------------------

template <class T>
struct Element;
template <>
struct Element<float> {
  static constexpr DType dtype = DType::F32;
  static constexpr const char* name = "f32";
  static constexpr int mantissaBits = 23;
  static float store(float v) { return v; }
  static float load(float v) { return v; }
};
template <>
struct Element<f16> {
  static constexpr DType dtype = DType::F16;
  static constexpr const char* name = "f16";
  static constexpr int mantissaBits = 10;
  static f16 store(float v) { return f16{floatToF16(v)}; }
  static float load(f16 v) { return f16ToFloat(v.bits); }
};
template <>
struct Element<bf16> {
  static constexpr DType dtype = DType::BF16;
  static constexpr const char* name = "bf16";
  static constexpr int mantissaBits = 7;
  static bf16 store(float v) { return bf16{floatToBf16(v)}; }
  static float load(bf16 v) { return bf16ToFloat(v.bits); }
};

template <class T>
float roundTo(float v) {
  return Element<T>::load(Element<T>::store(v));
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

// n values uniform in [lo, hi), each already rounded to T (so the reference and the kernel see the
// same inputs).
template <class T>
std::vector<float> randomRounded(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(n);
  for (float& v : out) v = roundTo<T>(dist(rng));
  return out;
}

// An f32 tensor for the reference interpreter (which computes in f32 whatever the graph's types).
inline Tensor f32Tensor(std::vector<int64_t> shape, const std::vector<float>& values) {
  return Tensor::fromValues(DType::F32, std::move(shape), values);
}
inline Tensor i64Tensor(std::vector<int64_t> shape, const std::vector<int64_t>& values) {
  return Tensor::fromValues(DType::I64, std::move(shape), values);
}
inline std::vector<float> floatsOf(const Tensor& t) {
  Tensor c = t.convertTo(DType::F32);
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numElements());
}

// ---- tolerances ----------------------------------------------------------------------------------

// |got - want| <= ulps * ulp_T(|want|) + absolute, where ulp_T(x) is the spacing of T's values at x
// (at least the spacing of T's smallest normal values).
struct Tolerance {
  double ulps = 0;
  double absolute = 0;
};

template <class T>
double ulpOf(double x) {
  constexpr int minExponent = Element<T>::dtype == DType::F16 ? -14 : -126;
  int exponent = x == 0 ? minExponent : std::max(minExponent, std::ilogb(x));
  return std::ldexp(1.0, exponent - Element<T>::mantissaBits);
}

// Compares element by element; reports the first few differences and how many there are.
template <class T>
void expectClose(const std::vector<float>& got, const std::vector<float>& want, Tolerance tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = got[i], w = want[i];
    bool ok;
    if (std::isnan(w) || std::isnan(g))
      ok = std::isnan(w) && std::isnan(g);
    else if (std::isinf(w) || std::isinf(g))
      ok = g == w;
    else
      ok = std::fabs(g - w) <= tolerance.ulps * ulpOf<T>(std::fabs(w)) + tolerance.absolute;
    if (!ok && bad++ < 5) first << "\n  [" << i << "] got " << g << " want " << w << " (diff " << (g - w) << ")";
  }
  EXPECT_EQ(bad, 0u) << what << " (" << Element<T>::name << "): " << bad << " of " << want.size() << " elements differ" << first.str();
}

// Bitwise equality of two float vectors (NaN equal to NaN of the same bits).
inline void expectSameBits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < want.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && bad++ < 5) first << "\n  [" << i << "] got " << got[i] << " want " << want[i];
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << want.size() << " elements differ" << first.str();
}

// ---- device memory and launches ------------------------------------------------------------------

// A typed guard-paged device allocation (an access past its end faults) filled from a host vector.
template <class T>
class DeviceArray {
public:
  explicit DeviceArray(const std::vector<T>& values) : buffer_(values.size() * sizeof(T)), size_(values.size()) {
    if (!values.empty()) std::memcpy(buffer_.data(), values.data(), values.size() * sizeof(T));
  }
  // Uninitialised: DeviceBuffer's 0xff bytes (NaN for every float type, -1 for integers), so an
  // element the kernel fails to write shows.
  explicit DeviceArray(size_t size) : buffer_(size * sizeof(T)), size_(size) {}
  // From host values of another type (int64_t ids into the kernels' i64 = long long).
  template <class U>
    requires(!std::is_same_v<U, T> && std::is_convertible_v<U, T>)
  explicit DeviceArray(const std::vector<U>& values) : DeviceArray(std::vector<T>(values.begin(), values.end())) {}
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

// The schedules every launch runs under (races show as differences between them or from the
// reference), and their names for SCOPED_TRACE.
using emu::scheduleName;
inline std::vector<emu::LaunchOptions> schedules() { return emu::testSchedules(); }

}  // namespace pagedc::kerneltest
