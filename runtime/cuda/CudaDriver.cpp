// Loading the CUDA driver with dlopen and turning its error codes into messages.
#include "runtime/cuda/CudaDriver.h"

#include <dlfcn.h>

#include <initializer_list>
#include <mutex>

#include "ir/Error.h"

namespace pagedc {

namespace {

// Resolves the first of `names` the library exports into `slot`; false when none is there.
template <class Function>
bool resolve(void* library, Function& slot, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (void* symbol = ::dlsym(library, name)) {
      slot = reinterpret_cast<Function>(symbol);
      return true;
    }
  }
  return false;
}

}  // namespace

std::string CudaDriver::describe(CUresult result) const {
  const char* errorName = nullptr;
  const char* errorText = nullptr;
  if (cuGetErrorName && cuGetErrorName(result, &errorName) != kCudaSuccess) errorName = nullptr;
  if (cuGetErrorString && cuGetErrorString(result, &errorText) != kCudaSuccess) errorText = nullptr;
  std::string out = errorName ? errorName : "CUresult " + std::to_string(result);
  if (errorText) out += std::string(" (") + errorText + ")";
  return out;
}

void CudaDriver::check(CUresult result, std::string_view call, std::string_view context) const {
  if (result == kCudaSuccess) return;
  std::string message = std::string(call) + " failed: " + describe(result);
  if (!context.empty()) message += std::string(": ") + std::string(context);
  throw Error(message);
}

std::shared_ptr<const CudaDriver> loadCudaDriver(const std::string& library) {
  ::dlerror();
  void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    fail("no CUDA driver (", library, ") on this machine: ", why ? why : "dlopen failed",
         "; install the NVIDIA driver, or run on the CPU with --device cpu");
  }
  auto driver = std::make_shared<CudaDriver>();
  driver->name = library;
  driver->owner = std::shared_ptr<void>(handle, [](void* h) { ::dlclose(h); });

  std::string missing;
  auto need = [&](auto& slot, std::initializer_list<const char*> names) {
    if (!resolve(handle, slot, names)) missing += std::string(missing.empty() ? "" : ", ") + *names.begin();
  };
  CudaDriver& d = *driver;
  need(d.cuInit, {"cuInit"});
  need(d.cuDriverGetVersion, {"cuDriverGetVersion"});
  need(d.cuDeviceGetCount, {"cuDeviceGetCount"});
  need(d.cuDeviceGet, {"cuDeviceGet"});
  need(d.cuDeviceGetName, {"cuDeviceGetName"});
  need(d.cuDeviceGetAttribute, {"cuDeviceGetAttribute"});
  need(d.cuDeviceTotalMem, {"cuDeviceTotalMem_v2"});
  need(d.cuDevicePrimaryCtxRetain, {"cuDevicePrimaryCtxRetain"});
  need(d.cuDevicePrimaryCtxRelease, {"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"});
  need(d.cuCtxSetCurrent, {"cuCtxSetCurrent"});
  need(d.cuCtxSynchronize, {"cuCtxSynchronize"});
  need(d.cuMemGetInfo, {"cuMemGetInfo_v2"});
  need(d.cuMemAlloc, {"cuMemAlloc_v2"});
  need(d.cuMemFree, {"cuMemFree_v2"});
  need(d.cuMemHostAlloc, {"cuMemHostAlloc"});
  need(d.cuMemHostGetDevicePointer, {"cuMemHostGetDevicePointer_v2"});
  need(d.cuMemFreeHost, {"cuMemFreeHost"});
  need(d.cuMemcpyHtoDAsync, {"cuMemcpyHtoDAsync_v2"});
  need(d.cuMemcpyDtoHAsync, {"cuMemcpyDtoHAsync_v2"});
  need(d.cuMemcpyDtoDAsync, {"cuMemcpyDtoDAsync_v2"});
  need(d.cuMemsetD8Async, {"cuMemsetD8Async"});
  need(d.cuModuleLoadData, {"cuModuleLoadData"});
  need(d.cuModuleGetFunction, {"cuModuleGetFunction"});
  need(d.cuModuleUnload, {"cuModuleUnload"});
  need(d.cuLaunchKernel, {"cuLaunchKernel"});
  need(d.cuStreamCreate, {"cuStreamCreate"});
  need(d.cuStreamDestroy, {"cuStreamDestroy_v2"});
  need(d.cuStreamSynchronize, {"cuStreamSynchronize"});
  need(d.cuStreamWaitEvent, {"cuStreamWaitEvent"});
  need(d.cuEventCreate, {"cuEventCreate"});
  need(d.cuEventDestroy, {"cuEventDestroy_v2"});
  need(d.cuEventRecord, {"cuEventRecord"});
  need(d.cuEventSynchronize, {"cuEventSynchronize"});
  // _v2 (CUDA 12.8+) fixes the timing of events recorded in graphs; older drivers have only v1.
  need(d.cuEventElapsedTime, {"cuEventElapsedTime_v2", "cuEventElapsedTime"});
  need(d.cuStreamBeginCapture, {"cuStreamBeginCapture_v2"});
  need(d.cuStreamEndCapture, {"cuStreamEndCapture"});
  need(d.cuGraphInstantiate, {"cuGraphInstantiateWithFlags"});
  need(d.cuGraphLaunch, {"cuGraphLaunch"});
  need(d.cuGraphExecDestroy, {"cuGraphExecDestroy"});
  need(d.cuGraphDestroy, {"cuGraphDestroy"});
  need(d.cuGetErrorName, {"cuGetErrorName"});
  need(d.cuGetErrorString, {"cuGetErrorString"});
  if (!missing.empty())
    fail("the CUDA driver (", library, ") lacks ", missing, "; pagedc needs a driver for CUDA 11.4 or newer (update the NVIDIA driver, or use --device cpu)");
  return driver;
}

int cudaDeviceCount(const CudaDriver& driver) {
  const CUresult init = driver.cuInit(0);
  if (init == kCudaErrorNoDevice) return 0;
  driver.check(init, "cuInit", "the CUDA driver (" + driver.name + ") failed to initialise");
  int count = 0;
  const CUresult counted = driver.cuDeviceGetCount(&count);
  if (counted == kCudaErrorNoDevice) return 0;
  driver.check(counted, "cuDeviceGetCount");
  return count;
}

CudaAvailability probeCuda() {
  static std::once_flag once;
  static CudaAvailability result;
  std::call_once(once, [] {
    try {
      result.driver = loadCudaDriver();
      result.deviceCount = cudaDeviceCount(*result.driver);
      if (result.deviceCount == 0) result.reason = "the CUDA driver (" + result.driver->name + ") reports no CUDA device";
    } catch (const Error& error) {
      result.deviceCount = 0;
      result.reason = error.what();
    }
    if (result.deviceCount == 0) result.driver.reset();
  });
  return result;
}

}  // namespace pagedc
