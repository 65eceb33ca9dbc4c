// The CUDA execution model on the CPU: what a kernel template (templates/*.cuh) needs from CUDA
// (keywords, built-in indices, barriers, warp collectives, atomics, device math), emulated so the
// same source text compiles with the host compiler and runs each CUDA thread as a fiber.
//
// pagedc_cuda.cuh includes this header when __CUDACC__ is not defined. It is header-only and
// depends only on the C++ standard library and POSIX/glibc, because it is also compiled at run
// time into host shared objects (one per kernel variant, dlopen'ed by pagedc): all state is
// inline, static or thread_local, so each module and each OS thread has its own.
//
// Model (docs/KERNELS.md, "CPU emulation"):
// - A launch runs its blocks one after another on the calling OS thread, in an order given by
//   LaunchOptions::schedule. Each CUDA thread of a block is a fiber with its own stack; fibers run
//   cooperatively: one runs until it reaches a barrier (__syncthreads, a warp collective) or exits,
//   then the next runnable one runs. When every fiber of the block waits, the scheduler completes
//   the barriers that can complete (it computes the results of warp collectives itself, so no lane
//   can overwrite a value another lane has not read yet) and runs the released fibers again, in
//   the order the schedule gives (Forward, Reverse or Shuffled). A kernel that races on shared or
//   global memory then computes different results under different schedules.
// - Errors (a barrier some threads never reach, a warp collective whose mask names a lane that
//   exited, an access into a guard page of a DeviceBuffer, a fiber's stack overflow, an integer
//   division by zero, a bad launch configuration) make launch() throw EmulationError naming the
//   kernel, the block and the thread. The process stays usable.
// - `__shared__` variables are `static thread_local`: one instance per OS thread, which runs one
//   block at a time, so every block sees its own (not zeroed: the previous block's values remain).
//
// The parts: half_float.h (f16/bf16 conversions), device_buffer.h (guard-paged device memory),
// launch.h (indices, fibers, scheduler, faults, launch()), device_functions.h (barriers, warp
// collectives, atomics, math). This file adds the CUDA keywords, after every system header is in,
// so none of them sees the macros.
#pragma once

#include "device_buffer.h"
#include "device_functions.h"
#include "half_float.h"
#include "launch.h"

// ---- keywords ------------------------------------------------------------------------------------
//
// Every __global__ and __forceinline__ function is `inline` on the host so a kernel defined in a
// header may be included by several translation units. A plain __device__ function is not made
// inline (a header that defines one must say `inline` or __forceinline__, as PAGEDC_DEVICE does).
// __noinline__ is left undefined: libstdc++ spells `__attribute__((__noinline__))`, which a macro
// of that name would break in any header included after this one.
#define __global__ inline
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define __constant__
#define __align__(n) __attribute__((aligned(n)))
#define PAGEDC_DEVICE inline
