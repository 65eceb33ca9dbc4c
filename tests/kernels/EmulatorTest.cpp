// The CPU emulation of the CUDA execution model (templates/emulation/cuda_emulation.h): indices,
// barriers, shared memory, warp shuffles and votes, atomics and 16-bit conversions compute what
// CUDA specifies under every schedule; and the bugs it exists to catch are caught: a race (a
// missing __syncthreads) changes the result under some schedule, out-of-bounds reads and writes
// and divergent barriers make the launch throw an error naming the block and thread.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "emulation/cuda_emulation.h"
#include "emulator_test_kernels.cuh"
#include "ir/HalfFloat.h"

using namespace pagedc;
using namespace pagedc::emutest;
namespace emu = pagedc::emu;

namespace {

// A guard-paged device array of T filled from (and read back into) a vector.
template <class T>
class Array {
public:
  explicit Array(const std::vector<T>& values, emu::GuardSide side = emu::GuardSide::AfterEnd)
      : buffer_(values.size() * sizeof(T), side), size_(values.size()) {
    if (size_) std::memcpy(buffer_.data(), values.data(), size_ * sizeof(T));
  }
  explicit Array(size_t size, T fill = T{}, emu::GuardSide side = emu::GuardSide::AfterEnd) : Array(std::vector<T>(size, fill), side) {}
  T* get() { return buffer_.as<T>(); }
  std::vector<T> read() const {
    std::vector<T> out(size_);
    if (size_) std::memcpy(out.data(), buffer_.data(), size_ * sizeof(T));
    return out;
  }

private:
  emu::DeviceBuffer buffer_;
  size_t size_;
};

std::vector<float> smallIntegers(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-50, 50);
  std::vector<float> values(n);
  for (float& v : values) v = static_cast<float>(dist(rng));
  return values;
}

// The message of the EmulationError `launch` throws; fails the test if it throws nothing.
template <class Launch>
std::string errorOf(Launch&& launch) {
  try {
    launch();
  } catch (const emu::EmulationError& e) {
    return e.what();
  }
  ADD_FAILURE() << "the launch did not throw EmulationError";
  return "";
}

// ---- indices -------------------------------------------------------------------------------------

TEST(EmulatorIndices, EveryThreadSeesItsBlockAndThreadIndices) {
  const emu::Dim3 grid(3, 2, 2), block(4, 3, 2);
  const unsigned threads = block.x * block.y * block.z, blocks = grid.x * grid.y * grid.z;
  for (const auto& options : emu::testSchedules()) {
    SCOPED_TRACE(emu::scheduleName(options));
    Array<u32> out(blocks * threads * 12, 0xdeadbeefu);
    emu::launch(write_indices, grid, block, IndexParams{out.get()}, options);
    const std::vector<u32> got = out.read();
    for (unsigned bz = 0; bz < grid.z; ++bz)
      for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx)
          for (unsigned tz = 0; tz < block.z; ++tz)
            for (unsigned ty = 0; ty < block.y; ++ty)
              for (unsigned tx = 0; tx < block.x; ++tx) {
                const unsigned b = bx + grid.x * (by + grid.y * bz), t = tx + block.x * (ty + block.y * tz);
                const u32* o = &got[(b * threads + t) * 12];
                const std::vector<u32> want = {bx, by, bz, tx, ty, tz, block.x, block.y, block.z, grid.x, grid.y, grid.z};
                ASSERT_EQ(std::vector<u32>(o, o + 12), want) << "block " << b << " thread " << t;
              }
  }
}

// ---- barriers and shared memory ------------------------------------------------------------------

TEST(EmulatorBarriers, SyncthreadsOrdersSharedMemoryUnderEverySchedule) {
  constexpr int N = 128, ROUNDS = 5, BLOCKS = 3;
  const std::vector<float> in = smallIntegers(N * BLOCKS, 1);
  std::vector<float> want(in.size());
  for (int b = 0; b < BLOCKS; ++b)
    for (int t = 0; t < N; ++t) want[b * N + t] = in[b * N + (t + ROUNDS) % N];
  const auto results = emu::runUnderSchedules([&](const emu::LaunchOptions& options) {
    Array<float> input(in), out(in.size());
    emu::launch(rotate_through_shared<N, ROUNDS>, emu::Dim3(BLOCKS), emu::Dim3(N), ArrayParams{input.get(), out.get(), 0, 0, 0}, options);
    return out.read();
  });
  for (size_t s = 0; s < results.size(); ++s) EXPECT_EQ(results[s], want) << emu::scheduleName(emu::testSchedules()[s]);
}

