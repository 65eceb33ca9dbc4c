#include "codegen/CudaKernelProvider.h"

#include "ir/Error.h"

namespace pagedc {

CudaKernelProvider::CudaKernelProvider(CudaKernelBuildOptions options, EmbeddedKernels embedded)
    : builder_(std::make_unique<CudaKernelBuilder>(std::move(options))), embedded_(std::move(embedded)) {}

KernelImage CudaKernelProvider::image(const KernelKey& key, int arch) {
  if (std::optional<KernelImage> image = embedded_.find(key, arch)) {
    std::lock_guard lock(mutex_);
    ++counts_.embedded;
    return std::move(*image);
  }
  if (!haveCudaToolkit()) {
    fail("kernel ", key.str(), " for sm_", arch, ": the artifact has no cubin for it",
         embedded_.empty() ? " (it was compiled without kernels: pagedc compile --target cuda --arch ...)" : "",
         ", and this build has no CUDA toolkit (NVRTC, nvJitLink) to compile it");
  }
  BuiltKernel built = builder_->build(key, arch);
  {
    std::lock_guard lock(mutex_);
    ++(built.cacheHit ? counts_.cacheHits : counts_.built);
  }
  return KernelImage{std::move(built.cubin), std::move(built.entryName)};
}

CudaKernelProvider::Counts CudaKernelProvider::counts() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

}  // namespace pagedc
