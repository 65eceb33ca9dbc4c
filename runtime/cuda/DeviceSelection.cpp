// Choosing the backend from --device.
#include "runtime/cuda/DeviceSelection.h"

#include "ir/Error.h"
#include "runtime/cuda/EmulatedCudaDriver.h"

namespace pagedc {

DeviceChoice selectDevice(std::string_view requested, const CudaAvailability& cuda) {
  DeviceChoice choice;
  if (requested == "cpu") return choice;
  if (requested == "cuda") {
    if (!cuda.available()) fail("--device cuda: ", cuda.reason.empty() ? "no usable CUDA device" : cuda.reason);
    choice.kind = DeviceKind::Cuda;
    choice.driver = cuda.driver;
    return choice;
  }
  if (requested == "auto") {
    choice.automatic = true;
    if (cuda.available()) {
      choice.kind = DeviceKind::Cuda;
      choice.driver = cuda.driver;
    } else {
      choice.why = cuda.reason;
    }
    return choice;
  }
  if (requested == "emulated") {
    choice.kind = DeviceKind::Cuda;
    choice.emulated = true;
    choice.driver = makeEmulatedCudaDriver();
    return choice;
  }
  fail("--device: unknown device '", requested, "' (cpu, cuda, auto or emulated)");
}

DeviceChoice selectDevice(std::string_view requested) {
  if (requested == "cpu") return selectDevice(requested, CudaAvailability{});
  if (requested != "cuda" && requested != "auto") return selectDevice(requested, CudaAvailability{});  // cpu, emulated, unknown
  return selectDevice(requested, probeCuda());
}

}  // namespace pagedc
