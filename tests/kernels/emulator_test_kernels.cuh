// Small kernels that exercise the CPU emulation of the CUDA execution model
// (templates/emulation/cuda_emulation.h), used by EmulatorTest.cpp. Like the real kernel templates
// they include only the prelude, so the same text compiles in NVRTC (EmulatorTest checks that when
// the CUDA toolkit is present) and against the emulation.
#pragma once

#include "pagedc_cuda.cuh"

namespace pagedc::emutest {

// ---- indices: every thread writes blockIdx, threadIdx, blockDim, gridDim (12 values) -------------

struct IndexParams {
  u32* out;  // [blocks * threads * 12], block-major, threads by linear index
};

__global__ void write_indices(IndexParams p) {
  const u32 block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const u32 thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const u32 threads = blockDim.x * blockDim.y * blockDim.z;
  u32* o = p.out + (static_cast<u64>(block) * threads + thread) * 12;
  o[0] = blockIdx.x, o[1] = blockIdx.y, o[2] = blockIdx.z;
  o[3] = threadIdx.x, o[4] = threadIdx.y, o[5] = threadIdx.z;
  o[6] = blockDim.x, o[7] = blockDim.y, o[8] = blockDim.z;
  o[9] = gridDim.x, o[10] = gridDim.y, o[11] = gridDim.z;
}

// ---- barriers and shared memory ------------------------------------------------------------------

struct ArrayParams {
  const float* in;
  float* out;
  i64 n;       // elements (copy kernels)
  i64 offset;  // copy kernels: index shift (a nonzero shift reads or writes out of bounds)
  i64 iterations;
};

// Each round every thread publishes its value and takes its right neighbour's: after ROUNDS rounds
// thread t holds in[(t + ROUNDS) % N]. Correct only if both barriers order the accesses.
template <int N, int ROUNDS>
__global__ void rotate_through_shared(ArrayParams p) {
  __shared__ float ring[N];
  const int t = threadIdx.x;
  float v = p.in[blockIdx.x * N + t];
  for (int round = 0; round < ROUNDS; ++round) {
    ring[t] = v;
    __syncthreads();
    v = ring[(t + 1) % N];
    __syncthreads();
  }
  p.out[blockIdx.x * N + t] = v;
}

// Tree reduction of N values per block in shared memory. SYNC = false leaves out the barrier
// between the steps: a race (a thread reads a partial sum its partner has not written yet).
template <int N, bool SYNC>
__global__ void tree_reduce(ArrayParams p) {
  __shared__ float partial[N];
  const int t = threadIdx.x;
  partial[t] = p.in[blockIdx.x * N + t];
  __syncthreads();
  for (int stride = N / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    if (SYNC) __syncthreads();
  }
  if (t == 0) p.out[blockIdx.x] = partial[0];
}

// The prelude's block_sum and block_max (warp shuffles plus shared memory).
template <int N>
__global__ void prelude_block_reductions(ArrayParams p) {
  __shared__ float scratch[N / 32];
  const float v = p.in[blockIdx.x * N + threadIdx.x];
  const float sum = block_sum<N>(v, scratch);
  const float maximum = block_max<N>(v, scratch);
  p.out[(blockIdx.x * N + threadIdx.x) * 2] = sum;
  p.out[(blockIdx.x * N + threadIdx.x) * 2 + 1] = maximum;
}

// __syncthreads_count / _and / _or: out[block * 3 + k] from thread 0.
__global__ void barrier_predicates(ArrayParams p) {
  const float v = p.in[blockIdx.x * blockDim.x + threadIdx.x];
  const int count = __syncthreads_count(v > 0.0f);
  const int all = __syncthreads_and(v > 0.0f);
  const int any = __syncthreads_or(v > 0.0f);
  if (threadIdx.x == 0) {
    p.out[blockIdx.x * 3] = static_cast<float>(count);
    p.out[blockIdx.x * 3 + 1] = static_cast<float>(all);
    p.out[blockIdx.x * 3 + 2] = static_cast<float>(any);
  }
}

// ---- warp collectives ----------------------------------------------------------------------------

constexpr int kShuffleResults = 14;
constexpr int kVoteResults = 10;

struct WarpParams {
  u32* out;          // [threads * kShuffleResults] or [threads * kVoteResults]
  float* float_out;  // [threads * 2]
  i64 threads;
};

// Each lane's value is 1000 * warp + lane; out receives, per lane, the shuffles listed below.
__global__ void shuffles(WarpParams p) {
  const u32 t = threadIdx.x, lane = t % 32, warp = t / 32;
  const u32 v = 1000u * warp + lane;
  u32* o = p.out + static_cast<u64>(t) * kShuffleResults;
  o[0] = __shfl_sync(kFullWarp, v, static_cast<int>((lane * 7 + 3) % 32));
  o[1] = __shfl_sync(kFullWarp, v, 3, 8);
  o[2] = __shfl_sync(kFullWarp, v, 37);  // source lanes wrap modulo the width
  o[3] = __shfl_up_sync(kFullWarp, v, 3);
  o[4] = __shfl_up_sync(kFullWarp, v, 2, 8);
  o[5] = __shfl_down_sync(kFullWarp, v, 5);
  o[6] = __shfl_down_sync(kFullWarp, v, 1, 16);
  o[7] = __shfl_xor_sync(kFullWarp, v, 1);
  o[8] = __shfl_xor_sync(kFullWarp, v, 6, 8);
  o[9] = static_cast<u32>(__shfl_xor_sync(kFullWarp, static_cast<int>(v) - 500, 16) + 500);
  o[10] = static_cast<u32>(__shfl_down_sync(kFullWarp, static_cast<i64>(v) << 33, 4) >> 33);
  o[11] = static_cast<u32>(__shfl_sync(kFullWarp, static_cast<u64>(v) << 40, 31) >> 40);
  o[12] = static_cast<u32>(__shfl_up_sync(kFullWarp, static_cast<double>(v) + 0.5, 1) - 0.5);
  // Half the warp shuffles among itself (a partial mask).
  o[13] = lane < 16 ? __shfl_xor_sync(0x0000ffffu, v, 2) : __shfl_down_sync(0xffff0000u, v, 1);
  p.float_out[t * 2] = warp_sum(static_cast<float>(v));
  p.float_out[t * 2 + 1] = warp_max(static_cast<float>(v));
}

// Votes with full and partial masks, __activemask in a divergent branch, __syncwarp.
__global__ void votes(WarpParams p) {
  const u32 t = threadIdx.x, lane = t % 32;
  u32* o = p.out + static_cast<u64>(t) * kVoteResults;
  o[0] = __ballot_sync(kFullWarp, lane % 3 == 0);
  o[1] = static_cast<u32>(__any_sync(kFullWarp, lane == 31));
  o[2] = static_cast<u32>(__any_sync(kFullWarp, lane == 40));
  o[3] = static_cast<u32>(__all_sync(kFullWarp, lane < 32));
  o[4] = static_cast<u32>(__all_sync(kFullWarp, lane != 5));
  __syncwarp();
  if (lane < 20) {
    const u32 low = (1u << 20) - 1u;
    o[5] = __ballot_sync(low, lane & 1);
    o[6] = static_cast<u32>(__any_sync(low, lane == 19));
    o[7] = static_cast<u32>(__all_sync(low, lane < 20));
    o[8] = __activemask();
    __syncwarp(low);
  } else {
    const u32 high = ~((1u << 20) - 1u);
    o[5] = __ballot_sync(high, lane % 2 == 0);
    o[6] = static_cast<u32>(__any_sync(high, lane == 5));
    o[7] = static_cast<u32>(__all_sync(high, lane < 31));
    o[8] = __activemask();
    __syncwarp(high);
  }
  o[9] = __activemask();
}

// ---- atomics across blocks -----------------------------------------------------------------------

struct AtomicParams {
  int* ints;                  // [0] add 1, [1] max of ids, [2] min of -ids, [3] CAS-loop add, [4] sub 2, [5] exch
  u32* uints;                 // [0] add id, [1] max, [2] min, [3] inc with wrap 9
  u64* u64s;                  // [0] add id
  i64* i64s;                  // [0] max of id << 33, [1] min
  float* floats;              // [0] add 0.5
  double* doubles;            // [0] add 0.25
};

__global__ void atomics(AtomicParams p) {
  const int id = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(&p.ints[0], 1);
  atomicMax(&p.ints[1], id);
  atomicMin(&p.ints[2], -id);
  int seen = p.ints[3];
  for (;;) {
    const int previous = atomicCAS(&p.ints[3], seen, seen + 3);
    if (previous == seen) break;
    seen = previous;
  }
  atomicSub(&p.ints[4], 2);
  atomicExch(&p.ints[5], id);
  atomicAdd(&p.uints[0], static_cast<u32>(id));
  atomicMax(&p.uints[1], static_cast<u32>(id) * 3u);
  atomicMin(&p.uints[2], static_cast<u32>(id) + 7u);
  atomicInc(&p.uints[3], 9u);
  atomicAdd(&p.u64s[0], static_cast<u64>(id));
  atomicMax(&p.i64s[0], static_cast<i64>(id) << 33);
  atomicMin(&p.i64s[1], -(static_cast<i64>(id) << 33));
  atomicAdd(&p.floats[0], 0.5f);
  atomicAdd(&p.doubles[0], 0.25);
}

// ---- errors the emulation must report ------------------------------------------------------------

// out[i] = in[i + offset] for i < n: a nonzero offset reads outside `in`.
__global__ void shifted_read(ArrayParams p) {
  const i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < p.n) p.out[i] = p.in[i + p.offset];
}

