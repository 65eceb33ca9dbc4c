// The CUDA backend's source of kernels (runtime/cuda/KernelProvider.h): a cubin precompiled into the
// artifact when it has one for the key and the device, else one JIT-built by CudaKernelBuilder
// (NVRTC + nvJitLink through the on-disk cache). Without the CUDA toolkit in this build, only the
// artifact's cubins are available, and a missing one is an error saying so.
#pragma once

#include <memory>
#include <mutex>

#include "codegen/CudaKernelBuilder.h"
#include "runtime/cuda/KernelProvider.h"
#include "runtime/kernels/EmbeddedKernels.h"

namespace pagedc {

class CudaKernelProvider : public KernelProvider {
public:
  explicit CudaKernelProvider(CudaKernelBuildOptions options = {}, EmbeddedKernels embedded = {});

  KernelImage image(const KernelKey& key, int arch) override;

  // How the images so far were obtained (for logs and tests).
  struct Counts {
    size_t embedded = 0;
    size_t cacheHits = 0;
    size_t built = 0;
  };
  Counts counts() const;

private:
  std::unique_ptr<CudaKernelBuilder> builder_;
  EmbeddedKernels embedded_;
  mutable std::mutex mutex_;
  Counts counts_;
};

}  // namespace pagedc
