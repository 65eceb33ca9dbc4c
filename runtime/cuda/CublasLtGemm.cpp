// cuBLASLt loaded with dlopen, behind GemmLibrary.
//
// Declarations: like the driver (CudaDriver.h), pagedc declares the few cuBLASLt types and
// constants it uses (values as in cublasLt.h / cublas_api.h / library_types.h of CUDA 12 and 13),
// so the build needs no toolkit and no libcublasLt at link time.
//
// Row-major to column-major: cuBLASLt is column-major. A row-major [r, c] matrix with row stride ld
// is the column-major [c, r] matrix with leading dimension ld, i.e. its transpose. So the row-major
// out[m, n] = a[m, k] x op(b) is computed as the column-major out^T[n, m] = op(b)^T[n, k] x a^T[k, m]:
// cuBLAS's "A" is our b (no transpose for b [k, n]; transposed for a transB weight [n, k]) and its
// "B" is our a, untransposed.
//
// Precision: f16/bf16 inputs accumulate in f32 (CUBLAS_COMPUTE_32F, f32 scale). f32 also uses
// CUBLAS_COMPUTE_32F, not TF32: pagedc's f32 artifacts are the ones compared with the reference
// at f32 tolerances (TF32 keeps 10 mantissa bits, errors ~1e-3 relative), and a user who wants
// tensor-core speed compiles the model to f16 or bf16, which keeps f32 accumulation as well.
#include <dlfcn.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "ir/Error.h"
#include "runtime/cuda/GemmLibrary.h"

namespace pagedc {

namespace {

using cublasStatus_t = int;
struct cublasLtContext;
struct cublasLtMatmulDescOpaque;
struct cublasLtMatrixLayoutOpaque;
struct cublasLtMatmulPreferenceOpaque;
using cublasLtHandle_t = cublasLtContext*;
using cublasLtMatmulDesc_t = cublasLtMatmulDescOpaque*;
using cublasLtMatrixLayout_t = cublasLtMatrixLayoutOpaque*;
using cublasLtMatmulPreference_t = cublasLtMatmulPreferenceOpaque*;
struct cublasLtMatmulAlgo_t {
  uint64_t data[8];
};
struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};

constexpr cublasStatus_t kCublasSuccess = 0;
constexpr int kComputeF32 = 68;  // CUBLAS_COMPUTE_32F
constexpr int kDataF32 = 0;      // CUDA_R_32F
constexpr int kDataF16 = 2;      // CUDA_R_16F
constexpr int kDataBF16 = 14;    // CUDA_R_16BF
constexpr int32_t kOpN = 0;      // CUBLAS_OP_N
constexpr int32_t kOpT = 1;      // CUBLAS_OP_T
constexpr int kDescTransA = 3;   // CUBLASLT_MATMUL_DESC_TRANSA (int32_t)
constexpr int kDescTransB = 4;   // CUBLASLT_MATMUL_DESC_TRANSB (int32_t)
constexpr int kDescEpilogue = 7;     // CUBLASLT_MATMUL_DESC_EPILOGUE (uint32_t)
constexpr int kDescBiasPointer = 8;  // CUBLASLT_MATMUL_DESC_BIAS_POINTER (void*)
constexpr uint32_t kEpilogueDefault = 1;  // CUBLASLT_EPILOGUE_DEFAULT
constexpr uint32_t kEpilogueBias = 4;     // CUBLASLT_EPILOGUE_BIAS
constexpr int kPrefMaxWorkspaceBytes = 1;  // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES (uint64_t)

struct CublasLtApi {
  cublasStatus_t (*create)(cublasLtHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasLtHandle_t) = nullptr;
  size_t (*getVersion)() = nullptr;
  const char* (*statusString)(cublasStatus_t) = nullptr;
  cublasStatus_t (*descCreate)(cublasLtMatmulDesc_t*, int computeType, int scaleType) = nullptr;
  cublasStatus_t (*descDestroy)(cublasLtMatmulDesc_t) = nullptr;
  cublasStatus_t (*descSetAttribute)(cublasLtMatmulDesc_t, int attribute, const void* value, size_t bytes) = nullptr;
  cublasStatus_t (*layoutCreate)(cublasLtMatrixLayout_t*, int type, uint64_t rows, uint64_t cols, int64_t ld) = nullptr;
  cublasStatus_t (*layoutDestroy)(cublasLtMatrixLayout_t) = nullptr;
  cublasStatus_t (*preferenceCreate)(cublasLtMatmulPreference_t*) = nullptr;
  cublasStatus_t (*preferenceDestroy)(cublasLtMatmulPreference_t) = nullptr;
  cublasStatus_t (*preferenceSetAttribute)(cublasLtMatmulPreference_t, int attribute, const void* value, size_t bytes) = nullptr;
  cublasStatus_t (*heuristic)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int requested,
                              cublasLtMatmulHeuristicResult_t* results, int* returned) = nullptr;
  cublasStatus_t (*matmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void* alpha, const void* a, cublasLtMatrixLayout_t,
                           const void* b, cublasLtMatrixLayout_t, const void* beta, const void* c, cublasLtMatrixLayout_t, void* d,
                           cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspaceBytes,
                           CUstream stream) = nullptr;
};

