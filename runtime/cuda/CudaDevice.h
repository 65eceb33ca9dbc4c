// One CUDA device as the backend uses it: its primary context, its properties, and RAII owners of
// device memory (plain cuMemAlloc), pinned host memory (cuMemHostAlloc, mapped into the device's
// address space where the device can), streams, events and modules.
//
// Every public entry point of the backend that may run on a new thread (the engine loop runs
// steps on its own thread) calls makeCurrent() first: a context is current per thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "runtime/cuda/CudaDriver.h"

namespace pagedc::cuda {

struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int arch = 0;  // compute capability major * 10 + minor
  int multiprocessors = 0;
  size_t totalMemory = 0;
  // Peak DRAM bandwidth from the memory clock and bus width (2 transfers per clock), GB/s; 0 when
  // the driver does not report them.
  double peakBandwidthGBs = 0;
  bool canMapHostMemory = false;
  int driverVersion = 0;  // 12040 for CUDA 12.4
};

class CudaDevice {
public:
  // Initialises the driver, retains device `ordinal`'s primary context and makes it current.
  // Throws Error naming the device and the driver's error.
  CudaDevice(std::shared_ptr<const CudaDriver> driver, int ordinal);
  ~CudaDevice();
  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;

  const CudaDriver& driver() const { return *driver_; }
  const std::shared_ptr<const CudaDriver>& sharedDriver() const { return driver_; }
  const DeviceInfo& info() const { return info_; }
  void makeCurrent() const;
  void check(CUresult result, std::string_view call, std::string_view context = {}) const { driver_->check(result, call, context); }
  // "NVIDIA H100 80GB HBM3 (device 0, sm_90)".
  std::string describe() const;

private:
  std::shared_ptr<const CudaDriver> driver_;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  DeviceInfo info_;
};

// Device memory. Zero bytes allocate nothing (get() is 0).
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  // Throws Error naming `what`, the size and the device's free memory when the allocation fails.
  DeviceBuffer(const CudaDevice& device, size_t bytes, std::string_view what);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;

  CUdeviceptr get() const { return pointer_; }
  size_t size() const { return bytes_; }

private:
  const CudaDriver* driver_ = nullptr;
  CUdeviceptr pointer_ = 0;
  size_t bytes_ = 0;
};

// Page-locked host memory (async copies from and to it overlap; the device can read it directly
// through devicePointer() when mapped).
class PinnedBuffer {
public:
  PinnedBuffer() = default;
  PinnedBuffer(const CudaDevice& device, size_t bytes, std::string_view what);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& other) noexcept { *this = std::move(other); }
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept;

  std::byte* data() const { return static_cast<std::byte*>(host_); }
  CUdeviceptr devicePointer() const { return device_; }  // 0 when not mapped
  size_t size() const { return bytes_; }

private:
  const CudaDriver* driver_ = nullptr;
  void* host_ = nullptr;
  CUdeviceptr device_ = 0;
  size_t bytes_ = 0;
};

class CudaStream {
public:
  explicit CudaStream(const CudaDevice& device);  // non-blocking with respect to the legacy stream
  ~CudaStream();
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  CUstream get() const { return stream_; }
  void synchronize() const;

private:
  const CudaDriver* driver_;
  CUstream stream_ = nullptr;
};

class CudaEvent {
public:
  CudaEvent(const CudaDevice& device, bool timing);
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  CUevent get() const { return event_; }
  void record(CUstream stream) const;
  void synchronize() const;
  // Milliseconds from `start` to this event (both recorded, with timing).
  float millisecondsSince(const CudaEvent& start) const;

private:
  const CudaDriver* driver_;
  CUevent event_ = nullptr;
};

// An instantiated CUDA graph (a captured sequence of launches), replayed with launch().
class CudaGraph {
public:
  CudaGraph(const CudaDriver& driver, CUgraph graph);  // instantiates; takes ownership of `graph`
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  void launch(CUstream stream) const;

private:
  const CudaDriver* driver_;
  CUgraph graph_ = nullptr;
  CUgraphExec exec_ = nullptr;
};

}  // namespace pagedc::cuda
