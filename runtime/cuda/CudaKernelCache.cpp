// Loading kernel modules and launching kernels.
#include "runtime/cuda/CudaKernelCache.h"

#include "ir/Error.h"

namespace pagedc::cuda {

CudaKernelCache::CudaKernelCache(const CudaDevice& device, std::shared_ptr<KernelProvider> provider)
    : device_(device), provider_(std::move(provider)) {
  if (!provider_) fail("the CUDA backend needs a kernel provider (NVRTC or embedded cubins); none was given");
}

CudaKernelCache::~CudaKernelCache() {
  for (auto& [name, module] : modules_) device_.driver().cuModuleUnload(module);
}

CUfunction CudaKernelCache::function(const KernelKey& key) {
  const std::string name = key.str();
  if (auto it = functions_.find(name); it != functions_.end()) return it->second;
  KernelImage image = provider_->image(key, device_.info().arch);
  if (image.data.empty()) fail("kernel ", name, ": the kernel provider returned an empty module image");
  // cuModuleLoadData reads PTX as a NUL-terminated string; cubins and emulator images ignore the
  // extra byte.
  if (image.data.back() != '\0') image.data.push_back('\0');
  const CudaDriver& d = device_.driver();
  CUmodule module = nullptr;
  d.check(d.cuModuleLoadData(&module, image.data.data()), "cuModuleLoadData",
          "kernel " + name + " for sm_" + std::to_string(device_.info().arch) + " on " + device_.describe());
  CUfunction function = nullptr;
  const CUresult found = d.cuModuleGetFunction(&function, module, image.entryName.c_str());
  if (found != kCudaSuccess) {
    d.cuModuleUnload(module);
    d.check(found, "cuModuleGetFunction", "kernel " + name + ", entry '" + image.entryName + "'");
  }
  modules_.emplace(name, module);
  functions_.emplace(name, function);
  return function;
}

void CudaKernelCache::launchRaw(CUfunction function, LaunchGrid grid, unsigned threads, void** args, CUstream stream, const char* what) const {
  const CudaDriver& d = device_.driver();
  const CUresult result = d.cuLaunchKernel(function, grid.x, grid.y, grid.z, threads, 1, 1, 0, stream, args, nullptr);
  if (result != kCudaSuccess)
    d.check(result, "cuLaunchKernel",
            std::string(what) + " (grid " + std::to_string(grid.x) + "x" + std::to_string(grid.y) + "x" + std::to_string(grid.z) + ", " +
                std::to_string(threads) + " threads)");
}

}  // namespace pagedc::cuda
