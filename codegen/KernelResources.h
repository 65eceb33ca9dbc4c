// What a compiled kernel uses on the GPU, from the linker's verbose log (ptxas "Function
// properties" lines): registers per thread, spill traffic, stack, static shared memory and local
// memory. `pagedc kernels build` prints it and the grid test fails on any spill.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace pagedc {

struct KernelResources {
  int64_t registers = 0;    // per thread
  int64_t spillStores = 0;  // bytes
  int64_t spillLoads = 0;   // bytes
  int64_t stackBytes = 0;   // stack frame per thread
  int64_t sharedBytes = 0;  // static shared memory the kernel declares (ptxas' "smem")
  int64_t localBytes = 0;   // local memory per thread ("lmem")
  int64_t barriers = 0;
  bool spills() const { return spillStores > 0 || spillLoads > 0; }
};

// Every function the log describes, by (mangled) name. Unknown lines are ignored, so a log without
// -verbose gives an empty map.
std::map<std::string, KernelResources> parseKernelResources(const std::string& linkerLog);

// "regs 40, spill 0/0 B, stack 0 B, smem 12288 B, lmem 0 B"
std::string describeKernelResources(const KernelResources& resources);

}  // namespace pagedc
