// The emulated CUDA driver: host memory between guard pages, synchronous streams with CUDA graph
// capture, and kernels from host-compiled libraries (see EmulatedCudaDriver.h).
#include "runtime/cuda/EmulatedCudaDriver.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ir/Error.h"
#include "ir/HalfFloat.h"

namespace pagedc {

namespace {

// CUresult values the emulated driver returns beyond those CudaDriver.h names (values as in cuda.h).
constexpr CUresult kInvalidContext = 201;                // CUDA_ERROR_INVALID_CONTEXT
constexpr CUresult kInvalidHandle = 400;                 // CUDA_ERROR_INVALID_HANDLE
constexpr CUresult kLaunchFailed = 719;                  // CUDA_ERROR_LAUNCH_FAILED
constexpr CUresult kStreamCaptureUnsupported = 900;      // CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED
constexpr CUresult kStreamCaptureUnmatched = 903;        // CUDA_ERROR_STREAM_CAPTURE_UNMATCHED
constexpr CUresult kIllegalState = 401;                  // CUDA_ERROR_ILLEGAL_STATE

using Work = std::function<void()>;

// One allocation: the mapping (guard page, data pages, guard page) and where the pointer sits.
struct Allocation {
  std::byte* mapping = nullptr;
  size_t mappingBytes = 0;
  size_t bytes = 0;  // as requested
};

struct EmulatedStream {
  bool capturing = false;
  std::thread::id captureThread;
  std::vector<Work> recorded;
};

struct EmulatedGraph {
  std::vector<Work> work;
};

struct EmulatedGraphExec {
  std::vector<Work> work;
};

struct EmulatedModule {
  void* handle = nullptr;
  std::string path;
  std::string key;
  PagedcEmulatedLaunchFn launch = nullptr;
  size_t paramsBytes = 0;
};

struct EmulatedEvent {
  std::chrono::steady_clock::time_point time{};
  bool recorded = false;
};

struct DeviceState {
  std::mutex mutex;
  EmulatedDeviceOptions options;
  std::map<uintptr_t, Allocation> allocations;  // by pointer
  size_t allocatedBytes = 0;
  std::set<EmulatedStream*> streams;
  std::set<EmulatedModule*> modules;
};

DeviceState& state() {
  static DeviceState instance;
  return instance;
}

// Streams the calling thread is capturing: while nonzero, "unsafe" calls fail as on a real driver
// (CU_STREAM_CAPTURE_MODE_THREAD_LOCAL).
thread_local int capturesOnThisThread = 0;
// The message of the last failed launch or replay on this thread, for cuGetErrorString.
thread_local std::string lastFailure;

// The primary context: one per process, any non-null handle will do.
CUctx_st* primaryContext() {
  static char storage;
  return reinterpret_cast<CUctx_st*>(&storage);
}

size_t pageSize() {
  static const size_t size = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

size_t roundUp(size_t value, size_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// cudaMalloc's alignment: kernels may rely on it for vector accesses.
constexpr size_t kAllocationAlignment = 256;

// Maps bytes (rounded up to the alignment) so that their end touches the trailing guard page.
CUresult allocate(size_t bytes, void** pointer) {
  if (bytes == 0 || !pointer) return kCudaErrorInvalidValue;
  if (capturesOnThisThread > 0) return kStreamCaptureUnsupported;
  DeviceState& s = state();
  const size_t rounded = roundUp(bytes, kAllocationAlignment);
  const size_t dataBytes = roundUp(rounded, pageSize());
  {
    std::lock_guard lock(s.mutex);
    if (s.allocatedBytes + dataBytes > s.options.totalMemory) return kCudaErrorOutOfMemory;
  }
  const size_t mappingBytes = dataBytes + 2 * pageSize();
  void* mapping = ::mmap(nullptr, mappingBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mapping == MAP_FAILED) return kCudaErrorOutOfMemory;
  auto* base = static_cast<std::byte*>(mapping);
  if (::mprotect(base + pageSize(), dataBytes, PROT_READ | PROT_WRITE) != 0) {
    ::munmap(mapping, mappingBytes);
    return kCudaErrorOutOfMemory;
  }
  std::byte* data = base + pageSize() + dataBytes - rounded;
  std::lock_guard lock(s.mutex);
  s.allocations[reinterpret_cast<uintptr_t>(data)] = Allocation{base, mappingBytes, bytes};
  s.allocatedBytes += dataBytes;
  *pointer = data;
  return kCudaSuccess;
}

CUresult release(const void* pointer) {
  if (!pointer) return kCudaSuccess;
  if (capturesOnThisThread > 0) return kStreamCaptureUnsupported;
  DeviceState& s = state();
  Allocation allocation;
  {
    std::lock_guard lock(s.mutex);
    auto it = s.allocations.find(reinterpret_cast<uintptr_t>(pointer));
    if (it == s.allocations.end()) return kCudaErrorInvalidValue;
    allocation = it->second;
    s.allocations.erase(it);
    s.allocatedBytes -= allocation.mappingBytes - 2 * pageSize();
  }
  ::munmap(allocation.mapping, allocation.mappingBytes);
  return kCudaSuccess;
}

// Whether [pointer, pointer + bytes) lies inside one allocation (device or pinned host).
bool insideAllocation(uintptr_t pointer, size_t bytes) {
  DeviceState& s = state();
  std::lock_guard lock(s.mutex);
  auto it = s.allocations.upper_bound(pointer);
  if (it == s.allocations.begin()) return false;
  --it;
  return pointer >= it->first && pointer + bytes <= it->first + it->second.bytes;
}

EmulatedStream* streamOf(CUstream stream) { return reinterpret_cast<EmulatedStream*>(stream); }

// The default streams (null, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD) are never captured.
bool isDefaultStream(CUstream stream) { return reinterpret_cast<uintptr_t>(stream) <= 2; }

bool knownStream(CUstream stream) {
  if (isDefaultStream(stream)) return true;
  DeviceState& s = state();
  std::lock_guard lock(s.mutex);
  return s.streams.count(streamOf(stream)) != 0;
}

// Runs `work` now, or records it when `stream` is being captured. Exceptions become a launch failure.
CUresult submit(CUstream stream, Work work) {
  if (!knownStream(stream)) return kInvalidHandle;
  if (!isDefaultStream(stream) && streamOf(stream)->capturing) {
    streamOf(stream)->recorded.push_back(std::move(work));
    return kCudaSuccess;
  }
  try {
    work();
    return kCudaSuccess;
  } catch (const std::exception& error) {
    lastFailure = error.what();
    return kLaunchFailed;
  }
}

// ---- the entry points ---------------------------------------------------------------------------

CUresult emuInit(unsigned) { return kCudaSuccess; }
CUresult emuDriverGetVersion(int* version) {
  if (!version) return kCudaErrorInvalidValue;
  *version = 13000;
  return kCudaSuccess;
}
CUresult emuDeviceGetCount(int* count) {
  if (!count) return kCudaErrorInvalidValue;
  *count = 1;
  return kCudaSuccess;
}
CUresult emuDeviceGet(CUdevice* device, int ordinal) {
  if (!device || ordinal != 0) return kCudaErrorInvalidValue;
  *device = 0;
  return kCudaSuccess;
}
CUresult emuDeviceGetName(char* name, int length, CUdevice device) {
  if (!name || length <= 0 || device != 0) return kCudaErrorInvalidValue;
  std::snprintf(name, static_cast<size_t>(length), "%s", "pagedc emulated device");
  return kCudaSuccess;
}
CUresult emuDeviceGetAttribute(int* value, int attribute, CUdevice device) {
  if (!value || device != 0) return kCudaErrorInvalidValue;
  // An A100-like device (sm_80), so the backend's choices match a common GPU's.
  switch (attribute) {
    case 1: *value = 1024; return kCudaSuccess;          // MAX_THREADS_PER_BLOCK
    case 2: *value = 1024; return kCudaSuccess;          // MAX_BLOCK_DIM_X
    case 3: case 4: *value = 1024; return kCudaSuccess;  // MAX_BLOCK_DIM_Y, Z (Z is 64 on GPUs; unused)
    case 5: *value = 2147483647; return kCudaSuccess;    // MAX_GRID_DIM_X
    case 6: case 7: *value = 65535; return kCudaSuccess; // MAX_GRID_DIM_Y, Z
    case kCuAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; return kCudaSuccess;
    case 10: *value = 32; return kCudaSuccess;           // WARP_SIZE
    case kCuAttrMultiprocessorCount: *value = 108; return kCudaSuccess;
    case kCuAttrCanMapHostMemory: *value = 1; return kCudaSuccess;
    case kCuAttrMemoryClockRateKHz: *value = 1215000; return kCudaSuccess;
    case kCuAttrGlobalMemoryBusWidthBits: *value = 5120; return kCudaSuccess;
    case kCuAttrL2CacheSize: *value = 40 * 1024 * 1024; return kCudaSuccess;
    case kCuAttrUnifiedAddressing: *value = 1; return kCudaSuccess;
    case kCuAttrComputeCapabilityMajor: *value = 8; return kCudaSuccess;
    case kCuAttrComputeCapabilityMinor: *value = 0; return kCudaSuccess;
    default: return kCudaErrorInvalidValue;
  }
}
CUresult emuDeviceTotalMem(size_t* bytes, CUdevice device) {
  if (!bytes || device != 0) return kCudaErrorInvalidValue;
  std::lock_guard lock(state().mutex);
  *bytes = state().options.totalMemory;
  return kCudaSuccess;
}

CUresult emuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device) {
  if (!context || device != 0) return kCudaErrorInvalidValue;
  *context = primaryContext();
  return kCudaSuccess;
}
CUresult emuDevicePrimaryCtxRelease(CUdevice device) { return device == 0 ? kCudaSuccess : kCudaErrorInvalidValue; }
CUresult emuCtxSetCurrent(CUcontext context) { return !context || context == primaryContext() ? kCudaSuccess : kInvalidContext; }
CUresult emuCtxSynchronize() { return capturesOnThisThread > 0 ? kStreamCaptureUnsupported : kCudaSuccess; }

CUresult emuMemGetInfo(size_t* free, size_t* total) {
  if (!free || !total) return kCudaErrorInvalidValue;
  std::lock_guard lock(state().mutex);
  *total = state().options.totalMemory;
  *free = *total - std::min(*total, state().allocatedBytes);
  return kCudaSuccess;
}
CUresult emuMemAlloc(CUdeviceptr* pointer, size_t bytes) {
  if (!pointer) return kCudaErrorInvalidValue;
  void* data = nullptr;
  const CUresult result = allocate(bytes, &data);
  if (result == kCudaSuccess) *pointer = reinterpret_cast<CUdeviceptr>(data);
  return result;
}
CUresult emuMemFree(CUdeviceptr pointer) { return release(reinterpret_cast<const void*>(pointer)); }
CUresult emuMemHostAlloc(void** pointer, size_t bytes, unsigned) { return allocate(bytes, pointer); }
CUresult emuMemHostGetDevicePointer(CUdeviceptr* device, void* host, unsigned flags) {
  if (!device || !host || flags != 0) return kCudaErrorInvalidValue;
  if (!insideAllocation(reinterpret_cast<uintptr_t>(host), 1)) return kCudaErrorInvalidValue;
  *device = reinterpret_cast<CUdeviceptr>(host);  // one address space
  return kCudaSuccess;
}
CUresult emuMemFreeHost(void* pointer) { return release(pointer); }

CUresult emuMemcpyHtoDAsync(CUdeviceptr dst, const void* src, size_t bytes, CUstream stream) {
  if (bytes == 0) return kCudaSuccess;
  if (!src || !insideAllocation(dst, bytes)) return kCudaErrorInvalidValue;
  return submit(stream, [dst, src, bytes] { std::memcpy(reinterpret_cast<void*>(dst), src, bytes); });
}
CUresult emuMemcpyDtoHAsync(void* dst, CUdeviceptr src, size_t bytes, CUstream stream) {
  if (bytes == 0) return kCudaSuccess;
  if (!dst || !insideAllocation(src, bytes)) return kCudaErrorInvalidValue;
  return submit(stream, [dst, src, bytes] { std::memcpy(dst, reinterpret_cast<const void*>(src), bytes); });
}
CUresult emuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream stream) {
  if (bytes == 0) return kCudaSuccess;
  if (!insideAllocation(dst, bytes) || !insideAllocation(src, bytes)) return kCudaErrorInvalidValue;
  return submit(stream, [dst, src, bytes] { std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), bytes); });
}
CUresult emuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t bytes, CUstream stream) {
  if (bytes == 0) return kCudaSuccess;
  if (!insideAllocation(dst, bytes)) return kCudaErrorInvalidValue;
  return submit(stream, [dst, value, bytes] { std::memset(reinterpret_cast<void*>(dst), value, bytes); });
}

