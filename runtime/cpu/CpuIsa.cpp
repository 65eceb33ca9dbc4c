#include "runtime/cpu/CpuIsa.h"

#include <atomic>

namespace pagedc::cpu {

namespace {

CpuIsa detectCpuIsa() {
  if (cpuSupports(CpuIsa::Avx512)) return CpuIsa::Avx512;
  if (cpuSupports(CpuIsa::Avx2)) return CpuIsa::Avx2;
  return CpuIsa::Portable;
}

std::atomic<CpuIsa>& activeIsa() {
  static std::atomic<CpuIsa> isa{detectCpuIsa()};
  return isa;
}

}  // namespace

std::string_view cpuIsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Portable: return "portable";
    case CpuIsa::Avx2: return "avx2";
    case CpuIsa::Avx512: return "avx512";
  }
  return "?";
}

bool cpuSupports(CpuIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  switch (isa) {
    case CpuIsa::Portable: return true;
    case CpuIsa::Avx2: return avx2;
    case CpuIsa::Avx512:
      return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
  }
  return false;
#else
  return isa == CpuIsa::Portable;
#endif
}

CpuIsa activeCpuIsa() { return activeIsa().load(std::memory_order_relaxed); }

bool forceCpuIsa(CpuIsa isa) {
  if (!cpuSupports(isa)) return false;
  activeIsa().store(isa, std::memory_order_relaxed);
  return true;
}

}  // namespace pagedc::cpu
