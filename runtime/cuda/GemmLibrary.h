// Matrix products on the device for the CUDA backend's MatMul/Gemm nodes. cuBLASLt does them on
// a GPU (loadCublasLt, dlopen'ed like the driver); the emulated driver of the tests supplies its
// own implementation on host memory. The backend only sees this interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "ir/DType.h"
#include "runtime/cuda/CudaDriver.h"

namespace pagedc {

// Row-major: out[m, n] = a[m, k] x op(b) (+ bias[n]), with op(b) = b of shape [k, n], or with
// transB b of shape [n, k] used transposed (ONNX Gemm's transB, a weight stored [out, in]).
// Leading dimensions count elements between consecutive rows. All four tensors have `dtype`
// (F32, F16 or BF16); products accumulate in f32.
struct GemmCall {
  DType dtype = DType::F32;
  int64_t m = 0, n = 0, k = 0;
  CUdeviceptr a = 0;
  int64_t lda = 0;  // >= k
  CUdeviceptr b = 0;
  int64_t ldb = 0;  // >= n, or >= k with transB
  bool transB = false;
  CUdeviceptr out = 0;
  int64_t ldOut = 0;  // >= n
  CUdeviceptr bias = 0;  // [n], or 0 for none
};

class GemmLibrary {
public:
  virtual ~GemmLibrary() = default;
  virtual std::string name() const = 0;  // "cuBLASLt 13.0.0", "emulated"
  // Enqueues the product on `stream`. Allocates nothing and never synchronises, so it can be
  // captured in a CUDA graph. Throws Error naming the shape when the library refuses it.
  virtual void gemm(const GemmCall& call, CUstream stream) = 0;
};

// cuBLASLt (libcublasLt.so.13, else libcublasLt.so) on the device whose context is current.
// Throws Error naming the library when it cannot be loaded.
std::unique_ptr<GemmLibrary> loadCublasLt(std::shared_ptr<const CudaDriver> driver);

}  // namespace pagedc
