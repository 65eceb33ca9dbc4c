// The CUDA driver API as a table of function pointers, filled at run time: by loadCudaDriver()
// from libcuda.so.1 (dlopen, so pagedc has no link-time dependency on the driver and one binary
// runs with or without a GPU), or by another implementation of the same table (the emulated
// driver of the tests, runtime/cuda/EmulatedCudaDriver.h, which runs on host memory).
//
// Declarations: pagedc declares the few driver types and constants it uses itself instead of
// including the toolkit's cuda.h. The build must work without the toolkit, the emulated driver
// implements this table without it, and the entry points used here have had a stable C ABI since
// CUDA 11.4 (handles are pointers to opaque structs, CUdeviceptr is a 64-bit integer, enums are
// int-sized, values as in cuda.h). The constants are named kCu... rather than cuda.h's names so a
// translation unit that also includes cuda.h compiles (cuda.h defines some of them as macros).
// Member names are the API's base names (cuMemAlloc, not cuMemAlloc_v2); the loader resolves
// each to the versioned symbol the current API uses.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace pagedc {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
using CUcontext = CUctx_st*;
using CUmodule = CUmod_st*;
using CUfunction = CUfunc_st*;
using CUstream = CUstream_st*;
using CUevent = CUevent_st*;
using CUgraph = CUgraph_st*;
using CUgraphExec = CUgraphExec_st*;

// CUresult values (cuda.h's CUDA_SUCCESS, CUDA_ERROR_...).
inline constexpr CUresult kCudaSuccess = 0;
inline constexpr CUresult kCudaErrorInvalidValue = 1;
inline constexpr CUresult kCudaErrorOutOfMemory = 2;
inline constexpr CUresult kCudaErrorNotInitialized = 3;
inline constexpr CUresult kCudaErrorNoDevice = 100;
inline constexpr CUresult kCudaErrorInvalidImage = 200;
inline constexpr CUresult kCudaErrorNoBinaryForGpu = 209;
inline constexpr CUresult kCudaErrorNotFound = 500;
inline constexpr CUresult kCudaErrorNotReady = 600;
inline constexpr CUresult kCudaErrorNotSupported = 801;
inline constexpr CUresult kCudaErrorStreamCaptureInvalidated = 901;

// CUdevice_attribute values used (cuda.h's CU_DEVICE_ATTRIBUTE_...).
inline constexpr int kCuAttrMaxSharedMemoryPerBlock = 8;
inline constexpr int kCuAttrMultiprocessorCount = 16;
inline constexpr int kCuAttrCanMapHostMemory = 19;
inline constexpr int kCuAttrMemoryClockRateKHz = 36;
inline constexpr int kCuAttrGlobalMemoryBusWidthBits = 37;
inline constexpr int kCuAttrL2CacheSize = 38;
inline constexpr int kCuAttrUnifiedAddressing = 41;
inline constexpr int kCuAttrComputeCapabilityMajor = 75;
inline constexpr int kCuAttrComputeCapabilityMinor = 76;

// Flags.
inline constexpr unsigned kCuMemHostAllocPortable = 0x01;   // CU_MEMHOSTALLOC_PORTABLE
inline constexpr unsigned kCuMemHostAllocDeviceMap = 0x02;  // CU_MEMHOSTALLOC_DEVICEMAP
inline constexpr unsigned kCuStreamNonBlocking = 0x1;       // CU_STREAM_NON_BLOCKING
inline constexpr unsigned kCuEventDefault = 0x0;            // CU_EVENT_DEFAULT
inline constexpr unsigned kCuEventDisableTiming = 0x2;      // CU_EVENT_DISABLE_TIMING
inline constexpr int kCuStreamCaptureModeThreadLocal = 1;   // CU_STREAM_CAPTURE_MODE_THREAD_LOCAL

// The entry points pagedc calls. Every pointer is set in a table handed out by a loader; a call
// returns a CUresult that check() turns into an Error.
struct CudaDriver {
  // Where the table came from, for messages: "libcuda.so.1", "emulated".
  std::string name;