// The tree reduction of the kernel, in the same order (exact for small integers anyway).
std::vector<float> treeReduceReference(const std::vector<float>& in, int n) {
  std::vector<float> out;
  for (size_t b = 0; b < in.size() / n; ++b) {
    std::vector<float> partial(in.begin() + b * n, in.begin() + (b + 1) * n);
    for (int stride = n / 2; stride > 0; stride /= 2)
      for (int t = 0; t < stride; ++t) partial[t] += partial[t + stride];
    out.push_back(partial[0]);
  }
  return out;
}

TEST(EmulatorBarriers, SharedMemoryReductionIsCorrectUnderEverySchedule) {
  constexpr int N = 256, BLOCKS = 4;
  const std::vector<float> in = smallIntegers(N * BLOCKS, 2);
  const std::vector<float> want = treeReduceReference(in, N);
  const auto results = emu::runUnderSchedules([&](const emu::LaunchOptions& options) {
    Array<float> input(in), out(BLOCKS);
    emu::launch(tree_reduce<N, true>, emu::Dim3(BLOCKS), emu::Dim3(N), ArrayParams{input.get(), out.get(), 0, 0, 0}, options);
    return out.read();
  });
  for (size_t s = 0; s < results.size(); ++s) EXPECT_EQ(results[s], want) << emu::scheduleName(emu::testSchedules()[s]);
}

TEST(EmulatorBarriers, PreludeBlockSumAndMax) {
  constexpr int N = 256, BLOCKS = 3;
  const std::vector<float> in = smallIntegers(N * BLOCKS, 3);
  const auto results = emu::runUnderSchedules([&](const emu::LaunchOptions& options) {
    Array<float> input(in), out(N * BLOCKS * 2);
    emu::launch(prelude_block_reductions<N>, emu::Dim3(BLOCKS), emu::Dim3(N), ArrayParams{input.get(), out.get(), 0, 0, 0}, options);
    return out.read();
  });
  for (size_t s = 0; s < results.size(); ++s) {
    SCOPED_TRACE(emu::scheduleName(emu::testSchedules()[s]));
    for (int b = 0; b < BLOCKS; ++b) {
      float sum = 0, maximum = -INFINITY;
      for (int t = 0; t < N; ++t) sum += in[b * N + t], maximum = std::max(maximum, in[b * N + t]);
      for (int t = 0; t < N; ++t) {
        ASSERT_EQ(results[s][(b * N + t) * 2], sum) << "block " << b << " thread " << t;
        ASSERT_EQ(results[s][(b * N + t) * 2 + 1], maximum) << "block " << b << " thread " << t;
      }
    }
  }
}

TEST(EmulatorBarriers, StackSizesAreRoundedUpToTheMinimum) {
  constexpr int N = 64;
  const std::vector<float> in = smallIntegers(N, 14);
  for (size_t stackBytes : {size_t{1}, size_t{20000}, size_t{1} << 20}) {
    Array<float> input(in), out(N);
    emu::LaunchOptions options;
    options.stackBytes = stackBytes;
    emu::launch(rotate_through_shared<N, 2>, emu::Dim3(1), emu::Dim3(N), ArrayParams{input.get(), out.get(), 0, 0, 0}, options);
    const std::vector<float> got = out.read();
    for (int t = 0; t < N; ++t) ASSERT_EQ(got[t], in[(t + 2) % N]) << "stack " << stackBytes;
  }
}

TEST(EmulatorBarriers, SyncthreadsCountAndOr) {
  constexpr int N = 96;
  std::vector<float> in(N * 3, 1.0f);
  for (int t = 0; t < N; t += 4) in[t] = -1.0f;  // block 0: 72 of 96 positive
  for (int t = 0; t < N; ++t) in[N + t] = -1.0f;  // block 1: none
  // block 2: all positive
  Array<float> input(in), out(9);
  emu::launch(barrier_predicates, emu::Dim3(3), emu::Dim3(N), ArrayParams{input.get(), out.get(), 0, 0, 0}, emu::LaunchOptions{emu::Schedule::Shuffled, 7});
  EXPECT_EQ(out.read(), (std::vector<float>{72, 0, 1, 0, 0, 0, 96, 1, 1}));
}

// ---- races ---------------------------------------------------------------------------------------