CUresult emuModuleLoadData(CUmodule* module, const void* image) {
  if (!module) return kCudaErrorInvalidValue;
  const std::optional<std::string> path = emulatedKernelLibraryPath(image);
  if (!path) {
    lastFailure = "the emulated CUDA driver loads only host-compiled kernel libraries (codegen/HostKernelProvider), not cubins or PTX";
    return kCudaErrorInvalidImage;
  }
  ::dlerror();
  void* handle = ::dlopen(path->c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    lastFailure = "cannot load the emulated kernel library " + *path + ": " + (why ? why : "dlopen failed");
    return kCudaErrorInvalidImage;
  }
  auto launch = reinterpret_cast<PagedcEmulatedLaunchFn>(::dlsym(handle, kEmulatedLaunchEntry));
  auto paramsSize = reinterpret_cast<PagedcEmulatedParamsSizeFn>(::dlsym(handle, kEmulatedParamsSizeEntry));
  auto key = reinterpret_cast<PagedcEmulatedKeyFn>(::dlsym(handle, kEmulatedKeyEntry));
  if (!launch || !paramsSize || !key) {
    ::dlclose(handle);
    lastFailure = "the emulated kernel library " + *path + " lacks the entry points of runtime/cuda/EmulatedKernelAbi.h";
    return kCudaErrorInvalidImage;
  }
  auto* loaded = new EmulatedModule{handle, *path, key(), launch, paramsSize()};
  {
    std::lock_guard lock(state().mutex);
    state().modules.insert(loaded);
  }
  *module = reinterpret_cast<CUmodule>(loaded);
  return kCudaSuccess;
}

