// The device functions of the CPU emulation (cuda_emulation.h): barriers and warp collectives
// (which suspend the calling fiber until the scheduler in launch.h completes them), fences,
// atomics and the CUDA math intrinsics, under their CUDA names in the global namespace.
#pragma once

#include <math.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "launch.h"

// ---- barriers and warp collectives ---------------------------------------------------------------

inline void __syncthreads() { ::pagedc::emu::detail::blockBarrier(::pagedc::emu::detail::BlockBarrierKind::Sync, 0); }
inline int __syncthreads_count(int predicate) {
  return ::pagedc::emu::detail::blockBarrier(::pagedc::emu::detail::BlockBarrierKind::Count, predicate != 0);
}
inline int __syncthreads_and(int predicate) {
  return ::pagedc::emu::detail::blockBarrier(::pagedc::emu::detail::BlockBarrierKind::And, predicate != 0);
}
inline int __syncthreads_or(int predicate) {
  return ::pagedc::emu::detail::blockBarrier(::pagedc::emu::detail::BlockBarrierKind::Or, predicate != 0);
}

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::pagedc::emu::detail::warpCollective(::pagedc::emu::detail::WarpOpKind::SyncWarp, mask, 0, 0, 32);
}
inline unsigned __activemask() {
  return static_cast<unsigned>(::pagedc::emu::detail::warpCollective(::pagedc::emu::detail::WarpOpKind::ActiveMask, 0, 0, 0, 32));
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return static_cast<unsigned>(::pagedc::emu::detail::warpCollective(::pagedc::emu::detail::WarpOpKind::Ballot, mask, predicate != 0, 0, 32));
}
inline int __any_sync(unsigned mask, int predicate) {
  return static_cast<int>(::pagedc::emu::detail::warpCollective(::pagedc::emu::detail::WarpOpKind::Any, mask, predicate != 0, 0, 32));
}
inline int __all_sync(unsigned mask, int predicate) {
  return static_cast<int>(::pagedc::emu::detail::warpCollective(::pagedc::emu::detail::WarpOpKind::All, mask, predicate != 0, 0, 32));
}

template <class T>
T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize) {
  using namespace ::pagedc::emu::detail;
  return fromBits<T>(warpCollective(WarpOpKind::ShuffleIndex, mask, toBits(var), srcLane, width));
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  using namespace ::pagedc::emu::detail;
  return fromBits<T>(warpCollective(WarpOpKind::ShuffleUp, mask, toBits(var), static_cast<int>(delta), width));
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  using namespace ::pagedc::emu::detail;
  return fromBits<T>(warpCollective(WarpOpKind::ShuffleDown, mask, toBits(var), static_cast<int>(delta), width));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize) {
  using namespace ::pagedc::emu::detail;
  return fromBits<T>(warpCollective(WarpOpKind::ShuffleXor, mask, toBits(var), laneMask, width));
}

inline unsigned __reduce_add_sync(unsigned mask, unsigned value) {
  return static_cast<unsigned>(::pagedc::emu::detail::warpCollective(::pagedc::emu::detail::WarpOpKind::ReduceAdd, mask, value, 0, 32));
}
inline int __reduce_add_sync(unsigned mask, int value) {
  return static_cast<int>(__reduce_add_sync(mask, static_cast<unsigned>(value)));
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned value) {
  return static_cast<unsigned>(::pagedc::emu::detail::warpCollective(::pagedc::emu::detail::WarpOpKind::ReduceMin, mask, value, 0, 32));
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned value) {
  return static_cast<unsigned>(::pagedc::emu::detail::warpCollective(::pagedc::emu::detail::WarpOpKind::ReduceMax, mask, value, 0, 32));
}
inline int __reduce_min_sync(unsigned mask, int value) {
  return static_cast<int>(::pagedc::emu::detail::warpCollective(::pagedc::emu::detail::WarpOpKind::ReduceMinSigned, mask,
                                                                 static_cast<uint32_t>(value), 0, 32));
}
inline int __reduce_max_sync(unsigned mask, int value) {
  return static_cast<int>(::pagedc::emu::detail::warpCollective(::pagedc::emu::detail::WarpOpKind::ReduceMaxSigned, mask,
                                                                 static_cast<uint32_t>(value), 0, 32));
}