TEST(EmulatorRaces, MissingSyncthreadsChangesTheResultUnderSomeSchedule) {
  constexpr int N = 256, BLOCKS = 4;
  const std::vector<float> in = smallIntegers(N * BLOCKS, 4);
  const std::vector<float> want = treeReduceReference(in, N);
  const auto schedules = emu::testSchedules();
  const auto results = emu::runUnderSchedules([&](const emu::LaunchOptions& options) {
    Array<float> input(in), out(BLOCKS);
    emu::launch(tree_reduce<N, false>, emu::Dim3(BLOCKS), emu::Dim3(N), ArrayParams{input.get(), out.get(), 0, 0, 0}, options);
    return out.read();
  });
  int wrong = 0;
  for (size_t s = 0; s < results.size(); ++s) {
    if (results[s] != want) ++wrong;
    std::printf("racy reduction under %s: %s\n", emu::scheduleName(schedules[s]).c_str(), results[s] == want ? "correct" : "WRONG (race caught)");
  }
  EXPECT_GE(wrong, 1) << "no schedule exposed the missing __syncthreads";
  // Forward runs thread 0 through all its steps before its partners run theirs.
  EXPECT_NE(results[0], want);
}

// ---- warp collectives ----------------------------------------------------------------------------

// What CUDA specifies for each shuffle of the `shuffles` kernel, for lane `lane` of warp `warp`.
std::vector<u32> expectedShuffles(u32 warp, u32 lane) {
  auto value = [&](u32 l) { return 1000u * warp + l; };
  auto idx = [&](int src, u32 width) { return value((lane & ~(width - 1)) + (static_cast<u32>(src) & (width - 1))); };
  auto up = [&](u32 delta, u32 width) {
    const u32 start = lane & ~(width - 1);
    return lane >= start + delta ? value(lane - delta) : value(lane);
  };
  auto down = [&](u32 delta, u32 width) {
    const u32 end = (lane & ~(width - 1)) + width;
    return lane + delta < end ? value(lane + delta) : value(lane);
  };
  auto bfly = [&](u32 mask, u32 width) {
    const u32 end = (lane & ~(width - 1)) + width, source = lane ^ mask;
    return source < end ? value(source) : value(lane);
  };
  return {idx(static_cast<int>((lane * 7 + 3) % 32), 32),
          idx(3, 8),
          idx(37, 32),
          up(3, 32),
          up(2, 8),
          down(5, 32),
          down(1, 16),
          bfly(1, 32),
          bfly(6, 8),
          bfly(16, 32),
          down(4, 32),
          idx(31, 32),
          up(1, 32),
          lane < 16 ? bfly(2, 32) : down(1, 32)};
}

TEST(EmulatorWarp, ShufflesFollowCudaSemanticsUnderEverySchedule) {
  constexpr int THREADS = 64;
  for (const auto& options : emu::testSchedules()) {
    SCOPED_TRACE(emu::scheduleName(options));
    Array<u32> out(THREADS * kShuffleResults);
    Array<float> floats(THREADS * 2);
    emu::launch(shuffles, emu::Dim3(1), emu::Dim3(THREADS), WarpParams{out.get(), floats.get(), THREADS}, options);
    const std::vector<u32> got = out.read();
    const std::vector<float> gotFloats = floats.read();
    for (u32 t = 0; t < THREADS; ++t) {
      const std::vector<u32> want = expectedShuffles(t / 32, t % 32);
      EXPECT_EQ(std::vector<u32>(got.begin() + t * kShuffleResults, got.begin() + (t + 1) * kShuffleResults), want) << "thread " << t;
      float sum = 0;
      for (u32 l = 0; l < 32; ++l) sum += static_cast<float>(1000u * (t / 32) + l);
      EXPECT_EQ(gotFloats[t * 2], sum) << "thread " << t;
      EXPECT_EQ(gotFloats[t * 2 + 1], static_cast<float>(1000u * (t / 32) + 31)) << "thread " << t;
    }
  }
}

