// Host-compiled kernel libraries as module images for the emulated CUDA driver.
#include "codegen/HostKernelProvider.h"

#include "runtime/cuda/EmulatedKernelAbi.h"

namespace pagedc {

HostKernelProvider::HostKernelProvider(HostKernelBuildOptions options) : builder_(std::move(options)) {}

KernelImage HostKernelProvider::image(const KernelKey& key, int /*arch*/) {
  const HostKernelLibrary library = builder_.build(key);
  {
    std::lock_guard lock(mutex_);
    if (library.fromCache) {
      ++cached_;
    } else {
      ++compiled_;
      compileSeconds_ += library.compileSeconds;
    }
  }
  return KernelImage{makeEmulatedKernelImage(library.path), kEmulatedLaunchEntry};
}

}  // namespace pagedc
