// Launches of the CPU emulation (cuda_emulation.h): the built-in index variables, the fibers that
// run a block's CUDA threads, the scheduler that completes barriers and warp collectives and
// orders the fibers (LaunchOptions::schedule), the fault handler that turns an out-of-bounds access
// into an EmulationError, and launch() itself. docs/KERNELS.md, "CPU emulation", describes the model.
#pragma once

#include <cxxabi.h>
#include <dlfcn.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "device_buffer.h"

// ---- built-in types ------------------------------------------------------------------------------

namespace pagedc::emu {

// CUDA's uint3 / dim3: unset dimensions are 1.
struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr Dim3() = default;
  constexpr Dim3(unsigned x_, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

}  // namespace pagedc::emu

using dim3 = ::pagedc::emu::Dim3;
using uint3 = ::pagedc::emu::Dim3;
inline constexpr int warpSize = 32;

// The built-in index variables: thread-local copies the scheduler sets whenever it switches to a
// fiber (and blockIdx, blockDim, gridDim when a block starts). Every switch happens inside a call,
// so compiled kernel code reloads them after each barrier. Variables, not macros, so host code
// with members of these names still compiles beside the emulation.
inline thread_local ::pagedc::emu::Dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace pagedc::emu {

// ---- errors --------------------------------------------------------------------------------------

// What launch() throws: the message names the kernel, the block and thread, and what went wrong.
class EmulationError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// ---- launch options ------------------------------------------------------------------------------

// The order in which runnable fibers resume after a barrier (and in which blocks run): thread 0
// first, the last thread first, or a pseudo-random order drawn from `seed` (different per barrier).
enum class Schedule { Forward, Reverse, Shuffled };

struct LaunchOptions {
  Schedule schedule = Schedule::Forward;
  uint64_t seed = 0;
  const char* kernelName = nullptr;     // for error messages; else the symbol, if the module exports it
  size_t stackBytes = 256 * 1024;       // per CUDA thread (virtual; touched pages only)
};

inline std::string scheduleName(const LaunchOptions& options) {
  switch (options.schedule) {
    case Schedule::Forward: return "forward";
    case Schedule::Reverse: return "reverse";
    case Schedule::Shuffled: return "shuffled(seed " + std::to_string(options.seed) + ")";
  }
  return "?";
}

// ---- fibers and the block scheduler --------------------------------------------------------------

namespace detail {

// What a suspended fiber waits for.
enum class FiberState { Ready, AtBlockBarrier, AtWarpCollective, Exited };

enum class BlockBarrierKind { Sync, Count, And, Or };
enum class WarpOpKind { SyncWarp, ShuffleIndex, ShuffleUp, ShuffleDown, ShuffleXor, Ballot, Any, All, ActiveMask, ReduceAdd, ReduceMin, ReduceMax, ReduceMinSigned, ReduceMaxSigned };

inline const char* blockBarrierName(BlockBarrierKind kind) {
  switch (kind) {
    case BlockBarrierKind::Sync: return "__syncthreads";
    case BlockBarrierKind::Count: return "__syncthreads_count";
    case BlockBarrierKind::And: return "__syncthreads_and";
    case BlockBarrierKind::Or: return "__syncthreads_or";
  }
  return "?";
}

inline const char* warpOpName(WarpOpKind kind) {
  switch (kind) {
    case WarpOpKind::SyncWarp: return "__syncwarp";
    case WarpOpKind::ShuffleIndex: return "__shfl_sync";
    case WarpOpKind::ShuffleUp: return "__shfl_up_sync";
    case WarpOpKind::ShuffleDown: return "__shfl_down_sync";
    case WarpOpKind::ShuffleXor: return "__shfl_xor_sync";
    case WarpOpKind::Ballot: return "__ballot_sync";
    case WarpOpKind::Any: return "__any_sync";
    case WarpOpKind::All: return "__all_sync";
    case WarpOpKind::ActiveMask: return "__activemask";
    case WarpOpKind::ReduceAdd: return "__reduce_add_sync";
    case WarpOpKind::ReduceMin: return "__reduce_min_sync";
    case WarpOpKind::ReduceMax: return "__reduce_max_sync";
    case WarpOpKind::ReduceMinSigned: return "__reduce_min_sync";
    case WarpOpKind::ReduceMaxSigned: return "__reduce_max_sync";
  }
  return "?";
}

// One CUDA thread: its stack, its indices and what it waits for.
struct Fiber {
  void* savedStackPointer = nullptr;
  char* stackMapping = nullptr;  // guard page, then the stack
  size_t stackMappingBytes = 0;
  Dim3 threadIndex;
  unsigned linear = 0, warp = 0, lane = 0;
  FiberState state = FiberState::Ready;
  unsigned barriersPassed = 0;
  // The barrier or collective it waits at, with its operands; `result` receives the outcome.
  BlockBarrierKind blockBarrier = BlockBarrierKind::Sync;
  int predicate = 0;
  WarpOpKind warpOp = WarpOpKind::SyncWarp;
  unsigned mask = 0;
  uint64_t value = 0;
  int operand = 0;  // source lane, delta or lane mask
  int width = 32;
  uint64_t result = 0;

  Fiber() = default;
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;
  ~Fiber() {
    if (stackMapping) munmap(stackMapping, stackMappingBytes);
  }
};

// The launch running on this OS thread.
struct Run {
  // What runs.
  void (*invoke)(void (*kernel)(), const void* params) = nullptr;
  void (*kernel)() = nullptr;
  const void* params = nullptr;
  std::string kernelName;
  Dim3 grid, block, blockIndex;
  LaunchOptions options;
  unsigned threadsPerBlock = 0;
  // The scheduler.
  void* schedulerStackPointer = nullptr;
  Fiber* current = nullptr;
  std::vector<Fiber*> fibers;  // of the block, by linear thread index
  std::vector<Fiber*> runnable, released;  // this round's order; the fibers a completed barrier released
  size_t nextRunnable = 0;                  // index in `runnable` of the fiber running now
  std::mt19937_64 random;
  std::vector<Dim3> blockOrder;
  size_t nextBlock = 0;
  bool inFiber = false;
  // Set by a fiber that found an error (the scheduler throws it) or by the fault handler.
  std::string fiberError;
  sigjmp_buf faultJump;
  int faultSignal = 0;
  void* faultAddress = nullptr;
  bool faultWasWrite = false;
  Fiber* faultFiber = nullptr;
};

inline thread_local Run* tlRun = nullptr;
inline thread_local Fiber* tlFiber = nullptr;
// The launches running in this module, by OS thread: the fault handler finds the faulting
// thread's launch here without touching thread-local storage (whose first use by a thread in a
// dlopen'ed module may allocate, which a signal handler must not).
struct ActiveLaunch {
  std::atomic<pid_t> thread{0};
  std::atomic<Run*> run{nullptr};
};
inline constexpr int kMaxConcurrentLaunches = 64;
inline ActiveLaunch activeLaunches[kMaxConcurrentLaunches];

[[noreturn]] inline void outsideLaunch(const char* what) {
  std::fprintf(stderr, "pagedc CUDA emulation: %s used outside a kernel launch\n", what);
  std::abort();
}

inline Fiber& currentFiber(const char* what) {
  Fiber* fiber = tlFiber;
  if (!fiber) outsideLaunch(what);
  return *fiber;
}

// "kernel NAME", with the schedule when it is not the default (an error may show under one only).
inline std::string launchName(const Run& run) {
  std::string name = "kernel " + run.kernelName;
  if (run.options.schedule != Schedule::Forward) name += " (schedule " + scheduleName(run.options) + ")";
  return name;
}

inline std::string formatDim3(Dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

inline std::string hexMask(unsigned mask) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", mask);
  return text;
}

// ---- context switch (x86-64 System V) ----

#if defined(__x86_64__)

// Saves the callee-saved registers on the current stack, stores the stack pointer in *save and
// continues on `load` (a stack saved by this function or prepared by prepareStack). No system
// call, unlike swapcontext (which saves the signal mask). MXCSR and the x87 control word are not
// switched: every fiber runs with the OS thread's floating-point environment (kernels do not change
// it), which saves most of the cost (ldmxcsr/fldcw serialise the pipeline).
__attribute__((naked, noinline)) inline void switchStacks(void** /*save*/, void* /*load*/) {
  __asm__(
      "pushq %rbp\n\t"
      "pushq %rbx\n\t"
      "pushq %r12\n\t"
      "pushq %r13\n\t"
      "pushq %r14\n\t"
      "pushq %r15\n\t"
      "movq %rsp, (%rdi)\n\t"
      "movq %rsi, %rsp\n\t"
      "popq %r15\n\t"
      "popq %r14\n\t"
      "popq %r13\n\t"
      "popq %r12\n\t"
      "popq %rbx\n\t"
      "popq %rbp\n\t"
      "ret\n\t");
}

// The first code a fiber runs: calls r13(r12) on a 16-byte aligned stack; never returns.
__attribute__((naked, noinline)) inline void fiberTrampoline() {
  __asm__(
      "movq %r12, %rdi\n\t"
      "andq $-16, %rsp\n\t"
      "callq *%r13\n\t"
      "ud2\n\t");
}

// Lays out a new fiber's stack so that switchStacks "returns" into fiberTrampoline.
inline void* prepareStack(char* stackTop, void (*entry)(Fiber*), Fiber* fiber) {
  auto* slot = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(stackTop) & ~uintptr_t{15}) - 8;
  slot[0] = 0;                                             // r15
  slot[1] = 0;                                             // r14
  slot[2] = reinterpret_cast<uint64_t>(entry);             // r13
  slot[3] = reinterpret_cast<uint64_t>(fiber);             // r12
  slot[4] = 0;                                             // rbx
  slot[5] = 0;                                             // rbp
  slot[6] = reinterpret_cast<uint64_t>(&fiberTrampoline);  // return address
  slot[7] = 0;
  return slot;
}

#else
#error "pagedc CUDA emulation: the fiber context switch is written for x86-64 only"
#endif

// ---- fiber side: block until the scheduler completes a barrier ----

// Switches from the fiber that just blocked or exited straight to the next runnable one of this
// round (one switch per fiber, not two through the scheduler), or to the scheduler after the last.
inline void suspend(Fiber& fiber) {
  Run& run = *tlRun;
  if (++run.nextRunnable < run.runnable.size()) {
    Fiber* next = run.runnable[run.nextRunnable];
    run.current = next;
    tlFiber = next;
    ::threadIdx = next->threadIndex;
    switchStacks(&fiber.savedStackPointer, next->savedStackPointer);
  } else {
    switchStacks(&fiber.savedStackPointer, run.schedulerStackPointer);
  }
}

// Ends the launch with an error found by the running fiber (the scheduler throws it).
[[noreturn]] inline void failInFiber(const std::string& what) {
  Run& run = *tlRun;
  Fiber& fiber = *tlFiber;
  if (run.fiberError.empty()) run.fiberError = what;
  fiber.state = FiberState::Exited;
  switchStacks(&fiber.savedStackPointer, run.schedulerStackPointer);
  __builtin_unreachable();
}

[[noreturn]] inline void fiberMain(Fiber* fiber) {
  Run& run = *tlRun;
  // The error leaves the catch blocks before the fiber is abandoned, so the C++ runtime's record
  // of caught exceptions (per OS thread, shared by all fibers) is left balanced.
  std::string error;
  try {
    run.invoke(run.kernel, run.params);
  } catch (const std::exception& e) {
    error = std::string("the kernel threw: ") + e.what();
  } catch (...) {
    error = "the kernel threw an exception";
  }
  if (!error.empty()) failInFiber(error);
  fiber->state = FiberState::Exited;
  suspend(*fiber);
  __builtin_unreachable();
}

inline int blockBarrier(BlockBarrierKind kind, int predicate) {
  Fiber& fiber = currentFiber(blockBarrierName(kind));
  fiber.state = FiberState::AtBlockBarrier;
  fiber.blockBarrier = kind;
  fiber.predicate = predicate;
  suspend(fiber);
  return static_cast<int>(fiber.result);
}

inline uint64_t warpCollective(WarpOpKind kind, unsigned mask, uint64_t value, int operand, int width) {
  Fiber& fiber = currentFiber(warpOpName(kind));
  if (kind != WarpOpKind::ActiveMask && !(mask & (1u << fiber.lane)))
    failInFiber(std::string(warpOpName(kind)) + " with mask " + hexMask(mask) + " that does not include the calling lane " +
                std::to_string(fiber.lane));
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    failInFiber(std::string(warpOpName(kind)) + " with width " + std::to_string(width) + " (must be a power of two <= 32)");
  fiber.state = FiberState::AtWarpCollective;
  fiber.warpOp = kind;
  fiber.mask = mask;
  fiber.value = value;
  fiber.operand = operand;
  fiber.width = width;
  suspend(fiber);
  return fiber.result;
}

template <class T>
uint64_t toBits(T value) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp collectives exchange values of at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  return bits;
}
template <class T>
T fromBits(uint64_t bits) {
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

// ---- scheduler side ----

// The lane whose value lane `lane` receives from a shuffle (or `lane` itself where CUDA returns
// the caller's own value).
inline unsigned shuffleSource(const Fiber& f) {
  const unsigned lane = f.lane, width = static_cast<unsigned>(f.width);
  const unsigned segmentStart = lane & ~(width - 1), segmentEnd = segmentStart + width;
  switch (f.warpOp) {
    case WarpOpKind::ShuffleIndex: return segmentStart + (static_cast<unsigned>(f.operand) & (width - 1));
    case WarpOpKind::ShuffleUp: {
      const long source = static_cast<long>(lane) - static_cast<unsigned>(f.operand);
      return source < static_cast<long>(segmentStart) ? lane : static_cast<unsigned>(source);
    }
    case WarpOpKind::ShuffleDown: {
      const unsigned long source = static_cast<unsigned long>(lane) + static_cast<unsigned>(f.operand);
      return source >= segmentEnd ? lane : static_cast<unsigned>(source);
    }
    case WarpOpKind::ShuffleXor: {
      const unsigned source = lane ^ (static_cast<unsigned>(f.operand) & 31u);
      return source >= segmentEnd ? lane : source;
    }
    default: return lane;
  }
}

inline std::string threadName(const Run& run, const Fiber& f) {
  return "block " + formatDim3(run.blockIndex) + " thread " + formatDim3(f.threadIndex);
}

inline std::string describeWait(const Fiber& f) {
  switch (f.state) {
    case FiberState::Ready: return "is runnable";
    case FiberState::Exited: return "exited";
    case FiberState::AtBlockBarrier:
      return std::string("waits at ") + blockBarrierName(f.blockBarrier) + " (after passing " + std::to_string(f.barriersPassed) +
             " block barriers)";
    case FiberState::AtWarpCollective:
      return std::string("waits at ") + warpOpName(f.warpOp) + " with mask " + hexMask(f.mask) + " (lane " + std::to_string(f.lane) + ")";
  }
  return "?";
}

// A barrier that cannot complete: names the first few threads and what each waits at.
[[noreturn]] inline void throwStuck(const Run& run, const std::string& problem) {
  std::ostringstream message;
  message << launchName(run) << ": " << problem << " in block " << formatDim3(run.blockIndex) << " (block of "
          << formatDim3(run.block) << " threads):";
  // Group consecutive threads in the same state so the message stays short.
  size_t shown = 0, i = 0;
  const auto& fibers = run.fibers;
  while (i < fibers.size() && shown < 8) {
    size_t j = i + 1;
    const std::string what = describeWait(*fibers[i]);
    while (j < fibers.size() && fibers[j]->state == fibers[i]->state && describeWait(*fibers[j]).substr(0, 30) == what.substr(0, 30)) ++j;
    message << "\n  thread " << formatDim3(fibers[i]->threadIndex);
    if (j - i > 1) message << " .. " << formatDim3(fibers[j - 1]->threadIndex);
    message << " " << what;
    ++shown;
    i = j;
  }
  if (i < fibers.size()) message << "\n  ...";
  throw EmulationError(message.str());
}

// Completes the warp collectives whose every named lane has arrived; returns whether any did.
// Throws for a collective that can never complete (a named lane exited or does not exist, or
// lanes disagree on the operation).
inline bool completeWarpCollectives(Run& run) {
  bool progress = false;
  const unsigned threads = run.threadsPerBlock;
  const unsigned warps = (threads + 31) / 32;
  for (unsigned w = 0; w < warps; ++w) {
    Fiber* lanes[32] = {};
    unsigned laneCount = std::min(32u, threads - w * 32);
    unsigned waiting = 0, activeMaskWaiting = 0, exited = 0;
    for (unsigned l = 0; l < laneCount; ++l) {
      lanes[l] = run.fibers[w * 32 + l];
      if (lanes[l]->state == FiberState::AtWarpCollective) {
        waiting |= 1u << l;
        if (lanes[l]->warpOp == WarpOpKind::ActiveMask) activeMaskWaiting |= 1u << l;
      } else if (lanes[l]->state == FiberState::Exited) {
        exited |= 1u << l;
      }
    }
    if (!waiting) continue;
    // __activemask: everyone is suspended, so the lanes that reached it together are the active ones.
    if (activeMaskWaiting) {
      for (unsigned l = 0; l < laneCount; ++l)
        if (activeMaskWaiting & (1u << l)) {
          lanes[l]->result = activeMaskWaiting;
          lanes[l]->state = FiberState::Ready;
          run.released.push_back(lanes[l]);
        }
      waiting &= ~activeMaskWaiting;
      progress = true;
    }
    unsigned done = 0;
    for (unsigned l = 0; l < laneCount; ++l) {
      if (!(waiting & (1u << l)) || (done & (1u << l))) continue;
      const Fiber& first = *lanes[l];
      const unsigned mask = first.mask;
      const unsigned existing = laneCount == 32 ? 0xffffffffu : ((1u << laneCount) - 1u);
      if (mask & ~existing)
        throwStuck(run, std::string(warpOpName(first.warpOp)) + " with mask " + hexMask(mask) + " names lanes that do not exist (the warp has " +
                            std::to_string(laneCount) + " threads)");
      if (mask & exited)
        throwStuck(run, std::string(warpOpName(first.warpOp)) + " with mask " + hexMask(mask) + " names lanes that exited (" + hexMask(mask & exited) +
                            ")");
      if ((mask & waiting) != mask) continue;  // some named lane is elsewhere (maybe it comes later)
      bool sameMask = true;
      for (unsigned m = 0; m < 32; ++m)
        if ((mask & (1u << m)) && lanes[m]->mask != mask) sameMask = false;
      if (!sameMask) continue;  // a named lane waits in another group; that one may complete first
      for (unsigned m = 0; m < 32; ++m)
        if ((mask & (1u << m)) && (lanes[m]->warpOp != first.warpOp || lanes[m]->width != first.width))
          throwStuck(run, std::string("lanes of warp ") + std::to_string(w) + " disagree on the warp collective with mask " + hexMask(mask) + " (" +
                              warpOpName(first.warpOp) + " vs " + warpOpName(lanes[m]->warpOp) + ", or different widths)");
      // Compute every lane's result from the values all lanes brought.
      uint64_t ballot = 0, sum = 0;
      uint32_t minU = 0xffffffffu, maxU = 0;
      int32_t minS = INT32_MAX, maxS = INT32_MIN;
      for (unsigned m = 0; m < 32; ++m) {
        if (!(mask & (1u << m))) continue;
        const uint64_t v = lanes[m]->value;
        if (v) ballot |= 1u << m;
        sum += static_cast<uint32_t>(v);
        minU = std::min(minU, static_cast<uint32_t>(v));
        maxU = std::max(maxU, static_cast<uint32_t>(v));
        minS = std::min(minS, static_cast<int32_t>(static_cast<uint32_t>(v)));
        maxS = std::max(maxS, static_cast<int32_t>(static_cast<uint32_t>(v)));
      }
      for (unsigned m = 0; m < 32; ++m) {
        if (!(mask & (1u << m))) continue;
        Fiber& f = *lanes[m];
        switch (f.warpOp) {
          case WarpOpKind::SyncWarp:
          case WarpOpKind::ActiveMask: f.result = 0; break;
          case WarpOpKind::ShuffleIndex:
          case WarpOpKind::ShuffleUp:
          case WarpOpKind::ShuffleDown:
          case WarpOpKind::ShuffleXor: {
            const unsigned source = shuffleSource(f);
            // A source outside the mask is undefined in CUDA: the emulation gives all-ones bits
            // (NaN as a float) so a result that uses it shows.
            f.result = (mask & (1u << source)) ? lanes[source]->value : ~uint64_t{0};
            break;
          }
          case WarpOpKind::Ballot: f.result = ballot; break;
          case WarpOpKind::Any: f.result = ballot != 0; break;
          case WarpOpKind::All: f.result = ballot == mask; break;
          case WarpOpKind::ReduceAdd: f.result = static_cast<uint32_t>(sum); break;
          case WarpOpKind::ReduceMin: f.result = minU; break;
          case WarpOpKind::ReduceMax: f.result = maxU; break;
          case WarpOpKind::ReduceMinSigned: f.result = static_cast<uint32_t>(minS); break;
          case WarpOpKind::ReduceMaxSigned: f.result = static_cast<uint32_t>(maxS); break;
        }
        f.state = FiberState::Ready;
        run.released.push_back(&f);
      }
      done |= mask;
      progress = true;
    }
  }
  return progress;
}

// When every fiber is suspended: completes what can complete; false when the block has finished.
inline bool completeBarriers(Run& run) {
  if (completeWarpCollectives(run)) return true;
  unsigned atBarrier = 0, atWarp = 0, exited = 0;
  for (Fiber* f : run.fibers) {
    if (f->state == FiberState::AtBlockBarrier) ++atBarrier;
    else if (f->state == FiberState::AtWarpCollective) ++atWarp;
    else if (f->state == FiberState::Exited) ++exited;
  }
  if (exited == run.fibers.size()) return false;
  if (atWarp) throwStuck(run, "deadlock: warp collectives that can never complete");
  if (exited) throwStuck(run, "barrier divergence: threads wait at a block barrier that threads which exited never reach");
  const BlockBarrierKind kind = run.fibers[0]->blockBarrier;
  int count = 0;
  for (Fiber* f : run.fibers) {
    if (f->blockBarrier != kind)
      throwStuck(run, std::string("barrier divergence: threads wait at different block barriers (") + blockBarrierName(kind) + " and " +
                          blockBarrierName(f->blockBarrier) + ")");
    if (f->predicate) ++count;
  }
  const unsigned n = static_cast<unsigned>(run.fibers.size());
  const int result = kind == BlockBarrierKind::Count ? count
                     : kind == BlockBarrierKind::And ? (count == static_cast<int>(n))
                     : kind == BlockBarrierKind::Or  ? (count != 0)
                                                     : 0;
  for (Fiber* f : run.fibers) {
    f->result = static_cast<uint64_t>(result);
    ++f->barriersPassed;
    f->state = FiberState::Ready;
    run.released.push_back(f);
  }
  return true;
}

// The fibers of this OS thread, reused by every block and launch (stacks stay mapped).
struct FiberPool {
  std::vector<std::unique_ptr<Fiber>> fibers;
  size_t stackBytes = 0;
};
inline FiberPool& fiberPool() {
  static thread_local FiberPool pool;
  return pool;
}

inline void prepareFibers(Run& run) {
  FiberPool& pool = fiberPool();
  const size_t page = pageSize();
  const size_t stackBytes = (std::max<size_t>(run.options.stackBytes, 16 * 1024) + page - 1) / page * page;
  if (pool.stackBytes != stackBytes) {
    pool.fibers.clear();
    pool.stackBytes = stackBytes;
  }
  while (pool.fibers.size() < run.threadsPerBlock) {
    auto fiber = std::make_unique<Fiber>();
    fiber->stackMappingBytes = stackBytes + page;
    void* mapping = mmap(nullptr, fiber->stackMappingBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) throw EmulationError(launchName(run) + ": cannot map fiber stacks");
    fiber->stackMapping = static_cast<char*>(mapping);
    mprotect(fiber->stackMapping, page, PROT_NONE);  // overflow faults here
    pool.fibers.push_back(std::move(fiber));
  }
  run.fibers.clear();
  const Dim3 b = run.block;
  for (unsigned i = 0; i < run.threadsPerBlock; ++i) {
    Fiber* f = pool.fibers[i].get();
    f->threadIndex = Dim3(i % b.x, (i / b.x) % b.y, i / (b.x * b.y));
    f->linear = i;
    f->warp = i / 32;
    f->lane = i % 32;
    run.fibers.push_back(f);
  }
}

// Where a fiber's stack starts below the top of its mapping. Stacks are page aligned and the same
// size, so without an offset the hot top frames of all fibers fall into the same cache sets and
// evict each other at every switch; shifting each by a cache line and a page spreads them.
inline size_t stackColour(unsigned linear) {
  const size_t limit = std::min<size_t>(fiberPool().stackBytes / 4, 64 * 1024);  // stacks are at least 16 KiB
  return (static_cast<size_t>(linear) * (4096 + 64)) % limit / 64 * 64;
}

inline void runBlock(Run& run) {
  ::blockIdx = run.blockIndex;
  ::blockDim = run.block;
  ::gridDim = run.grid;
  for (Fiber* f : run.fibers) {
    f->state = FiberState::Ready;
    f->barriersPassed = 0;
    f->savedStackPointer = prepareStack(f->stackMapping + f->stackMappingBytes - stackColour(f->linear), &fiberMain, f);
  }
  run.runnable = run.fibers;
  for (;;) {
    switch (run.options.schedule) {
      case Schedule::Forward: break;
      case Schedule::Reverse: std::reverse(run.runnable.begin(), run.runnable.end()); break;
      case Schedule::Shuffled: std::shuffle(run.runnable.begin(), run.runnable.end(), run.random); break;
    }
    // The fibers pass control along the list themselves (suspend); the last returns here.
    run.nextRunnable = 0;
    Fiber* first = run.runnable[0];
    run.current = first;
    tlFiber = first;
    ::threadIdx = first->threadIndex;
    run.inFiber = true;
    switchStacks(&run.schedulerStackPointer, first->savedStackPointer);
    run.inFiber = false;
    tlFiber = nullptr;
    if (!run.fiberError.empty())
      throw EmulationError(launchName(run) + ": " + threadName(run, *run.current) + ": " + run.fiberError);
    run.released.clear();
    if (!completeBarriers(run)) return;
    std::swap(run.runnable, run.released);
  }
}

// ---- faults (SIGSEGV, SIGBUS, SIGFPE) during a launch ----

struct FaultHandlers {
  std::mutex mutex;
  int users = 0;
  struct sigaction previous[3];
};
inline FaultHandlers& faultHandlers() {
  static FaultHandlers handlers;
  return handlers;
}
inline constexpr int kFaultSignals[3] = {SIGSEGV, SIGBUS, SIGFPE};

inline void onFault(int signal, siginfo_t* info, void* context) {
  const pid_t self = gettid();
  for (ActiveLaunch& active : activeLaunches) {
    if (active.thread.load(std::memory_order_acquire) != self) continue;
    Run* run = active.run.load(std::memory_order_acquire);
    if (run && run->inFiber) {
      run->faultSignal = signal;
      run->faultAddress = info->si_addr;
      run->faultFiber = run->current;
#if defined(__x86_64__)
      run->faultWasWrite = (static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#endif
      siglongjmp(run->faultJump, 1);
    }
  }
  // Not ours: hand it to whoever handled it before, or to the default action.
  FaultHandlers& handlers = faultHandlers();
  for (int i = 0; i < 3; ++i) {
    if (kFaultSignals[i] != signal) continue;
    const struct sigaction& previous = handlers.previous[i];
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
      previous.sa_sigaction(signal, info, context);
      return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
      previous.sa_handler(signal);
      return;
    }
  }
  ::signal(signal, SIG_DFL);  // the faulting instruction runs again and the default action ends the process
}

// Installs the fault handler (on an alternate signal stack) for the duration of a launch.
class FaultScope {
public:
  explicit FaultScope(Run& run) {
    const pid_t self = gettid();
    for (ActiveLaunch& active : activeLaunches) {
      pid_t expected = 0;
      if (active.thread.compare_exchange_strong(expected, self)) {
        active.run.store(&run, std::memory_order_release);
        slot_ = &active;
        break;
      }
    }
    if (!slot_) throw EmulationError(launchName(run) + ": more than " + std::to_string(kMaxConcurrentLaunches) + " launches at once in one module");
    static thread_local std::vector<char> alternateStack(256 * 1024);
    stack_t stack{};
    stack.ss_sp = alternateStack.data();
    stack.ss_size = alternateStack.size();
    sigaltstack(&stack, &previousStack_);
    FaultHandlers& handlers = faultHandlers();
    std::lock_guard lock(handlers.mutex);
    if (handlers.users++ == 0) {
      struct sigaction action{};
      action.sa_sigaction = &onFault;
      action.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigemptyset(&action.sa_mask);
      for (int i = 0; i < 3; ++i) sigaction(kFaultSignals[i], &action, &handlers.previous[i]);
    }
  }
  ~FaultScope() {
    FaultHandlers& handlers = faultHandlers();
    {
      std::lock_guard lock(handlers.mutex);
      if (--handlers.users == 0) {
        for (int i = 0; i < 3; ++i) {
          struct sigaction current{};
          sigaction(kFaultSignals[i], nullptr, &current);
          // Another module may have installed its own handler on top (it chains to ours): leave it.
          if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == &onFault) sigaction(kFaultSignals[i], &handlers.previous[i], nullptr);
        }
      }
    }
    sigaltstack(&previousStack_, nullptr);
    slot_->run.store(nullptr, std::memory_order_release);
    slot_->thread.store(0, std::memory_order_release);
  }
  FaultScope(const FaultScope&) = delete;
  FaultScope& operator=(const FaultScope&) = delete;

private:
  stack_t previousStack_{};
  ActiveLaunch* slot_ = nullptr;
};

// What a fault address is: in which buffer's guard page, a fiber's stack guard, or neither.
inline std::string describeFault(const Run& run) {
  std::ostringstream message;
  const uintptr_t address = reinterpret_cast<uintptr_t>(run.faultAddress);
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(address));
  if (run.faultSignal == SIGFPE) return "arithmetic exception (integer division by zero?)";
  // A fiber's stack guard page.
  const size_t page = pageSize();
  for (Fiber* f : run.fibers)
    if (address >= reinterpret_cast<uintptr_t>(f->stackMapping) && address < reinterpret_cast<uintptr_t>(f->stackMapping) + page)
      return "stack overflow (the stack of a CUDA thread is " + std::to_string(run.options.stackBytes) + " bytes: LaunchOptions::stackBytes)";
  const char* access = run.faultWasWrite ? "write" : "read";
  BufferInfo b{};
  bool known = false;
  {
    auto& registry = bufferRegistry();
    std::lock_guard lock(registry.mutex);
    auto it = registry.byMappingStart.upper_bound(address);
    if (it != registry.byMappingStart.begin() && address < std::prev(it)->second.mappingEnd) {
      b = std::prev(it)->second;
      known = true;
    }
  }
  if (!known) known = readGuardRecord(address, b);
  if (known) {
    char start[32];
    std::snprintf(start, sizeof start, "0x%llx", static_cast<unsigned long long>(b.dataStart));
    if (address >= b.dataStart + b.bytes)
      message << "out-of-bounds " << access << " at " << hex << ": " << (address - b.dataStart - b.bytes) << " bytes past the end of a buffer of "
              << b.bytes << " bytes at " << start;
    else if (address < b.dataStart)
      message << "out-of-bounds " << access << " at " << hex << ": " << (b.dataStart - address) << " bytes before the start of a buffer of "
              << b.bytes << " bytes at " << start;
    else
      message << "forbidden " << access << " at " << hex << " inside a buffer of " << b.bytes << " bytes at " << start << " (read-only?)";
    return message.str();
  }
  if (address < 65536) message << "invalid " << access << " at " << hex << " (a null pointer?)";
  else
    message << "out-of-bounds " << access << " at " << hex << " (in a guard page or unmapped memory, not in a DeviceBuffer)";
  return message.str();
}

