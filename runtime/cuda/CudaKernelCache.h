// The kernels the CUDA backend has loaded: module images from a KernelProvider, loaded once per
// specialisation key with cuModuleLoadData, their entry functions cached; and the launch helper
// every kernel launch goes through (one params struct by value, no dynamic shared memory).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/KernelProvider.h"

namespace pagedc::cuda {

struct LaunchGrid {
  unsigned x = 1, y = 1, z = 1;
};

class CudaKernelCache {
public:
  CudaKernelCache(const CudaDevice& device, std::shared_ptr<KernelProvider> provider);
  ~CudaKernelCache();
  CudaKernelCache(const CudaKernelCache&) = delete;
  CudaKernelCache& operator=(const CudaKernelCache&) = delete;

  // The kernel of `key`, loading its module on first use. Throws Error naming the key.
  CUfunction function(const KernelKey& key);
  size_t numLoaded() const { return functions_.size(); }

  // Enqueues `function` with `params` (a struct of templates/kernel_params.h) on `stream`. A grid
  // with a zero dimension launches nothing. Threads per block: the variant's NUM_THREADS.
  template <class Params>
  void launch(CUfunction function, LaunchGrid grid, unsigned threads, const Params& params, CUstream stream, const char* what) const {
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
    void* args[] = {const_cast<Params*>(&params)};
    launchRaw(function, grid, threads, args, stream, what);
  }

private:
  void launchRaw(CUfunction function, LaunchGrid grid, unsigned threads, void** args, CUstream stream, const char* what) const;

  const CudaDevice& device_;
  std::shared_ptr<KernelProvider> provider_;
  std::map<std::string, CUmodule> modules_;
  std::map<std::string, CUfunction> functions_;
};

}  // namespace pagedc::cuda
