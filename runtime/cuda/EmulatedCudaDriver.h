// A CUDA driver that runs on the CPU: the same CudaDriver table the CUDA backend calls, backed by
// host memory and by kernel variants compiled for the host against the CUDA emulation
// (codegen/HostKernelBuilder, runtime/cuda/EmulatedKernelAbi.h). With it the whole CUDA backend -
// its plans, launches, block copies, CUDA graphs - runs on a machine with no GPU, so tests (and
// `pagedc generate --device emulated`) exercise the code a GPU would run.
//
// What it models and what it does not:
//  - "Device pointers" are host addresses. Every allocation sits at the end of its own mapping,
//    between inaccessible guard pages, so a kernel reading or writing past an allocation faults.
//  - Work runs synchronously when it is enqueued (async copies are plain copies, streams are in
//    order, events record host time), except on a stream being captured: there launches, copies,
//    memsets and emulated GEMMs are recorded, and cuGraphLaunch replays them in order. Calls a real
//    driver refuses while the calling thread captures (allocations, synchronisation) fail the same
//    way, so capture bugs show here too.
//  - cuModuleLoadData takes only emulated images (makeEmulatedKernelImage) and dlopens the library;
//    cuLaunchKernel calls its launch entry with kernelParams[0], the params struct.
//  - The device reports itself as "pagedc emulated device", compute capability 8.0.
// There is one emulated device per process (the driver's entry points are plain functions).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "runtime/cuda/CudaDriver.h"
#include "runtime/cuda/EmulatedKernelAbi.h"
#include "runtime/cuda/GemmLibrary.h"

namespace pagedc {

struct EmulatedDeviceOptions {
  size_t totalMemory = size_t{8} << 30;  // what cuDeviceTotalMem / cuMemGetInfo report; allocations beyond fail
  int schedule = kEmulatedScheduleForward;  // thread order of every launch (kEmulatedSchedule...)
  unsigned long long seed = 1;              // of the shuffled schedule
};

// The emulated driver with `options` (they replace those of an earlier call: one device per process).
std::shared_ptr<const CudaDriver> makeEmulatedCudaDriver(const EmulatedDeviceOptions& options = {});

// Runs `work` on `stream` as the emulated driver runs its own work: now, or, while the stream is
// being captured, recorded into the graph (so a library built on the emulated driver, like the
// emulated GEMM, is captured in CUDA graphs too). Errors thrown by `work` propagate (at replay:
// from cuGraphLaunch, as CUDA_ERROR_LAUNCH_FAILED with the message).
void enqueueOnEmulatedStream(CUstream stream, std::function<void()> work);

// GEMMs on the emulated device: host loops over the "device" pointers, f32 accumulation (the
// GemmLibrary contract), enqueued with enqueueOnEmulatedStream.
std::unique_ptr<GemmLibrary> makeEmulatedGemmLibrary();

}  // namespace pagedc