// ---- memory fences and atomics -------------------------------------------------------------------
//
// Blocks run one at a time, so atomics need no locking between CUDA threads; they are atomic
// operations anyway, so separate launches on separate OS threads stay correct.

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

#define PAGEDC_EMU_ATOMIC_RMW(name, builtin, T) \
  inline T name(T* address, T value) { return builtin(address, value, __ATOMIC_SEQ_CST); }
PAGEDC_EMU_ATOMIC_RMW(atomicAdd, __atomic_fetch_add, int)
PAGEDC_EMU_ATOMIC_RMW(atomicAdd, __atomic_fetch_add, unsigned)
PAGEDC_EMU_ATOMIC_RMW(atomicAdd, __atomic_fetch_add, unsigned long long)
PAGEDC_EMU_ATOMIC_RMW(atomicSub, __atomic_fetch_sub, int)
PAGEDC_EMU_ATOMIC_RMW(atomicSub, __atomic_fetch_sub, unsigned)
PAGEDC_EMU_ATOMIC_RMW(atomicAnd, __atomic_fetch_and, int)
PAGEDC_EMU_ATOMIC_RMW(atomicAnd, __atomic_fetch_and, unsigned)
PAGEDC_EMU_ATOMIC_RMW(atomicAnd, __atomic_fetch_and, unsigned long long)
PAGEDC_EMU_ATOMIC_RMW(atomicOr, __atomic_fetch_or, int)
PAGEDC_EMU_ATOMIC_RMW(atomicOr, __atomic_fetch_or, unsigned)
PAGEDC_EMU_ATOMIC_RMW(atomicOr, __atomic_fetch_or, unsigned long long)
PAGEDC_EMU_ATOMIC_RMW(atomicXor, __atomic_fetch_xor, int)
PAGEDC_EMU_ATOMIC_RMW(atomicXor, __atomic_fetch_xor, unsigned)
PAGEDC_EMU_ATOMIC_RMW(atomicXor, __atomic_fetch_xor, unsigned long long)
PAGEDC_EMU_ATOMIC_RMW(atomicExch, __atomic_exchange_n, int)
PAGEDC_EMU_ATOMIC_RMW(atomicExch, __atomic_exchange_n, unsigned)
PAGEDC_EMU_ATOMIC_RMW(atomicExch, __atomic_exchange_n, unsigned long long)
#undef PAGEDC_EMU_ATOMIC_RMW

