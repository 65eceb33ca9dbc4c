// Where the CUDA backend's kernels come from: a module image per specialisation key, which the
// backend loads with cuModuleLoadData and whose entry it looks up by name. The runtime does not
// compile kernels itself; implementations live with the compiler:
//  - codegen/CudaKernelProvider: NVRTC + nvJitLink with a disk cache, or cubins embedded in the
//    artifact (images are cubins for the device's architecture);
//  - codegen/HostKernelProvider (tests): the same emitted source compiled by the host compiler
//    against the emulation header, whose image only the emulated driver understands.
#pragma once

#include <string>
#include <vector>

#include "runtime/kernels/KernelKey.h"

namespace pagedc {

struct KernelImage {
  std::vector<char> data;  // what cuModuleLoadData takes (a cubin, PTX text, or an emulator image)
  std::string entryName;   // the kernel's entry in the module (NVRTC's lowered name)
};

class KernelProvider {
public:
  virtual ~KernelProvider() = default;
  // The module image holding `key`, for a device of compute capability `arch` (major * 10 +
  // minor: 80, 86, 89, 90). Throws Error naming the key when it cannot provide one (compile
  // error, no toolkit and no embedded cubin). May be called from one thread at a time.
  virtual KernelImage image(const KernelKey& key, int arch) = 0;
};

}  // namespace pagedc