inline std::string demangle(const char* name) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string result = status == 0 && demangled ? demangled : name;
  std::free(demangled);
  return result;
}

// The kernel's name: given, else its symbol (when the module exports it), else its address.
inline std::string kernelNameOf(const LaunchOptions& options, void (*kernel)(), const char* paramsType) {
  if (options.kernelName) return options.kernelName;
  Dl_info info{};
  void* address = reinterpret_cast<void*>(kernel);
  if (dladdr(address, &info) && info.dli_sname && info.dli_saddr == address) return demangle(info.dli_sname);
  char text[64];
  std::snprintf(text, sizeof text, "at %p", address);
  return std::string(text) + (paramsType ? " taking " + demangle(paramsType) : std::string());
}

inline void checkConfiguration(const Run& run) {
  const Dim3 g = run.grid, b = run.block;
  auto fail = [&](const std::string& what) {
    throw EmulationError(launchName(run) + ": invalid launch configuration grid " + formatDim3(g) + " block " + formatDim3(b) + ": " + what);
  };
  if (!g.x || !g.y || !g.z || !b.x || !b.y || !b.z) fail("a dimension is 0");
  if (b.x > 1024 || b.y > 1024 || b.z > 64) fail("block dimensions exceed (1024, 1024, 64)");
  if (static_cast<uint64_t>(b.x) * b.y * b.z > 1024) fail("more than 1024 threads per block");
  if (g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) fail("grid dimensions exceed (2^31-1, 65535, 65535)");
}

}  // namespace detail

