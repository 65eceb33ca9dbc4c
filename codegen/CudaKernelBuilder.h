// Kernel variant + GPU architecture -> cubin, entry name and resource use: NVRTC (CUDA C++ -> PTX
// for compute_80) and nvJitLink (PTX -> SASS for sm_XX), through the on-disk KernelCache.
//
// The PTX is compiled once for compute_80 whatever the target: the templates use nothing newer
// than sm_80 (cvt.bf16, shuffles), ptxas optimises for the real architecture at link time, and
// building a variant for several architectures then runs NVRTC once.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "codegen/KernelCache.h"
#include "codegen/KernelResources.h"
#include "codegen/NvJitLinker.h"
#include "codegen/NvrtcCompiler.h"
#include "runtime/kernels/KernelKey.h"

namespace pagedc {

struct CudaKernelBuildOptions {
  NvrtcOptions nvrtc;
  NvJitLinkOptions link;
  bool useCache = true;
  std::string cacheDir;  // empty: KernelCache::defaultDir()
};

struct BuiltKernel {
  KernelKey key;
  int arch = 0;
  std::vector<char> cubin;
  std::string entryName;      // the lowered name to look up in the module
  KernelResources resources;  // from the linker's log
  bool cacheHit = false;
  double compileSeconds = 0;  // NVRTC (0 on a hit; shared by the archs of one build call)
  double linkSeconds = 0;     // nvJitLink (0 on a hit)
  double loadSeconds = 0;     // reading and checking the cache entry (hits and misses)
};

class CudaKernelBuilder {
public:
  explicit CudaKernelBuilder(CudaKernelBuildOptions options = {});

  // The cubin of `key` for sm_<arch>, from the cache or built now (and stored). Throws Error
  // naming the variant on a compile or link error. Thread-safe (NVRTC programs are independent).
  BuiltKernel build(const KernelKey& key, int arch) const;
  // The same for several architectures, compiling the PTX at most once: one result per arch.
  std::vector<BuiltKernel> build(const KernelKey& key, const std::vector<int>& archs) const;

  // The text hashed into the cache entry's name for (key, arch): everything the cubin depends on.
  std::string cacheKeyText(const KernelKey& key, int arch) const;

  const CudaKernelBuildOptions& options() const { return options_; }
  const KernelCache& cache() const { return cache_; }
  KernelCache& cache() { return cache_; }

private:
  CudaKernelBuildOptions options_;
  KernelCache cache_;
  NvrtcCompiler compiler_;
  NvJitLinker linker_;
};

// Building many variants: every (key, arch) pair, on `jobs` threads (NVRTC and nvJitLink run
// independent programs concurrently), each key compiled once for all its archs.
struct KernelBuildFailure {
  KernelKey key;
  std::string message;  // the Error's text: the variant, the options, the annotated log
};
struct KernelBuildReport {
  std::vector<BuiltKernel> built;  // in keys order, archs within a key in the order given
  std::vector<KernelBuildFailure> failures;  // in keys order
  double seconds = 0;              // wall time of the whole build
};
// `onKernel` (optional) sees each key's results as they finish, in completion order, one call at a
// time; it may print progress. Errors do not stop the other variants.
KernelBuildReport buildKernels(const CudaKernelBuilder& builder, const std::vector<KernelKey>& keys, const std::vector<int>& archs,
                               int jobs, const std::function<void(const std::vector<BuiltKernel>&, const KernelBuildFailure*)>& onKernel = {});

// Parses "80,86,89,90" (or "sm_80,sm_90") into architectures; throws Error naming a bad item.
std::vector<int> parseArchList(const std::string& text);

}  // namespace pagedc