TEST(EmulatorWarp, VotesWithFullAndPartialMasks) {
  constexpr int THREADS = 64;
  u32 everyThird = 0, oddLow = 0, evenHigh = 0;
  for (u32 l = 0; l < 32; ++l) {
    if (l % 3 == 0) everyThird |= 1u << l;
    if (l < 20 && (l & 1)) oddLow |= 1u << l;
    if (l >= 20 && l % 2 == 0) evenHigh |= 1u << l;
  }
  for (const auto& options : emu::testSchedules()) {
    SCOPED_TRACE(emu::scheduleName(options));
    Array<u32> out(THREADS * kVoteResults);
    Array<float> unused(1);
    emu::launch(votes, emu::Dim3(1), emu::Dim3(THREADS), WarpParams{out.get(), unused.get(), THREADS}, options);
    const std::vector<u32> got = out.read();
    for (u32 t = 0; t < THREADS; ++t) {
      const u32 lane = t % 32;
      const bool low = lane < 20;
      const std::vector<u32> want = {everyThird,
                                     1,
                                     0,
                                     1,
                                     0,
                                     low ? oddLow : evenHigh,
                                     low ? 1u : 0u,
                                     low ? 1u : 0u,
                                     0,  // __activemask in a branch: checked below
                                     0xffffffffu};
      std::vector<u32> lane_results(got.begin() + t * kVoteResults, got.begin() + (t + 1) * kVoteResults);
      // In a divergent branch __activemask names at least the lanes of the branch (the emulation
      // gives every lane suspended at an __activemask at that moment, as a GPU that reconverged
      // the branches early might).
      const u32 branch = low ? 0x000fffffu : 0xfff00000u;
      EXPECT_EQ(lane_results[8] & branch, branch) << "thread " << t;
      lane_results[8] = 0;
      EXPECT_EQ(lane_results, want) << "thread " << t;
    }
  }
}

// ---- atomics -------------------------------------------------------------------------------------

TEST(EmulatorAtomics, AtomicsAcrossBlocks) {
  constexpr int BLOCKS = 8, THREADS = 64, TOTAL = BLOCKS * THREADS;
  for (const auto& options : emu::testSchedules()) {
    SCOPED_TRACE(emu::scheduleName(options));
    Array<int> ints(std::vector<int>{0, -1, 1, 0, 100, -1});
    Array<u32> uints(std::vector<u32>{0, 0, 0xffffffffu, 0});
    Array<u64> u64s(std::vector<u64>{0});
    Array<i64> i64s(std::vector<i64>{-1, 0});
    Array<float> floats(std::vector<float>{0});
    Array<double> doubles(std::vector<double>{0});
    emu::launch(atomics, emu::Dim3(BLOCKS), emu::Dim3(THREADS),
                AtomicParams{ints.get(), uints.get(), u64s.get(), i64s.get(), floats.get(), doubles.get()}, options);
    const std::vector<int> i = ints.read();
    EXPECT_EQ(i[0], TOTAL);
    EXPECT_EQ(i[1], TOTAL - 1);
    EXPECT_EQ(i[2], -(TOTAL - 1));
    EXPECT_EQ(i[3], 3 * TOTAL);
    EXPECT_EQ(i[4], 100 - 2 * TOTAL);
    EXPECT_TRUE(i[5] >= 0 && i[5] < TOTAL) << i[5];
    const std::vector<u32> u = uints.read();
    EXPECT_EQ(u[0], static_cast<u32>(TOTAL * (TOTAL - 1) / 2));
    EXPECT_EQ(u[1], static_cast<u32>(3 * (TOTAL - 1)));
    EXPECT_EQ(u[2], 7u);
    EXPECT_EQ(u[3], static_cast<u32>(TOTAL % 10));  // atomicInc wraps to 0 after 9
    EXPECT_EQ(u64s.read()[0], static_cast<u64>(TOTAL) * (TOTAL - 1) / 2);
    EXPECT_EQ(i64s.read()[0], static_cast<i64>(TOTAL - 1) << 33);
    EXPECT_EQ(i64s.read()[1], -(static_cast<i64>(TOTAL - 1) << 33));
    EXPECT_EQ(floats.read()[0], 0.5f * TOTAL);
    EXPECT_EQ(doubles.read()[0], 0.25 * TOTAL);
  }
}

// ---- errors: out-of-bounds accesses, divergent barriers, bad configurations ----------------------

