// The KernelProvider of the emulated CUDA device: each variant's emitted source compiled for the
// host (HostKernelBuilder, cached on disk), handed to the emulated driver as an emulated module
// image (the library's path; runtime/cuda/EmulatedKernelAbi.h). With EmulatedCudaDriver and the
// emulated GEMM library it lets the CUDA backend run on the CPU.
#pragma once

#include <memory>
#include <mutex>

#include "codegen/HostKernelBuilder.h"
#include "runtime/cuda/KernelProvider.h"

namespace pagedc {

class HostKernelProvider final : public KernelProvider {
public:
  // Throws Error when there is no host compiler (HostKernelBuilder).
  explicit HostKernelProvider(HostKernelBuildOptions options = {});

  // `arch` is ignored: the emulated device runs whatever the host compiler builds.
  KernelImage image(const KernelKey& key, int arch) override;

  const HostKernelBuilder& builder() const { return builder_; }
  // What the provider has done so far, for reports and tests.
  int librariesCompiled() const { return compiled_; }
  int librariesFromCache() const { return cached_; }
  double compileSeconds() const { return compileSeconds_; }

private:
  HostKernelBuilder builder_;
  std::mutex mutex_;
  int compiled_ = 0;
  int cached_ = 0;
  double compileSeconds_ = 0;
};

}  // namespace pagedc
