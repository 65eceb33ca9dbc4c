// `--device cpu|cuda|auto|emulated`: which backend runs a model. auto picks CUDA when the driver
// loads and reports at least one device, else the CPU; cuda without a usable GPU is an error that
// says what is missing (no libcuda.so.1, no device, the driver's error). emulated runs the CUDA
// backend on the emulated device (runtime/cuda/EmulatedCudaDriver.h): slow, for tests and CI.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "runtime/cuda/CudaDriver.h"

namespace pagedc {

enum class DeviceKind { Cpu, Cuda };

struct DeviceChoice {
  DeviceKind kind = DeviceKind::Cpu;
  std::shared_ptr<const CudaDriver> driver;  // Cuda: the loaded driver
  bool automatic = false;                    // chosen by auto (a CUDA failure may fall back to the CPU)
  bool emulated = false;                     // the emulated device: host kernels and the emulated GEMM
  std::string why;                           // auto -> cpu: why CUDA was not used
};

// Throws Error for an unknown device name, or for "cuda" when `cuda` is unavailable:
// "--device cuda: no CUDA driver (libcuda.so.1) on this machine: ...".
DeviceChoice selectDevice(std::string_view requested, const CudaAvailability& cuda);
// Same, probing the machine (probeCuda()) only when the choice depends on it.
DeviceChoice selectDevice(std::string_view requested);

}  // namespace pagedc