// ---- launch --------------------------------------------------------------------------------------

// Runs `invoke(kernel, params)` as every thread of every block of the grid. The type-erased form
// for C entry points; `invoke` calls the kernel with *params of its type.
inline void launchErased(void (*invoke)(void (*kernel)(), const void* params), void (*kernel)(), const void* params, Dim3 grid, Dim3 block,
                         const LaunchOptions& options = {}, const char* paramsTypeName = nullptr) {
  using namespace detail;
  if (tlRun) throw EmulationError("pagedc CUDA emulation: a launch from inside a kernel is not supported");
  Run run;
  run.invoke = invoke;
  run.kernel = kernel;
  run.params = params;
  run.kernelName = kernelNameOf(options, kernel, paramsTypeName);
  run.grid = grid;
  run.block = block;
  run.options = options;
  checkConfiguration(run);
  run.threadsPerBlock = block.x * block.y * block.z;
  run.random.seed(options.seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull);
  const uint64_t blocks = static_cast<uint64_t>(grid.x) * grid.y * grid.z;
  run.blockOrder.reserve(blocks);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) run.blockOrder.push_back(Dim3(x, y, z));
  if (options.schedule == Schedule::Reverse) std::reverse(run.blockOrder.begin(), run.blockOrder.end());
  if (options.schedule == Schedule::Shuffled) std::shuffle(run.blockOrder.begin(), run.blockOrder.end(), run.random);
  prepareFibers(run);

  struct CurrentRun {
    explicit CurrentRun(Run* run) { tlRun = run; }
    ~CurrentRun() {
      tlRun = nullptr;
      tlFiber = nullptr;
    }
  } current(&run);
  FaultScope faults(run);
  if (sigsetjmp(run.faultJump, 1) != 0) {
    // A fiber faulted: the handler jumped here from the alternate signal stack.
    run.inFiber = false;
    tlFiber = nullptr;
    const Fiber* f = run.faultFiber;
    throw EmulationError(launchName(run) + ": " + describeFault(run) + " by " +
                         (f ? threadName(run, *f) : "block " + formatDim3(run.blockIndex)));
  }
  for (run.nextBlock = 0; run.nextBlock < run.blockOrder.size(); ++run.nextBlock) {
    run.blockIndex = run.blockOrder[run.nextBlock];
    runBlock(run);
  }
}