EmulatedModule* moduleOf(CUmodule module) {
  std::lock_guard lock(state().mutex);
  auto* candidate = reinterpret_cast<EmulatedModule*>(module);
  return state().modules.count(candidate) ? candidate : nullptr;
}

// A module has one kernel: its function handle is the module itself.
CUresult emuModuleGetFunction(CUfunction* function, CUmodule module, const char* name) {
  if (!function || !name) return kCudaErrorInvalidValue;
  if (!moduleOf(module)) return kInvalidHandle;
  if (std::strcmp(name, kEmulatedLaunchEntry) != 0) return kCudaErrorNotFound;
  *function = reinterpret_cast<CUfunction>(module);
  return kCudaSuccess;
}
CUresult emuModuleUnload(CUmodule module) {
  EmulatedModule* loaded = moduleOf(module);
  if (!loaded) return kInvalidHandle;
  {
    std::lock_guard lock(state().mutex);
    state().modules.erase(loaded);
  }
  ::dlclose(loaded->handle);
  delete loaded;
  return kCudaSuccess;
}

CUresult emuLaunchKernel(CUfunction function, unsigned gridX, unsigned gridY, unsigned gridZ, unsigned blockX, unsigned blockY,
                         unsigned blockZ, unsigned sharedMemBytes, CUstream stream, void** kernelParams, void** extra) {
  EmulatedModule* module = moduleOf(reinterpret_cast<CUmodule>(function));
  if (!module) return kInvalidHandle;
  if (extra || !kernelParams || !kernelParams[0]) {
    lastFailure = "emulated launch of " + module->key + ": pass the params struct as kernelParams[0] (no extra)";
    return kCudaErrorInvalidValue;
  }
  if (sharedMemBytes != 0) {
    lastFailure = "emulated launch of " + module->key + ": kernels use static shared memory only (dynamic bytes must be 0)";
    return kCudaErrorInvalidValue;
  }
  if (gridX == 0 || gridY == 0 || gridZ == 0 || blockX == 0 || blockY == 0 || blockZ == 0) return kCudaErrorInvalidValue;
  // The driver copies the arguments at launch (and into the node at capture): so do we.
  std::vector<std::byte> params(module->paramsBytes);
  std::memcpy(params.data(), kernelParams[0], params.size());
  int schedule;
  unsigned long long seed;
  {
    std::lock_guard lock(state().mutex);
    schedule = state().options.schedule;
    seed = state().options.seed;
  }
  return submit(stream, [module, params = std::move(params), grid = std::array<unsigned, 3>{gridX, gridY, gridZ},
                         block = std::array<unsigned, 3>{blockX, blockY, blockZ}, schedule, seed] {
    PagedcEmulatedLaunch launch{{grid[0], grid[1], grid[2]}, {block[0], block[1], block[2]}, params.data(), schedule, seed};
    char error[2048] = {};
    if (module->launch(&launch, error, sizeof(error)) != 0) fail("emulated kernel ", module->key, ": ", error);
  });
}