TEST(EmulatorErrors, OutOfBoundsReadIsCaught) {
  constexpr int N = 100;
  Array<float> input(smallIntegers(N, 5)), out(N);
  const std::string message = errorOf([&] {
    emu::launch(shifted_read, emu::Dim3(2), emu::Dim3(64), ArrayParams{input.get(), out.get(), N, 1, 0}, emu::LaunchOptions{.kernelName = "shifted_read"});
  });
  // Thread 35 of block 1 (element 99) reads element 100, the first byte past the end.
  EXPECT_NE(message.find("kernel shifted_read"), std::string::npos) << message;
  EXPECT_NE(message.find("out-of-bounds read"), std::string::npos) << message;
  EXPECT_NE(message.find("0 bytes past the end of a buffer of 400 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("block (1,0,0) thread (35,0,0)"), std::string::npos) << message;
}

TEST(EmulatorErrors, OutOfBoundsWriteIsCaught) {
  constexpr int N = 100;
  Array<float> input(smallIntegers(N, 6)), out(N);
  const std::string message = errorOf([&] { emu::launch(shifted_write, emu::Dim3(2), emu::Dim3(64), ArrayParams{input.get(), out.get(), N, 1, 0}); });
  EXPECT_NE(message.find("out-of-bounds write"), std::string::npos) << message;
  EXPECT_NE(message.find("0 bytes past the end of a buffer of 400 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("block (1,0,0) thread (35,0,0)"), std::string::npos) << message;
}

TEST(EmulatorErrors, WriteBeforeTheStartIsCaughtWithAGuardBeforeTheBuffer) {
  constexpr int N = 100;
  Array<float> input(smallIntegers(N, 7)), out(N, 0.0f, emu::GuardSide::BeforeStart);
  const std::string message = errorOf([&] {
    emu::launch(shifted_write, emu::Dim3(2), emu::Dim3(64), ArrayParams{input.get(), out.get(), N, -1, 0}, emu::LaunchOptions{emu::Schedule::Reverse, 0});
  });
  // Reverse runs block 1 first (all in bounds), then thread 0 of block 0 writes element -1.
  EXPECT_NE(message.find("out-of-bounds write"), std::string::npos) << message;
  EXPECT_NE(message.find("4 bytes before the start of a buffer of 400 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("block (0,0,0) thread (0,0,0)"), std::string::npos) << message;
}

TEST(EmulatorErrors, WriteToAReadOnlyBufferIsCaught) {
  emu::DeviceBuffer input(64 * sizeof(float)), out(64 * sizeof(float));
  input.setReadOnly(true);
  const std::string message = errorOf([&] {
    emu::launch(shifted_write, emu::Dim3(1), emu::Dim3(64), ArrayParams{out.as<float>(), input.as<float>(), 64, 0, 0});
  });
  EXPECT_NE(message.find("write"), std::string::npos) << message;
  EXPECT_NE(message.find("inside a buffer of 256 bytes"), std::string::npos) << message;
}

TEST(EmulatorErrors, TheProcessStaysUsableAfterAFault) {
  constexpr int N = 64;
  for (int attempt = 0; attempt < 3; ++attempt) {
    Array<float> input(smallIntegers(N, 8)), out(N);
    EXPECT_THROW(emu::launch(shifted_read, emu::Dim3(1), emu::Dim3(N), ArrayParams{input.get(), out.get(), N, 3, 0}), emu::EmulationError);
    const std::vector<float> in = smallIntegers(N, 9);
    Array<float> good(in), rotated(N);
    emu::launch(rotate_through_shared<N, 1>, emu::Dim3(1), emu::Dim3(N), ArrayParams{good.get(), rotated.get(), 0, 0, 0});
    const std::vector<float> got = rotated.read();
    for (int t = 0; t < N; ++t) ASSERT_EQ(got[t], in[(t + 1) % N]);
  }
}

TEST(EmulatorErrors, DivergentBarriersAreReportedNotHung) {
  const char* const expected[] = {"barrier divergence", "deadlock", "names lanes that exited", "barrier divergence"};
  for (int mode = 0; mode < 4; ++mode) {
    SCOPED_TRACE("mode " + std::to_string(mode));
    Array<float> out(64);
    const std::string message = errorOf([&] {
      emu::launch(divergent_barriers, emu::Dim3(2), emu::Dim3(64), DivergenceParams{out.get(), mode}, emu::LaunchOptions{.kernelName = "divergent_barriers"});
    });
    EXPECT_NE(message.find(expected[mode]), std::string::npos) << message;
    EXPECT_NE(message.find("kernel divergent_barriers"), std::string::npos) << message;
    EXPECT_NE(message.find("block (0,0,0)"), std::string::npos) << message;
  }
}

TEST(EmulatorErrors, TrapAndIntegerDivisionByZeroAreReported) {
  Array<i64> out(128);
  const std::string trap = errorOf([&] { emu::launch(trap_or_divide, emu::Dim3(2), emu::Dim3(64), TrapParams{out.get(), 0, 1}); });
  EXPECT_NE(trap.find("block (1,0,0) thread (5,0,0): the kernel called __trap()"), std::string::npos) << trap;
  const std::string divide = errorOf([&] { emu::launch(trap_or_divide, emu::Dim3(2), emu::Dim3(64), TrapParams{out.get(), 1, 0}); });
  EXPECT_NE(divide.find("integer division by zero"), std::string::npos) << divide;
  EXPECT_NE(divide.find("block (0,0,0) thread (0,0,0)"), std::string::npos) << divide;
  emu::launch(trap_or_divide, emu::Dim3(2), emu::Dim3(64), TrapParams{out.get(), 1, 7});
  EXPECT_EQ(out.read()[127], (127 + 1000) / 7);
}

TEST(EmulatorErrors, StackOverflowIsReported) {
  Array<float> out(32);
  emu::LaunchOptions options;
  options.stackBytes = 16 * 1024;
  emu::launch(deep_recursion, emu::Dim3(1), emu::Dim3(32), ArrayParams{nullptr, out.get(), 10, 0, 0}, options);  // fits
  const std::string message =
      errorOf([&] { emu::launch(deep_recursion, emu::Dim3(1), emu::Dim3(32), ArrayParams{nullptr, out.get(), 100000, 0, 0}, options); });
  EXPECT_NE(message.find("stack overflow"), std::string::npos) << message;
  EXPECT_NE(message.find("block (0,0,0) thread (0,0,0)"), std::string::npos) << message;
}

TEST(EmulatorErrors, InvalidLaunchConfigurationsAreRejected) {
  Array<u32> out(4096 * 12);
  EXPECT_THROW(emu::launch(write_indices, emu::Dim3(1), emu::Dim3(1025), IndexParams{out.get()}), emu::EmulationError);
  EXPECT_THROW(emu::launch(write_indices, emu::Dim3(1), emu::Dim3(32, 32, 2), IndexParams{out.get()}), emu::EmulationError);
  EXPECT_THROW(emu::launch(write_indices, emu::Dim3(0), emu::Dim3(32), IndexParams{out.get()}), emu::EmulationError);
  EXPECT_THROW(emu::launch(write_indices, emu::Dim3(1, 70000), emu::Dim3(32), IndexParams{out.get()}), emu::EmulationError);
  emu::launch(write_indices, emu::Dim3(1), emu::Dim3(1024), IndexParams{out.get()});  // the largest block is fine
}

// ---- launches from several OS threads, the type-erased entry ------------------------------------

TEST(EmulatorThreads, LaunchesOnTwoThreadsAtOnceKeepTheirSharedMemoryApart) {
  // Each OS thread has its own fibers and its own __shared__ arrays; a fault on one thread does not
  // disturb the other.
  constexpr int N = 64, ROUNDS = 3;
  auto work = [](int seed, int* wrong, int* caught) {
    for (int rep = 0; rep < 30; ++rep) {
      const std::vector<float> in = smallIntegers(N * 2, static_cast<uint32_t>(seed * 100 + rep));
      Array<float> input(in), out(N * 2);
      emu::launch(rotate_through_shared<N, ROUNDS>, emu::Dim3(2), emu::Dim3(N), ArrayParams{input.get(), out.get(), 0, 0, 0},
                  emu::LaunchOptions{emu::Schedule::Shuffled, static_cast<uint64_t>(rep)});
      const std::vector<float> got = out.read();
      for (int b = 0; b < 2; ++b)
        for (int t = 0; t < N; ++t)
          if (got[b * N + t] != in[b * N + (t + ROUNDS) % N]) ++*wrong;
      if (seed == 2 && rep % 10 == 0) {
        try {
          emu::launch(shifted_read, emu::Dim3(2), emu::Dim3(N), ArrayParams{input.get(), out.get(), 2 * N, 1, 0});
        } catch (const emu::EmulationError&) {
          ++*caught;
        }
      }
    }
  };
  int wrong1 = 0, wrong2 = 0, caught1 = 0, caught2 = 0;
  std::thread first(work, 1, &wrong1, &caught1), second(work, 2, &wrong2, &caught2);
  first.join();
  second.join();
  EXPECT_EQ(wrong1, 0);
  EXPECT_EQ(wrong2, 0);
  EXPECT_EQ(caught2, 3);
}

template <class Params>
void invokeTyped(void (*kernel)(), const void* params) {
  reinterpret_cast<void (*)(Params)>(kernel)(*static_cast<const Params*>(params));
}

TEST(EmulatorThreads, TypeErasedLaunch) {
  const emu::Dim3 grid(2, 1, 1), block(32, 2, 1);
  Array<u32> out(2 * 64 * 12);
  const IndexParams params{out.get()};
  emu::launchErased(&invokeTyped<IndexParams>, reinterpret_cast<void (*)()>(&write_indices), &params, grid, block,
                    emu::LaunchOptions{emu::Schedule::Reverse, 0});
  const std::vector<u32> got = out.read();
  EXPECT_EQ(std::vector<u32>(got.begin() + (64 + 33) * 12, got.begin() + (64 + 34) * 12), (std::vector<u32>{1, 0, 0, 1, 1, 0, 32, 2, 1, 2, 1, 1}));
}

// ---- 16-bit floats -------------------------------------------------------------------------------

TEST(EmulatorConversions, HalfRoundTripsEveryBitPattern) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    const float f = emu::halfBitsToFloat(h);
    _Float16 reference;
    std::memcpy(&reference, &h, 2);
    const float want = static_cast<float>(reference);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << bits;
      const uint16_t back = emu::floatToHalfBits(f);
      ASSERT_EQ(back & 0x8000u, h & 0x8000u) << std::hex << bits;
      ASSERT_TRUE((back & 0x7c00u) == 0x7c00u && (back & 0x3ffu)) << std::hex << bits;  // still NaN
      continue;
    }
    ASSERT_EQ(std::bit_cast<uint32_t>(f), std::bit_cast<uint32_t>(want)) << std::hex << bits;
    ASSERT_EQ(emu::floatToHalfBits(f), h) << std::hex << bits;
  }
}

uint16_t halfOf(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}

TEST(EmulatorConversions, FloatToHalfMatchesTheCompilersFloat16) {
  // Every float with a stride that visits every exponent and many mantissas, plus random ones.
  for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 9973) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(bits));
    if (std::isnan(f)) continue;
    ASSERT_EQ(emu::floatToHalfBits(f), halfOf(f)) << std::hex << bits;
  }
  std::mt19937 rng(11);
  for (int i = 0; i < 2000000; ++i) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isnan(f)) continue;
    ASSERT_EQ(emu::floatToHalfBits(f), halfOf(f)) << std::hex << std::bit_cast<uint32_t>(f);
  }
}