int dataType(DType dtype) {
  switch (dtype) {
    case DType::F32: return kDataF32;
    case DType::F16: return kDataF16;
    case DType::BF16: return kDataBF16;
    default: fail("cuBLASLt GEMM: unsupported dtype ", dtypeName(dtype), " (f32, f16 or bf16)");
  }
}

class CublasLtGemm final : public GemmLibrary {
public:
  CublasLtGemm(std::shared_ptr<const CudaDriver> driver, void* library, const CublasLtApi& api, std::string libraryName)
      : driver_(std::move(driver)), library_(library), api_(api), libraryName_(std::move(libraryName)) {
    check(api_.create(&handle_), "cublasLtCreate");
    try {
      driver_->check(driver_->cuMemAlloc(&workspace_, kWorkspaceBytes), "cuMemAlloc", "the cuBLASLt workspace");
    } catch (...) {
      api_.destroy(handle_);
      ::dlclose(library_);
      throw;
    }
  }

  ~CublasLtGemm() override {
    for (auto& [key, plan] : plans_) destroyPlan(plan);
    if (workspace_) driver_->cuMemFree(workspace_);
    api_.destroy(handle_);
    ::dlclose(library_);
  }

  std::string name() const override {
    const size_t version = api_.getVersion ? api_.getVersion() : 0;
    return "cuBLASLt " + std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." + std::to_string(version % 100) +
           " (" + libraryName_ + ")";
  }