CUresult emuStreamCreate(CUstream* stream, unsigned) {
  if (!stream) return kCudaErrorInvalidValue;
  auto* created = new EmulatedStream;
  std::lock_guard lock(state().mutex);
  state().streams.insert(created);
  *stream = reinterpret_cast<CUstream>(created);
  return kCudaSuccess;
}
CUresult emuStreamDestroy(CUstream stream) {
  if (isDefaultStream(stream) || !knownStream(stream)) return kInvalidHandle;
  EmulatedStream* s = streamOf(stream);
  if (s->capturing) {
    if (s->captureThread == std::this_thread::get_id()) --capturesOnThisThread;
  }
  std::lock_guard lock(state().mutex);
  state().streams.erase(s);
  delete s;
  return kCudaSuccess;
}
CUresult emuStreamSynchronize(CUstream stream) {
  if (!knownStream(stream)) return kInvalidHandle;
  if (!isDefaultStream(stream) && streamOf(stream)->capturing) return kStreamCaptureUnsupported;
  return kCudaSuccess;  // work ran when it was enqueued
}
CUresult emuStreamWaitEvent(CUstream stream, CUevent event, unsigned) {
  if (!knownStream(stream) || !event) return kInvalidHandle;
  return kCudaSuccess;  // everything before the event has run
}

