// The machinery of `pagedc kernels check` (codegen/KernelCheck.h) the per-kernel cases share:
// guard-paged host buffers standing for device memory, a loaded host kernel library, element
// conversions, the reference interpreter on one op, and the loop that runs a case under every
// schedule and compares its outputs. Internal to codegen/KernelCheck*.cpp.
#pragma once

#include <cstddef>
#include <cstring>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "codegen/HostKernelBuilder.h"
#include "codegen/KernelCheck.h"
#include "ir/Attribute.h"
#include "ir/DType.h"
#include "ir/Tensor.h"
#include "runtime/kernels/KernelKey.h"

namespace pagedc::kernelcheck {

// ---- elements -------------------------------------------------------------------------------------

// "f32" | "f16" | "bf16" -> DType; throws Error naming the key's parameter otherwise.
DType floatDType(const std::string& name);
// v rounded to `dtype` (f32: unchanged).
float roundTo(DType dtype, float v);
// n values uniform in [lo, hi), each rounded to `dtype`.
std::vector<float> randomRounded(std::mt19937_64& rng, DType dtype, size_t n, float lo, float hi);

// ---- device memory ----------------------------------------------------------------------------------

// Host memory standing in for a device allocation: it ends on an inaccessible guard page (and
// starts after one), so a kernel reading or writing past it faults instead of passing silently.
class GuardedBuffer {
public:
  GuardedBuffer() = default;
  explicit GuardedBuffer(size_t bytes);
  ~GuardedBuffer();
  GuardedBuffer(GuardedBuffer&& other) noexcept;
  GuardedBuffer& operator=(GuardedBuffer&& other) noexcept;
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  void* data() const { return data_; }  // null for 0 bytes
  size_t size() const { return bytes_; }

  // A buffer of `values` stored as `dtype` (F32, F16, BF16), or as i64.
  static GuardedBuffer ofFloats(DType dtype, const std::vector<float>& values);
  static GuardedBuffer ofInts(const std::vector<int64_t>& values);
  template <class T>
  static GuardedBuffer ofPod(const std::vector<T>& values) {
    GuardedBuffer buffer(values.size() * sizeof(T));
    if (!values.empty()) std::memcpy(buffer.data(), values.data(), buffer.size());
    return buffer;
  }
  // The contents read as `count` elements of `dtype`, widened to f32 (I64: converted).
  std::vector<float> readFloats(DType dtype, size_t count) const;
  std::vector<uint8_t> readBytes() const;

private:
  void* mapping_ = nullptr;
  size_t mappingBytes_ = 0;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// ---- a loaded variant -----------------------------------------------------------------------------

struct LaunchDims {
  unsigned x = 1, y = 1, z = 1;
};

struct Schedule {
  int kind = 0;  // kEmulatedSchedule...
  unsigned long long seed = 0;
  std::string name;
};

// A host kernel library (dlopen'ed), checked against the key and params size it must have.
class LoadedKernel {
public:
  LoadedKernel(const std::string& libraryPath, const std::string& keyText, size_t paramsBytes);
  ~LoadedKernel();
  LoadedKernel(const LoadedKernel&) = delete;
  LoadedKernel& operator=(const LoadedKernel&) = delete;

  // Runs the grid; throws Error with the emulator's message (race, out of bounds, ...).
  void launch(LaunchDims grid, unsigned threads, const void* params, const Schedule& schedule) const;
  const std::string& key() const { return key_; }

private:
  void* handle_ = nullptr;
  std::string key_;
  void* launch_ = nullptr;
};

// ---- reference ------------------------------------------------------------------------------------

// Runs op `opName` on the interpreter with `inputs` as graph inputs of their exact shapes (a null
// tensor is an omitted operand); returns its results.
std::vector<Tensor> runReferenceOp(const std::string& opName, const std::vector<Tensor>& inputs, AttrMap attrs, size_t numResults = 1);
Tensor f32Tensor(std::vector<int64_t> shape, const std::vector<float>& values);
Tensor i64Tensor(std::vector<int64_t> shape, const std::vector<int64_t>& values);
std::vector<float> floatsOf(const Tensor& t);

// ---- running and comparing ------------------------------------------------------------------------

// |got - want| <= ulps * ulp_dtype(|want|) + absolute; NaN must meet NaN and infinities be equal.
struct Tolerance {
  double ulps = 0;
  double absolute = 0;
};

// What an output must be.
struct ExpectedOutput {
  std::string name;
  DType dtype = DType::F32;  // the output's storage type (tolerances are in its ulps)
  std::vector<float> values;
  Tolerance tolerance;
};

// The outputs of one run of a case (one schedule), by name.
using RunOutputs = std::map<std::string, std::vector<float>>;

// Everything a case needs: the key, the random source, the variants to launch and where the
// results go.
class CheckContext {
public:
  CheckContext(const KernelKey& key, const KernelCheckOptions& options, const HostKernelBuilder& builder, KernelCheckResult& result);

  const KernelKey& key() const { return key_; }
  std::mt19937_64& rng() { return rng_; }
  // The variant `key` built and loaded (once per key), recorded in the result.
  const LoadedKernel& kernel(const KernelKey& key, size_t paramsBytes);
  // Runs `run` under every schedule, timing it, and compares each run's outputs with `expected`
  // and with the first schedule's.
  void verify(const std::string& caseName, const std::vector<ExpectedOutput>& expected, const std::function<RunOutputs(const Schedule&)>& run);

private:
  const KernelKey& key_;
  const KernelCheckOptions& options_;
  const HostKernelBuilder& builder_;
  KernelCheckResult& result_;
  std::mt19937_64 rng_;
  std::vector<Schedule> schedules_;
  std::map<std::string, std::unique_ptr<LoadedKernel>> loaded_;
};

// The per-kind cases (KernelCheckAttention.cpp, KernelCheckOtherKernels.cpp). Each returns false
// when `key`'s kernel is not its kind.
bool checkAttentionKernel(CheckContext& context);
bool checkOtherKernel(CheckContext& context);

// A variant of another kernel with the given parameters (the catalog's defaults for the rest).
KernelKey companionKey(const std::string& kernel, const std::map<std::string, std::string>& values);

}  // namespace pagedc::kernelcheck