  // Initialisation, devices.
  CUresult (*cuInit)(unsigned flags) = nullptr;
  CUresult (*cuDriverGetVersion)(int* version) = nullptr;
  CUresult (*cuDeviceGetCount)(int* count) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice* device, int ordinal) = nullptr;
  CUresult (*cuDeviceGetName)(char* name, int length, CUdevice device) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int* value, int attribute, CUdevice device) = nullptr;
  CUresult (*cuDeviceTotalMem)(size_t* bytes, CUdevice device) = nullptr;  // _v2

  // Contexts: the device's primary context, made current on the calling thread.
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext* context, CUdevice device) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device) = nullptr;  // _v2
  CUresult (*cuCtxSetCurrent)(CUcontext context) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;

  // Memory.
  CUresult (*cuMemGetInfo)(size_t* free, size_t* total) = nullptr;  // _v2
  CUresult (*cuMemAlloc)(CUdeviceptr* pointer, size_t bytes) = nullptr;  // _v2
  CUresult (*cuMemFree)(CUdeviceptr pointer) = nullptr;  // _v2
  CUresult (*cuMemHostAlloc)(void** pointer, size_t bytes, unsigned flags) = nullptr;  // pinned
  CUresult (*cuMemHostGetDevicePointer)(CUdeviceptr* device, void* host, unsigned flags) = nullptr;  // _v2
  CUresult (*cuMemFreeHost)(void* pointer) = nullptr;
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr dst, const void* src, size_t bytes, CUstream stream) = nullptr;  // _v2
  CUresult (*cuMemcpyDtoHAsync)(void* dst, CUdeviceptr src, size_t bytes, CUstream stream) = nullptr;  // _v2
  CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream) = nullptr;  // _v2
  CUresult (*cuMemsetD8Async)(CUdeviceptr dst, unsigned char value, size_t bytes, CUstream stream) = nullptr;

  // Modules and launches.
  CUresult (*cuModuleLoadData)(CUmodule* module, const void* image) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction* function, CUmodule module, const char* name) = nullptr;
  CUresult (*cuModuleUnload)(CUmodule module) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction function, unsigned gridX, unsigned gridY, unsigned gridZ, unsigned blockX,
                             unsigned blockY, unsigned blockZ, unsigned sharedMemBytes, CUstream stream,
                             void** kernelParams, void** extra) = nullptr;

  // Streams and events.
  CUresult (*cuStreamCreate)(CUstream* stream, unsigned flags) = nullptr;
  CUresult (*cuStreamDestroy)(CUstream stream) = nullptr;  // _v2
  CUresult (*cuStreamSynchronize)(CUstream stream) = nullptr;
  CUresult (*cuStreamWaitEvent)(CUstream stream, CUevent event, unsigned flags) = nullptr;
  CUresult (*cuEventCreate)(CUevent* event, unsigned flags) = nullptr;
  CUresult (*cuEventDestroy)(CUevent event) = nullptr;  // _v2
  CUresult (*cuEventRecord)(CUevent event, CUstream stream) = nullptr;
  CUresult (*cuEventSynchronize)(CUevent event) = nullptr;
  CUresult (*cuEventElapsedTime)(float* milliseconds, CUevent start, CUevent end) = nullptr;  // _v2 when present

  // CUDA graphs: capture a stream's work, instantiate it once, replay it.
  CUresult (*cuStreamBeginCapture)(CUstream stream, int mode) = nullptr;  // _v2
  CUresult (*cuStreamEndCapture)(CUstream stream, CUgraph* graph) = nullptr;
  CUresult (*cuGraphInstantiate)(CUgraphExec* exec, CUgraph graph, unsigned long long flags) = nullptr;  // WithFlags
  CUresult (*cuGraphLaunch)(CUgraphExec exec, CUstream stream) = nullptr;
  CUresult (*cuGraphExecDestroy)(CUgraphExec exec) = nullptr;
  CUresult (*cuGraphDestroy)(CUgraph graph) = nullptr;

  // Errors.
  CUresult (*cuGetErrorName)(CUresult error, const char** name) = nullptr;
  CUresult (*cuGetErrorString)(CUresult error, const char** text) = nullptr;

  // Keeps what the pointers point into alive (the dlopen handle, an emulator's state).
  std::shared_ptr<void> owner;

  // "CUDA_ERROR_OUT_OF_MEMORY (out of memory)", or the number when the driver cannot name it.
  std::string describe(CUresult result) const;
  // Throws Error "<call> failed: <describe(result)>" (plus ": <context>" when given) unless success.
  void check(CUresult result, std::string_view call, std::string_view context = {}) const;
};

// Loads `library` (libcuda.so.1) and resolves every entry point above; does not initialise the
// driver. Throws Error: "no CUDA driver (libcuda.so.1) on this machine: <dlerror>; ..." when the
// library is absent, or names the entry points a too-old driver lacks.
std::shared_ptr<const CudaDriver> loadCudaDriver(const std::string& library = "libcuda.so.1");

// cuInit + cuDeviceGetCount: 0 when the driver reports no device (CUDA_ERROR_NO_DEVICE); throws
// Error with the driver's error string on any other failure ("CUDA driver (libcuda.so.1) failed to
// initialise: cuInit failed: CUDA_ERROR_...").
int cudaDeviceCount(const CudaDriver& driver);

// Whether the CUDA backend can run here, and why not: for `--device auto` and for skipping tests.
struct CudaAvailability {
  std::shared_ptr<const CudaDriver> driver;  // null when unavailable
  int deviceCount = 0;
  std::string reason;  // why unavailable: "no CUDA driver (libcuda.so.1) ...", "... reports no CUDA device"
  bool available() const { return driver != nullptr && deviceCount > 0; }
};
// Never throws: loads the driver (once per process, cached) and counts the devices.
CudaAvailability probeCuda();

}  // namespace pagedc
