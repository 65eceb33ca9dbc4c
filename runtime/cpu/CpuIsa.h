// The x86 vector instruction set the CPU backend's own kernels (paged attention, KV cache writes)
// use: chosen once per process from what the CPU supports (the default compile flags carry no
// -march, so the AVX kernels are compiled as gnu::target functions and selected at run time).
#pragma once

#include <string_view>

// PAGEDC_X86: whether the x86 intrinsics (immintrin.h, included here) are available to the kernels.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PAGEDC_X86 1
#else
#define PAGEDC_X86 0
#endif

namespace pagedc::cpu {

enum class CpuIsa {
  Portable,  // plain C++, any x86-64
  Avx2,      // AVX2 + FMA + F16C
  Avx512,    // AVX-512 F/BW/DQ/VL (+ AVX2, FMA, F16C)
};

std::string_view cpuIsaName(CpuIsa isa);
bool cpuSupports(CpuIsa isa);
// The instruction set in use: the best the CPU supports, unless forced.
CpuIsa activeCpuIsa();
// For tests and benchmarks: use `isa` from now on (results are reproducible only under one
// instruction set). Returns false, changing nothing, when the CPU lacks it.
bool forceCpuIsa(CpuIsa isa);

}  // namespace pagedc::cpu
