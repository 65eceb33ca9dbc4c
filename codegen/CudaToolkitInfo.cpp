// Queries NVRTC and nvJitLink for their versions and target architectures (no GPU needed).
#include "codegen/CudaToolkitInfo.h"

#if PAGEDC_HAVE_CUDA_TOOLKIT
#include <nvJitLink.h>
#include <nvrtc.h>
#endif

namespace pagedc {

CudaToolkitInfo queryCudaToolkit() {
  CudaToolkitInfo info;
#if PAGEDC_HAVE_CUDA_TOOLKIT
  int major = 0, minor = 0;
  if (nvrtcVersion(&major, &minor) != NVRTC_SUCCESS) return info;
  info.nvrtcVersion = std::to_string(major) + "." + std::to_string(minor);
  unsigned linkMajor = 0, linkMinor = 0;
  if (nvJitLinkVersion(&linkMajor, &linkMinor) != NVJITLINK_SUCCESS) return info;
  info.nvJitLinkVersion = std::to_string(linkMajor) + "." + std::to_string(linkMinor);
  int count = 0;
  if (nvrtcGetNumSupportedArchs(&count) == NVRTC_SUCCESS && count > 0) {
    info.architectures.resize(static_cast<size_t>(count));
    nvrtcGetSupportedArchs(info.architectures.data());
  }
  info.available = true;
#endif
  return info;
}

}  // namespace pagedc