CUresult emuEventCreate(CUevent* event, unsigned) {
  if (!event) return kCudaErrorInvalidValue;
  *event = reinterpret_cast<CUevent>(new EmulatedEvent);
  return kCudaSuccess;
}
CUresult emuEventDestroy(CUevent event) {
  if (!event) return kInvalidHandle;
  delete reinterpret_cast<EmulatedEvent*>(event);
  return kCudaSuccess;
}
CUresult emuEventRecord(CUevent event, CUstream stream) {
  if (!event) return kInvalidHandle;
  auto* e = reinterpret_cast<EmulatedEvent*>(event);
  return submit(stream, [e] {
    e->time = std::chrono::steady_clock::now();
    e->recorded = true;
  });
}
CUresult emuEventSynchronize(CUevent event) {
  if (!event) return kInvalidHandle;
  return capturesOnThisThread > 0 ? kStreamCaptureUnsupported : kCudaSuccess;
}
CUresult emuEventElapsedTime(float* milliseconds, CUevent start, CUevent end) {
  if (!milliseconds || !start || !end) return kCudaErrorInvalidValue;
  auto* a = reinterpret_cast<EmulatedEvent*>(start);
  auto* b = reinterpret_cast<EmulatedEvent*>(end);
  if (!a->recorded || !b->recorded) return kCudaErrorNotReady;
  *milliseconds = std::chrono::duration<float, std::milli>(b->time - a->time).count();
  return kCudaSuccess;
}