template <class Params>
void invokeKernel(void (*kernel)(), const void* params) {
  reinterpret_cast<void (*)(Params)>(kernel)(*static_cast<const Params*>(params));
}

// Runs kernel(params) on grid x block threads. Throws EmulationError on any error.
template <class Params>
void launch(void (*kernel)(Params), Dim3 grid, Dim3 block, const std::type_identity_t<Params>& params, const LaunchOptions& options = {}) {
  launchErased(&invokeKernel<Params>, reinterpret_cast<void (*)()>(kernel), &params, grid, block, options, typeid(Params).name());
}

// The schedules kernel tests run every launch under: a race on shared or global memory makes
// the results differ between them (or from the reference).
inline std::vector<LaunchOptions> testSchedules() {
  return {LaunchOptions{Schedule::Forward, 0}, LaunchOptions{Schedule::Reverse, 0}, LaunchOptions{Schedule::Shuffled, 1},
          LaunchOptions{Schedule::Shuffled, 2}};
}


// Calls launchAndRead(options) (which allocates inputs, launches and returns what the kernel
// wrote) under each of testSchedules() and returns the results in that order. Compare each with
// the reference (and, for bitwise-deterministic kernels, with each other).
template <class LaunchAndRead>
auto runUnderSchedules(LaunchAndRead&& launchAndRead) -> std::vector<decltype(launchAndRead(std::declval<const LaunchOptions&>()))> {
  std::vector<decltype(launchAndRead(std::declval<const LaunchOptions&>()))> results;
  for (const LaunchOptions& options : testSchedules()) results.push_back(launchAndRead(options));
  return results;
}

}  // namespace pagedc::emu