// out[i + offset] = in[i] for i < n: a nonzero offset writes outside `out`.
__global__ void shifted_write(ArrayParams p) {
  const i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < p.n) p.out[i + p.offset] = p.in[i];
}

struct DivergenceParams {
  float* out;
  i64 mode;
};

// Each mode is a synchronisation bug: 0: threads >= 16 return before a __syncthreads; 1: half the
// block waits at __syncthreads, the other half at __syncwarp; 2: a full-mask shuffle after the upper
// half of the warp returned; 3: the loop trip count (and so the number of barriers) differs.
__global__ void divergent_barriers(DivergenceParams p) {
  const int t = threadIdx.x;
  float v = static_cast<float>(t);
  if (p.mode == 0) {
    if (t >= 16) return;
    __syncthreads();
  } else if (p.mode == 1) {
    if (t < 16)
      __syncthreads();
    else
      __syncwarp();
  } else if (p.mode == 2) {
    if (t % 32 >= 16) return;
    v = __shfl_xor_sync(kFullWarp, v, 1);
  } else if (p.mode == 3) {
    for (int i = 0; i <= t % 3; ++i) __syncthreads();
  }
  p.out[t] = v;
}

// mode 0: thread 5 of block 1 calls __trap(); mode 1: every thread divides an integer by `divisor`.
struct TrapParams {
  i64* out;
  i64 mode;
  i64 divisor;
};