TEST(EmulatorConversions, HalfTiesRoundToEven) {
  // The midpoint between every pair of adjacent finite halves (exact in f32) rounds to the even one.
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const float lo = emu::halfBitsToFloat(static_cast<uint16_t>(h));
    const float hi = h + 1 == 0x7c00 ? 65536.0f : emu::halfBitsToFloat(static_cast<uint16_t>(h + 1));
    const float mid = (lo + hi) / 2;  // exact: f32 has 13 more mantissa bits
    ASSERT_TRUE(mid > lo && mid < hi);
    const uint16_t want = static_cast<uint16_t>((h & 1) ? h + 1 : h);
    ASSERT_EQ(emu::floatToHalfBits(mid), want) << std::hex << h;
    ASSERT_EQ(emu::floatToHalfBits(-mid), want | 0x8000u) << std::hex << h;
    ASSERT_EQ(emu::floatToHalfBits(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(emu::floatToHalfBits(std::nextafter(mid, INFINITY)), h + 1) << std::hex << h;
  }
  EXPECT_EQ(emu::floatToHalfBits(65519.99f), 0x7bffu);
  EXPECT_EQ(emu::floatToHalfBits(65520.0f), 0x7c00u);
  EXPECT_EQ(emu::floatToHalfBits(INFINITY), 0x7c00u);
  EXPECT_EQ(emu::floatToHalfBits(-INFINITY), 0xfc00u);
  EXPECT_EQ(emu::floatToHalfBits(0x1p-25f), 0u);                          // half the smallest subnormal: ties to 0
  EXPECT_EQ(emu::floatToHalfBits(std::nextafter(0x1p-25f, 1.0f)), 1u);  // just above: the smallest subnormal
  EXPECT_EQ(emu::floatToHalfBits(-0.0f), 0x8000u);
}

// bfloat16 reference: the nearer of the two neighbouring bfloat16 values, the even one on a tie.
uint16_t bfloat16Reference(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint32_t lower = bits & 0xffff0000u, upper = lower + 0x10000u;
  const double below = std::bit_cast<float>(lower), distanceBelow = std::fabs(static_cast<double>(f) - below);
  // The next value up may be infinity (the double of the f32 midpoint logic still decides correctly).
  const double above = (upper & 0x7fffffffu) == 0x7f800000u ? std::copysign(std::ldexp(1.0, 128), f) : std::bit_cast<float>(upper);
  const double distanceAbove = std::fabs(above - static_cast<double>(f));
  if (distanceBelow < distanceAbove) return static_cast<uint16_t>(lower >> 16);
  if (distanceAbove < distanceBelow) return static_cast<uint16_t>(upper >> 16);
  return static_cast<uint16_t>(((lower >> 16) & 1u) ? upper >> 16 : lower >> 16);
}

TEST(EmulatorConversions, Bfloat16RoundsToNearestEven) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const float f = emu::bfloat16BitsToFloat(static_cast<uint16_t>(bits));
    ASSERT_EQ(std::bit_cast<uint32_t>(f), bits << 16);
    if (std::isnan(f))
      ASSERT_TRUE(std::isnan(emu::bfloat16BitsToFloat(emu::floatToBfloat16Bits(f)))) << std::hex << bits;
    else
      ASSERT_EQ(emu::floatToBfloat16Bits(f), bits) << std::hex << bits;
  }
  for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 7919) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(bits));
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(emu::bfloat16BitsToFloat(emu::floatToBfloat16Bits(f)))) << std::hex << bits;
      continue;
    }
    ASSERT_EQ(emu::floatToBfloat16Bits(f), bfloat16Reference(f)) << std::hex << bits;
  }
  EXPECT_EQ(emu::floatToBfloat16Bits(std::bit_cast<float>(0x3f808000u)), 0x3f80u);  // tie, even below
  EXPECT_EQ(emu::floatToBfloat16Bits(std::bit_cast<float>(0x3f818000u)), 0x3f82u);  // tie, even above
  EXPECT_EQ(emu::floatToBfloat16Bits(std::bit_cast<float>(0x7f7fffffu)), 0x7f80u);  // rounds to infinity
}