  void gemm(const GemmCall& call, CUstream stream) override {
    if (call.m == 0 || call.n == 0) return;
    if (call.m < 0 || call.n < 0 || call.k <= 0 || call.lda < call.k || call.ldOut < call.n || call.ldb < (call.transB ? call.k : call.n))
      fail("cuBLASLt GEMM: invalid shape m=", call.m, " n=", call.n, " k=", call.k, " lda=", call.lda, " ldb=", call.ldb, " ldOut=", call.ldOut);
    const Plan& plan = planFor(call);
    const float alpha = 1.0f, beta = 0.0f;
    // The bias pointer is a descriptor attribute: set per call (cheap, host-only), so one plan serves
    // every layer with the same shape.
    if (call.bias) {
      void* bias = reinterpret_cast<void*>(static_cast<uintptr_t>(call.bias));
      check(api_.descSetAttribute(plan.desc, kDescBiasPointer, &bias, sizeof(bias)), "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
    }
    // cuBLAS "A" = our b, "B" = our a (see the top of this file).
    const void* a = reinterpret_cast<const void*>(static_cast<uintptr_t>(call.b));
    const void* b = reinterpret_cast<const void*>(static_cast<uintptr_t>(call.a));
    void* d = reinterpret_cast<void*>(static_cast<uintptr_t>(call.out));
    const cublasStatus_t status = api_.matmul(handle_, plan.desc, &alpha, a, plan.layoutA, b, plan.layoutB, &beta, d, plan.layoutD, d,
                                              plan.layoutD, &plan.algo, reinterpret_cast<void*>(static_cast<uintptr_t>(workspace_)),
                                              kWorkspaceBytes, stream);
    if (status != kCublasSuccess)
      fail("cublasLtMatmul failed for ", describe(call), ": ", statusText(status));
  }

private:
  static constexpr size_t kWorkspaceBytes = size_t{32} << 20;

  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t layoutA = nullptr, layoutB = nullptr, layoutD = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  using PlanKey = std::tuple<DType, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool>;

  std::string statusText(cublasStatus_t status) const {
    const char* text = api_.statusString ? api_.statusString(status) : nullptr;
    return text ? std::string(text) : "cublasStatus " + std::to_string(status);
  }
  void check(cublasStatus_t status, const char* call) const {
    if (status != kCublasSuccess) fail(call, " failed: ", statusText(status));
  }
  static std::string describe(const GemmCall& call) {
    return std::string(dtypeName(call.dtype)) + " [" + std::to_string(call.m) + ", " + std::to_string(call.k) + "] x " +
           (call.transB ? "[" + std::to_string(call.n) + ", " + std::to_string(call.k) + "]^T"
                        : "[" + std::to_string(call.k) + ", " + std::to_string(call.n) + "]");
  }

  void destroyPlan(Plan& plan) {
    if (plan.layoutA) api_.layoutDestroy(plan.layoutA);
    if (plan.layoutB) api_.layoutDestroy(plan.layoutB);
    if (plan.layoutD) api_.layoutDestroy(plan.layoutD);
    if (plan.desc) api_.descDestroy(plan.desc);
    plan = {};
  }

  // Descriptors and the heuristic's algorithm per shape, made once: the first call of a shape
  // (outside graph capture or inside: both are host-only) pays for the heuristic query.
  const Plan& planFor(const GemmCall& call) {
    const PlanKey key{call.dtype, call.m, call.n, call.k, call.lda, call.ldb, call.ldOut, call.transB, call.bias != 0};
    if (auto it = plans_.find(key); it != plans_.end()) return it->second;
    // Prefill chunk sizes make many distinct m: bound the cache (its entries are cheap to rebuild).
    if (plans_.size() >= 4096) {
      for (auto& [k, plan] : plans_) destroyPlan(plan);
      plans_.clear();
    }
    Plan plan;
    try {
      const int type = dataType(call.dtype);
      check(api_.descCreate(&plan.desc, kComputeF32, kDataF32), "cublasLtMatmulDescCreate");
      const int32_t transA = call.transB ? kOpT : kOpN, transB = kOpN;
      check(api_.descSetAttribute(plan.desc, kDescTransA, &transA, sizeof(transA)), "cublasLtMatmulDescSetAttribute(TRANSA)");
      check(api_.descSetAttribute(plan.desc, kDescTransB, &transB, sizeof(transB)), "cublasLtMatmulDescSetAttribute(TRANSB)");
      const uint32_t epilogue = call.bias ? kEpilogueBias : kEpilogueDefault;
      check(api_.descSetAttribute(plan.desc, kDescEpilogue, &epilogue, sizeof(epilogue)), "cublasLtMatmulDescSetAttribute(EPILOGUE)");
      if (call.bias) {
        void* bias = reinterpret_cast<void*>(static_cast<uintptr_t>(call.bias));
        check(api_.descSetAttribute(plan.desc, kDescBiasPointer, &bias, sizeof(bias)), "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
      }
      // Column-major views: our b is [n, k] (transB: stored column-major as [k, n], ld = ldb) or
      // column-major [n, k] (ld = ldb); our a is column-major [k, m]; out column-major [n, m].
      if (call.transB)
        check(api_.layoutCreate(&plan.layoutA, type, static_cast<uint64_t>(call.k), static_cast<uint64_t>(call.n), call.ldb), "cublasLtMatrixLayoutCreate(b)");
      else
        check(api_.layoutCreate(&plan.layoutA, type, static_cast<uint64_t>(call.n), static_cast<uint64_t>(call.k), call.ldb), "cublasLtMatrixLayoutCreate(b)");
      check(api_.layoutCreate(&plan.layoutB, type, static_cast<uint64_t>(call.k), static_cast<uint64_t>(call.m), call.lda), "cublasLtMatrixLayoutCreate(a)");
      check(api_.layoutCreate(&plan.layoutD, type, static_cast<uint64_t>(call.n), static_cast<uint64_t>(call.m), call.ldOut), "cublasLtMatrixLayoutCreate(out)");
      cublasLtMatmulPreference_t preference = nullptr;
      check(api_.preferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
      const uint64_t workspaceBytes = kWorkspaceBytes;
      cublasLtMatmulHeuristicResult_t result{};
      int returned = 0;
      cublasStatus_t status = api_.preferenceSetAttribute(preference, kPrefMaxWorkspaceBytes, &workspaceBytes, sizeof(workspaceBytes));
      if (status == kCublasSuccess)
        status = api_.heuristic(handle_, plan.desc, plan.layoutA, plan.layoutB, plan.layoutD, plan.layoutD, preference, 1, &result, &returned);
      api_.preferenceDestroy(preference);
      if (status != kCublasSuccess || returned < 1 || result.state != kCublasSuccess)
        fail("cuBLASLt has no algorithm for ", describe(call), (call.bias ? " with bias" : ""), ": ",
             status != kCublasSuccess ? statusText(status) : "the heuristic returned none");
      plan.algo = result.algo;
    } catch (...) {
      destroyPlan(plan);
      throw;
    }
    return plans_.emplace(key, plan).first->second;
  }

  std::shared_ptr<const CudaDriver> driver_;
  void* library_;
  CublasLtApi api_;
  std::string libraryName_;
  cublasLtHandle_t handle_ = nullptr;
  CUdeviceptr workspace_ = 0;
  std::map<PlanKey, Plan> plans_;
};

}  // namespace

std::unique_ptr<GemmLibrary> loadCublasLt(std::shared_ptr<const CudaDriver> driver) {
  std::string tried;
  void* library = nullptr;
  std::string libraryName;
  for (const char* name : {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}) {
    ::dlerror();
    library = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (library) {
      libraryName = name;
      break;
    }
    const char* why = ::dlerror();
    tried += std::string(tried.empty() ? "" : "; ") + (why ? why : name);
  }
  if (!library)
    fail("no cuBLASLt library (libcublasLt.so.13 or libcublasLt.so) for the CUDA backend's GEMMs: ", tried,
         "; install the CUDA toolkit's cuBLAS or add its lib64 to LD_LIBRARY_PATH");
  CublasLtApi api;
  std::string missing;
  auto need = [&](auto& slot, const char* symbol) {
    void* address = ::dlsym(library, symbol);
    if (!address) missing += std::string(missing.empty() ? "" : ", ") + symbol;
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(address);
  };
  need(api.create, "cublasLtCreate");
  need(api.destroy, "cublasLtDestroy");
  need(api.getVersion, "cublasLtGetVersion");
  need(api.statusString, "cublasLtGetStatusString");
  need(api.descCreate, "cublasLtMatmulDescCreate");
  need(api.descDestroy, "cublasLtMatmulDescDestroy");
  need(api.descSetAttribute, "cublasLtMatmulDescSetAttribute");
  need(api.layoutCreate, "cublasLtMatrixLayoutCreate");
  need(api.layoutDestroy, "cublasLtMatrixLayoutDestroy");
  need(api.preferenceCreate, "cublasLtMatmulPreferenceCreate");
  need(api.preferenceDestroy, "cublasLtMatmulPreferenceDestroy");
  need(api.preferenceSetAttribute, "cublasLtMatmulPreferenceSetAttribute");
  need(api.heuristic, "cublasLtMatmulAlgoGetHeuristic");
  need(api.matmul, "cublasLtMatmul");
  if (!missing.empty()) {
    ::dlclose(library);
    fail("the cuBLASLt library ", libraryName, " lacks ", missing, " (pagedc needs cuBLASLt 11 or newer)");
  }
  return std::make_unique<CublasLtGemm>(std::move(driver), library, api, libraryName);
}

}  // namespace pagedc
