// The device, its context and the RAII owners of driver objects.
#include "runtime/cuda/CudaDevice.h"

#include <utility>

#include "ir/Error.h"

namespace pagedc::cuda {

namespace {
std::string formatBytes(size_t bytes) {
  const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
  std::string text = std::to_string(mib);
  return text.substr(0, text.find('.') + 2) + " MiB";
}
}  // namespace

CudaDevice::CudaDevice(std::shared_ptr<const CudaDriver> driver, int ordinal) : driver_(std::move(driver)) {
  const CudaDriver& d = *driver_;
  const int count = cudaDeviceCount(d);
  if (count == 0) fail("the CUDA driver (", d.name, ") reports no CUDA device; run on the CPU with --device cpu");
  if (ordinal < 0 || ordinal >= count) fail("CUDA device ", ordinal, " does not exist: the driver reports ", count, " device(s)");
  info_.ordinal = ordinal;
  check(d.cuDeviceGet(&device_, ordinal), "cuDeviceGet", "device " + std::to_string(ordinal));
  char name[256] = {};
  check(d.cuDeviceGetName(name, sizeof(name) - 1, device_), "cuDeviceGetName");
  info_.name = name;
  auto attribute = [&](int which) {
    int value = 0;
    return d.cuDeviceGetAttribute(&value, which, device_) == kCudaSuccess ? value : 0;
  };
  info_.arch = attribute(kCuAttrComputeCapabilityMajor) * 10 + attribute(kCuAttrComputeCapabilityMinor);
  info_.multiprocessors = attribute(kCuAttrMultiprocessorCount);
  info_.canMapHostMemory = attribute(kCuAttrCanMapHostMemory) != 0 && attribute(kCuAttrUnifiedAddressing) != 0;
  const int clockKHz = attribute(kCuAttrMemoryClockRateKHz), busBits = attribute(kCuAttrGlobalMemoryBusWidthBits);
  info_.peakBandwidthGBs = 2.0 * clockKHz * 1e3 * (busBits / 8.0) / 1e9;
  check(d.cuDeviceTotalMem(&info_.totalMemory, device_), "cuDeviceTotalMem");
  check(d.cuDriverGetVersion(&info_.driverVersion), "cuDriverGetVersion");
  check(d.cuDevicePrimaryCtxRetain(&context_, device_), "cuDevicePrimaryCtxRetain", describe());
  try {
    makeCurrent();
  } catch (...) {
    d.cuDevicePrimaryCtxRelease(device_);
    throw;
  }
}

CudaDevice::~CudaDevice() {
  if (context_) driver_->cuDevicePrimaryCtxRelease(device_);
}

void CudaDevice::makeCurrent() const { check(driver_->cuCtxSetCurrent(context_), "cuCtxSetCurrent", describe()); }

std::string CudaDevice::describe() const {
  return info_.name + " (device " + std::to_string(info_.ordinal) + ", sm_" + std::to_string(info_.arch) + ")";
}

// --- DeviceBuffer ---------------------------------------------------------------------------------

DeviceBuffer::DeviceBuffer(const CudaDevice& device, size_t bytes, std::string_view what) : driver_(&device.driver()), bytes_(bytes) {
  if (bytes == 0) return;
  const CUresult result = driver_->cuMemAlloc(&pointer_, bytes);
  if (result != kCudaSuccess) {
    pointer_ = 0;
    size_t free = 0, total = 0;
    std::string memory;
    if (driver_->cuMemGetInfo(&free, &total) == kCudaSuccess) memory = "; the device has " + formatBytes(free) + " free of " + formatBytes(total);
    fail("cannot allocate ", formatBytes(bytes), " of device memory for ", what, " on ", device.describe(), ": ", driver_->describe(result), memory);
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (pointer_) driver_->cuMemFree(pointer_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (pointer_) driver_->cuMemFree(pointer_);
    driver_ = std::exchange(other.driver_, nullptr);
    pointer_ = std::exchange(other.pointer_, 0);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

// --- PinnedBuffer ---------------------------------------------------------------------------------

PinnedBuffer::PinnedBuffer(const CudaDevice& device, size_t bytes, std::string_view what) : driver_(&device.driver()), bytes_(bytes) {
  if (bytes == 0) return;
  const unsigned flags = kCuMemHostAllocPortable | (device.info().canMapHostMemory ? kCuMemHostAllocDeviceMap : 0u);
  const CUresult result = driver_->cuMemHostAlloc(&host_, bytes, flags);
  if (result != kCudaSuccess) {
    host_ = nullptr;
    fail("cannot allocate ", formatBytes(bytes), " of pinned host memory for ", what, ": ", driver_->describe(result));
  }
  if (device.info().canMapHostMemory && driver_->cuMemHostGetDevicePointer(&device_, host_, 0) != kCudaSuccess) device_ = 0;
}

PinnedBuffer::~PinnedBuffer() {
  if (host_) driver_->cuMemFreeHost(host_);
}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
  if (this != &other) {
    if (host_) driver_->cuMemFreeHost(host_);
    driver_ = std::exchange(other.driver_, nullptr);
    host_ = std::exchange(other.host_, nullptr);
    device_ = std::exchange(other.device_, 0);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

// --- Streams, events, graphs ------------------------------------------------------------------------

CudaStream::CudaStream(const CudaDevice& device) : driver_(&device.driver()) {
  device.check(driver_->cuStreamCreate(&stream_, kCuStreamNonBlocking), "cuStreamCreate");
}

CudaStream::~CudaStream() {
  if (stream_) driver_->cuStreamDestroy(stream_);
}

void CudaStream::synchronize() const { driver_->check(driver_->cuStreamSynchronize(stream_), "cuStreamSynchronize"); }

CudaEvent::CudaEvent(const CudaDevice& device, bool timing) : driver_(&device.driver()) {
  device.check(driver_->cuEventCreate(&event_, timing ? kCuEventDefault : kCuEventDisableTiming), "cuEventCreate");
}

CudaEvent::~CudaEvent() {
  if (event_) driver_->cuEventDestroy(event_);
}

void CudaEvent::record(CUstream stream) const { driver_->check(driver_->cuEventRecord(event_, stream), "cuEventRecord"); }

void CudaEvent::synchronize() const { driver_->check(driver_->cuEventSynchronize(event_), "cuEventSynchronize"); }

float CudaEvent::millisecondsSince(const CudaEvent& start) const {
  float ms = 0;
  driver_->check(driver_->cuEventElapsedTime(&ms, start.event_, event_), "cuEventElapsedTime");
  return ms;
}

CudaGraph::CudaGraph(const CudaDriver& driver, CUgraph graph) : driver_(&driver), graph_(graph) {
  const CUresult result = driver.cuGraphInstantiate(&exec_, graph_, 0);
  if (result != kCudaSuccess) {
    driver.cuGraphDestroy(graph_);
    driver.check(result, "cuGraphInstantiate");
  }
}

CudaGraph::~CudaGraph() {
  if (exec_) driver_->cuGraphExecDestroy(exec_);
  if (graph_) driver_->cuGraphDestroy(graph_);
}

void CudaGraph::launch(CUstream stream) const { driver_->check(driver_->cuGraphLaunch(exec_, stream), "cuGraphLaunch"); }

}  // namespace pagedc::cuda
