// What the CUDA toolkit this build found can do: NVRTC and nvJitLink versions and supported GPU
// architectures. Both work without a GPU; a build without the toolkit reports it as absent.
#pragma once

#include <string>
#include <vector>

namespace pagedc {

struct CudaToolkitInfo {
  bool available = false;           // built with NVRTC and nvJitLink
  std::string nvrtcVersion;         // "13.0"
  std::string nvJitLinkVersion;     // "13.0"
  std::vector<int> architectures;   // compute capabilities NVRTC can target, e.g. 75, 80, 86, 89, 90
};

CudaToolkitInfo queryCudaToolkit();

}  // namespace pagedc