TEST(EmulatorConversions, AgreeWithTheCompilersHalfFloatHeader) {
  std::mt19937 rng(12);
  for (int i = 0; i < 1000000; ++i) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isnan(f)) continue;
    ASSERT_EQ(emu::floatToHalfBits(f), floatToF16(f));
    ASSERT_EQ(emu::floatToBfloat16Bits(f), floatToBf16(f));
  }
}

// ---- speed ---------------------------------------------------------------------------------------

double threadCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

// Runs barrier_loop and checks it against the same arithmetic on the host; prints the time per
// barrier (no timing assertion: the machine may be loaded).
template <int N, bool SHUFFLES>
void measureBarrierLoop(int iterations) {
  const std::vector<float> in = smallIntegers(N, 13);
  Array<float> input(in), out(N);
  const auto start = std::chrono::steady_clock::now();
  const double cpuStart = threadCpuSeconds();
  emu::launch(barrier_loop<N, SHUFFLES>, emu::Dim3(1), emu::Dim3(N), ArrayParams{input.get(), out.get(), 0, 0, iterations});
  const double cpu = threadCpuSeconds() - cpuStart;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<float> v = in, next(N);
  for (int i = 0; i < iterations; ++i) {
    for (int t = 0; t < N; ++t) next[t] = v[(t + 1) % N] * 0.5f + 1.0f;
    if (SHUFFLES)
      for (int w = 0; w < N / 32; ++w) {
        // The butterfly order of warp_sum (every lane ends with the same value).
        float lanes[32];
        for (int l = 0; l < 32; ++l) lanes[l] = next[w * 32 + l];
        for (int offset = 16; offset > 0; offset /= 2) {
          float sums[32];
          for (int l = 0; l < 32; ++l) sums[l] = lanes[l] + lanes[l ^ offset];
          std::copy(sums, sums + 32, lanes);
        }
        for (int l = 0; l < 32; ++l) next[w * 32 + l] = lanes[l] * (1.0f / 32.0f);
      }
    v = next;
  }
  EXPECT_EQ(out.read(), v);
  std::printf("%d threads, %d iterations (%s): %.3f s wall, %.3f s CPU, %.1f ns CPU per thread per barrier or collective\n", N,
              iterations, SHUFFLES ? "2 __syncthreads + 5 shuffles each" : "2 __syncthreads each", seconds, cpu,
              cpu * 1e9 / (static_cast<double>(N) * (SHUFFLES ? 7.0 * iterations : 2.0 * iterations)));
}

TEST(EmulatorSpeed, TensOfThousandsOfBarriersRunInSeconds) {
  measureBarrierLoop<256, false>(20000);
  measureBarrierLoop<128, true>(5000);
}

}  // namespace