CUresult emuStreamBeginCapture(CUstream stream, int) {
  if (isDefaultStream(stream)) return kStreamCaptureUnsupported;  // the legacy stream cannot be captured
  if (!knownStream(stream)) return kInvalidHandle;
  EmulatedStream* s = streamOf(stream);
  if (s->capturing) return kIllegalState;
  s->capturing = true;
  s->captureThread = std::this_thread::get_id();
  s->recorded.clear();
  ++capturesOnThisThread;
  return kCudaSuccess;
}
CUresult emuStreamEndCapture(CUstream stream, CUgraph* graph) {
  if (!graph) return kCudaErrorInvalidValue;
  if (isDefaultStream(stream) || !knownStream(stream)) return kInvalidHandle;
  EmulatedStream* s = streamOf(stream);
  if (!s->capturing) return kIllegalState;
  if (s->captureThread != std::this_thread::get_id()) return kStreamCaptureUnmatched;
  s->capturing = false;
  --capturesOnThisThread;
  *graph = reinterpret_cast<CUgraph>(new EmulatedGraph{std::exchange(s->recorded, {})});
  return kCudaSuccess;
}
CUresult emuGraphInstantiate(CUgraphExec* exec, CUgraph graph, unsigned long long) {
  if (!exec || !graph) return kCudaErrorInvalidValue;
  *exec = reinterpret_cast<CUgraphExec>(new EmulatedGraphExec{reinterpret_cast<EmulatedGraph*>(graph)->work});
  return kCudaSuccess;
}
CUresult emuGraphLaunch(CUgraphExec exec, CUstream stream) {
  if (!exec) return kInvalidHandle;
  auto* graph = reinterpret_cast<EmulatedGraphExec*>(exec);
  return submit(stream, [graph] {
    for (const Work& work : graph->work) work();
  });
}
CUresult emuGraphExecDestroy(CUgraphExec exec) {
  if (!exec) return kInvalidHandle;
  delete reinterpret_cast<EmulatedGraphExec*>(exec);
  return kCudaSuccess;
}
CUresult emuGraphDestroy(CUgraph graph) {
  if (!graph) return kInvalidHandle;
  delete reinterpret_cast<EmulatedGraph*>(graph);
  return kCudaSuccess;
}

CUresult emuGetErrorName(CUresult error, const char** name) {
  if (!name) return kCudaErrorInvalidValue;
  switch (error) {
    case kCudaSuccess: *name = "CUDA_SUCCESS"; break;
    case kCudaErrorInvalidValue: *name = "CUDA_ERROR_INVALID_VALUE"; break;
    case kCudaErrorOutOfMemory: *name = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case kCudaErrorNotInitialized: *name = "CUDA_ERROR_NOT_INITIALIZED"; break;
    case kCudaErrorNoDevice: *name = "CUDA_ERROR_NO_DEVICE"; break;
    case kCudaErrorInvalidImage: *name = "CUDA_ERROR_INVALID_IMAGE"; break;
    case kInvalidContext: *name = "CUDA_ERROR_INVALID_CONTEXT"; break;
    case kInvalidHandle: *name = "CUDA_ERROR_INVALID_HANDLE"; break;
    case kIllegalState: *name = "CUDA_ERROR_ILLEGAL_STATE"; break;
    case kCudaErrorNotFound: *name = "CUDA_ERROR_NOT_FOUND"; break;
    case kCudaErrorNotReady: *name = "CUDA_ERROR_NOT_READY"; break;
    case kLaunchFailed: *name = "CUDA_ERROR_LAUNCH_FAILED"; break;
    case kStreamCaptureUnsupported: *name = "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"; break;
    case kStreamCaptureUnmatched: *name = "CUDA_ERROR_STREAM_CAPTURE_UNMATCHED"; break;
    default: *name = nullptr; return kCudaErrorInvalidValue;
  }
  return kCudaSuccess;
}