namespace pagedc::emu::detail {
// Read-modify-write by compare-and-swap on the bits: for floats and min/max.
template <class T, class Op>
T atomicUpdate(T* address, Op op) {
  using Bits = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;
  static_assert(sizeof(T) == sizeof(Bits));
  Bits* bits = reinterpret_cast<Bits*>(address);
  Bits expected = __atomic_load_n(bits, __ATOMIC_SEQ_CST);
  for (;;) {
    const T old = std::bit_cast<T>(expected);
    const Bits desired = std::bit_cast<Bits>(static_cast<T>(op(old)));
    if (__atomic_compare_exchange_n(bits, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return old;
  }
}
}  // namespace pagedc::emu::detail

inline float atomicAdd(float* address, float value) {
  return ::pagedc::emu::detail::atomicUpdate(address, [value](float old) { return old + value; });
}
inline double atomicAdd(double* address, double value) {
  return ::pagedc::emu::detail::atomicUpdate(address, [value](double old) { return old + value; });
}
inline float atomicExch(float* address, float value) {
  return ::pagedc::emu::detail::atomicUpdate(address, [value](float) { return value; });
}
#define PAGEDC_EMU_ATOMIC_MINMAX(T)                                                                                     \
  inline T atomicMax(T* address, T value) {                                                                             \
    return ::pagedc::emu::detail::atomicUpdate(address, [value](T old) { return old < value ? value : old; });          \
  }                                                                                                                     \
  inline T atomicMin(T* address, T value) {                                                                             \
    return ::pagedc::emu::detail::atomicUpdate(address, [value](T old) { return value < old ? value : old; });          \
  }
PAGEDC_EMU_ATOMIC_MINMAX(int)
PAGEDC_EMU_ATOMIC_MINMAX(unsigned)
PAGEDC_EMU_ATOMIC_MINMAX(long long)
PAGEDC_EMU_ATOMIC_MINMAX(unsigned long long)
#undef PAGEDC_EMU_ATOMIC_MINMAX

#define PAGEDC_EMU_ATOMIC_CAS(T)                                                                      \
  inline T atomicCAS(T* address, T compare, T value) {                                                \
    __atomic_compare_exchange_n(address, &compare, value, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
    return compare;                                                                                   \
  }
PAGEDC_EMU_ATOMIC_CAS(int)
PAGEDC_EMU_ATOMIC_CAS(unsigned)
PAGEDC_EMU_ATOMIC_CAS(unsigned long long)
PAGEDC_EMU_ATOMIC_CAS(unsigned short)
#undef PAGEDC_EMU_ATOMIC_CAS

inline unsigned atomicInc(unsigned* address, unsigned limit) {
  return ::pagedc::emu::detail::atomicUpdate(address, [limit](unsigned old) { return old >= limit ? 0u : old + 1u; });
}
inline unsigned atomicDec(unsigned* address, unsigned limit) {
  return ::pagedc::emu::detail::atomicUpdate(address, [limit](unsigned old) { return (old == 0 || old > limit) ? limit : old - 1u; });
}

// ---- device math ---------------------------------------------------------------------------------
//
// expf, logf, sqrtf, tanhf, erff, fmaxf, floorf, ... are glibc's (math.h). CUDA's fast intrinsics
// whose names glibc also declares (__expf, __logf, ...) are macros, so they cannot clash with
// glibc's declarations; the others are functions.
#define __expf(x) ::expf(x)
#define __exp10f(x) ::exp10f(x)
#define __logf(x) ::logf(x)
#define __log2f(x) ::log2f(x)
#define __log10f(x) ::log10f(x)
#define __powf(x, y) ::powf((x), (y))
#define __sinf(x) ::sinf(x)
#define __cosf(x) ::cosf(x)
#define __tanf(x) ::tanf(x)
#define __sincosf(x, s, c) ::sincosf((x), (s), (c))

inline float rsqrtf(float x) { return 1.0f / ::sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / ::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return ::sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / ::sqrtf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return ::fmaf(a, b, c); }
inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline int __float2int_rn(float x) { return static_cast<int>(::nearbyintf(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float2int_rd(float x) { return static_cast<int>(::floorf(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(::ceilf(x)); }
inline unsigned __float2uint_rn(float x) { return static_cast<unsigned>(::nearbyintf(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline float __uint2float_rn(unsigned x) { return static_cast<float>(x); }
inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return std::countl_zero(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
inline int __ffsll(long long x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(x)) + 1; }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
template <class T>
T __ldg(const T* address) {
  return *address;
}
inline void __nanosleep(unsigned) {}
inline long long clock64() { return static_cast<long long>(__builtin_ia32_rdtsc()); }
[[noreturn]] inline void __trap() { ::pagedc::emu::detail::failInFiber("the kernel called __trap()"); }

// CUDA's device min/max overloads.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a < b ? b : a; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a < b ? b : a; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a < b ? b : a; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a < b ? b : a; }
inline float min(float a, float b) { return ::fminf(a, b); }
inline float max(float a, float b) { return ::fmaxf(a, b); }
inline double min(double a, double b) { return ::fmin(a, b); }
inline double max(double a, double b) { return ::fmax(a, b); }