__global__ void trap_or_divide(TrapParams p) {
  const i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p.mode == 0 && blockIdx.x == 1 && threadIdx.x == 5) __trap();
  p.out[i] = p.mode == 1 ? (i + 1000) / p.divisor : i;
}

// Recursion `depth` deep with a 256-byte frame: overflows a small fiber stack.
__device__ inline float recurse(int depth, float* sink) {
  volatile float frame[64];
  for (int i = 0; i < 64; ++i) frame[i] = static_cast<float>(depth + i);
  if (depth == 0) return frame[0];
  return recurse(depth - 1, sink) * 0.5f + frame[depth & 63];
}

__global__ void deep_recursion(ArrayParams p) { p.out[threadIdx.x] = recurse(static_cast<int>(p.n), p.out); }

// ---- speed ---------------------------------------------------------------------------------------

// `iterations` rounds of a shared-memory exchange between two barriers (2 barriers per round) and,
// with SHUFFLES, a warp sum (5 shuffles) per round.
template <int N, bool SHUFFLES>
__global__ void barrier_loop(ArrayParams p) {
  __shared__ float ring[N];
  const int t = threadIdx.x;
  float v = p.in[blockIdx.x * N + t];
  for (i64 i = 0; i < p.iterations; ++i) {
    ring[t] = v;
    __syncthreads();
    v = ring[(t + 1) % N] * 0.5f + 1.0f;
    if (SHUFFLES) v = warp_sum(v) * (1.0f / 32.0f);
    __syncthreads();
  }
  p.out[blockIdx.x * N + t] = v;
}

}  // namespace pagedc::emutest