// The texts of errors that carry detail (a failed launch, an image it cannot load) end with the
// last such failure on this thread: the emulator's message names the kernel and what went wrong.
CUresult emuGetErrorString(CUresult error, const char** text) {
  if (!text) return kCudaErrorInvalidValue;
  thread_local std::string described;
  switch (error) {
    case kCudaSuccess: *text = "no error"; break;
    case kCudaErrorInvalidValue:
      described = "invalid argument" + (lastFailure.empty() ? std::string() : " (last failure on this thread: " + lastFailure + ")");
      *text = described.c_str();
      break;
    case kCudaErrorOutOfMemory: *text = "out of memory (the emulated device's totalMemory)"; break;
    case kCudaErrorInvalidImage:
      described = "device kernel image is invalid: " + lastFailure;
      *text = described.c_str();
      break;
    case kInvalidHandle: *text = "invalid resource handle"; break;
    case kCudaErrorNotFound: *text = "named symbol not found"; break;
    case kCudaErrorNotReady: *text = "device not ready"; break;
    case kLaunchFailed:
      described = "unspecified launch failure: " + lastFailure;
      *text = described.c_str();
      break;
    case kStreamCaptureUnsupported: *text = "operation not permitted when stream is capturing"; break;
    case kStreamCaptureUnmatched: *text = "the capture was not initiated in this stream"; break;
    case kIllegalState: *text = "the operation cannot be performed in the present state"; break;
    default: *text = "unknown error"; return kCudaErrorInvalidValue;
  }
  return kCudaSuccess;
}

// ---- the emulated GEMM --------------------------------------------------------------------------

float loadElement(DType dtype, const void* base, int64_t index) {
  switch (dtype) {
    case DType::F16: return f16ToFloat(static_cast<const uint16_t*>(base)[index]);
    case DType::BF16: return bf16ToFloat(static_cast<const uint16_t*>(base)[index]);
    default: return static_cast<const float*>(base)[index];
  }
}

void storeElement(DType dtype, void* base, int64_t index, float value) {
  switch (dtype) {
    case DType::F16: static_cast<uint16_t*>(base)[index] = floatToF16(value); break;
    case DType::BF16: static_cast<uint16_t*>(base)[index] = floatToBf16(value); break;
    default: static_cast<float*>(base)[index] = value; break;
  }
}

class EmulatedGemmLibrary final : public GemmLibrary {
public:
  std::string name() const override { return "emulated (host loops)"; }

  void gemm(const GemmCall& call, CUstream stream) override {
    if (call.dtype != DType::F32 && call.dtype != DType::F16 && call.dtype != DType::BF16)
      fail("emulated GEMM [", call.m, "x", call.k, "] x [", call.k, "x", call.n, "]: unsupported dtype ", dtypeName(call.dtype));
    if (call.m < 0 || call.n < 0 || call.k < 0 || call.lda < call.k || call.ldOut < call.n || call.ldb < (call.transB ? call.k : call.n))
      fail("emulated GEMM [", call.m, "x", call.k, "] x [", call.k, "x", call.n, "]: bad leading dimensions (lda ", call.lda, ", ldb ",
           call.ldb, ", ldOut ", call.ldOut, ")");
    if (call.m == 0 || call.n == 0) return;
    const CUresult result = submit(stream, [call] { run(call); });
    if (result != kCudaSuccess) fail("emulated GEMM [", call.m, "x", call.k, "] x [", call.k, "x", call.n, "] failed: ", lastFailure);
  }

private:
  static void run(const GemmCall& c) {
    const void* a = reinterpret_cast<const void*>(c.a);
    const void* b = reinterpret_cast<const void*>(c.b);
    const void* bias = reinterpret_cast<const void*>(c.bias);
    void* out = reinterpret_cast<void*>(c.out);
    std::vector<float> aRow(static_cast<size_t>(c.k)), accumulator(static_cast<size_t>(c.n));
    for (int64_t i = 0; i < c.m; ++i) {
      for (int64_t p = 0; p < c.k; ++p) aRow[p] = loadElement(c.dtype, a, i * c.lda + p);
      if (c.transB) {
        for (int64_t j = 0; j < c.n; ++j) {
          float sum = 0;
          for (int64_t p = 0; p < c.k; ++p) sum += aRow[p] * loadElement(c.dtype, b, j * c.ldb + p);
          accumulator[j] = sum;
        }
      } else {
        std::fill(accumulator.begin(), accumulator.end(), 0.0f);
        for (int64_t p = 0; p < c.k; ++p)
          for (int64_t j = 0; j < c.n; ++j) accumulator[j] += aRow[p] * loadElement(c.dtype, b, p * c.ldb + j);
      }
      for (int64_t j = 0; j < c.n; ++j)
        storeElement(c.dtype, out, i * c.ldOut + j, accumulator[j] + (bias ? loadElement(c.dtype, bias, j) : 0.0f));
    }
  }
};

}  // namespace

std::shared_ptr<const CudaDriver> makeEmulatedCudaDriver(const EmulatedDeviceOptions& options) {
  {
    std::lock_guard lock(state().mutex);
    state().options = options;
  }
  auto driver = std::make_shared<CudaDriver>();
  CudaDriver& d = *driver;
  d.name = "emulated";
  d.cuInit = emuInit;
  d.cuDriverGetVersion = emuDriverGetVersion;
  d.cuDeviceGetCount = emuDeviceGetCount;
  d.cuDeviceGet = emuDeviceGet;
  d.cuDeviceGetName = emuDeviceGetName;
  d.cuDeviceGetAttribute = emuDeviceGetAttribute;
  d.cuDeviceTotalMem = emuDeviceTotalMem;
  d.cuDevicePrimaryCtxRetain = emuDevicePrimaryCtxRetain;
  d.cuDevicePrimaryCtxRelease = emuDevicePrimaryCtxRelease;
  d.cuCtxSetCurrent = emuCtxSetCurrent;
  d.cuCtxSynchronize = emuCtxSynchronize;
  d.cuMemGetInfo = emuMemGetInfo;
  d.cuMemAlloc = emuMemAlloc;
  d.cuMemFree = emuMemFree;
  d.cuMemHostAlloc = emuMemHostAlloc;
  d.cuMemHostGetDevicePointer = emuMemHostGetDevicePointer;
  d.cuMemFreeHost = emuMemFreeHost;
  d.cuMemcpyHtoDAsync = emuMemcpyHtoDAsync;
  d.cuMemcpyDtoHAsync = emuMemcpyDtoHAsync;
  d.cuMemcpyDtoDAsync = emuMemcpyDtoDAsync;
  d.cuMemsetD8Async = emuMemsetD8Async;
  d.cuModuleLoadData = emuModuleLoadData;
  d.cuModuleGetFunction = emuModuleGetFunction;
  d.cuModuleUnload = emuModuleUnload;
  d.cuLaunchKernel = emuLaunchKernel;
  d.cuStreamCreate = emuStreamCreate;
  d.cuStreamDestroy = emuStreamDestroy;
  d.cuStreamSynchronize = emuStreamSynchronize;
  d.cuStreamWaitEvent = emuStreamWaitEvent;
  d.cuEventCreate = emuEventCreate;
  d.cuEventDestroy = emuEventDestroy;
  d.cuEventRecord = emuEventRecord;
  d.cuEventSynchronize = emuEventSynchronize;
  d.cuEventElapsedTime = emuEventElapsedTime;
  d.cuStreamBeginCapture = emuStreamBeginCapture;
  d.cuStreamEndCapture = emuStreamEndCapture;
  d.cuGraphInstantiate = emuGraphInstantiate;
  d.cuGraphLaunch = emuGraphLaunch;
  d.cuGraphExecDestroy = emuGraphExecDestroy;
  d.cuGraphDestroy = emuGraphDestroy;
  d.cuGetErrorName = emuGetErrorName;
  d.cuGetErrorString = emuGetErrorString;
  return driver;
}

void enqueueOnEmulatedStream(CUstream stream, std::function<void()> work) {
  if (!knownStream(stream)) fail("emulated driver: unknown stream");
  if (!isDefaultStream(stream) && streamOf(stream)->capturing) {
    streamOf(stream)->recorded.push_back(std::move(work));
    return;
  }
  work();
}

std::unique_ptr<GemmLibrary> makeEmulatedGemmLibrary() { return std::make_unique<EmulatedGemmLibrary>(); }

}  // namespace pagedc
