// Sustained DRAM bandwidth, the bound for batch-1 decode: tokens/s <= bandwidth / bytes of weights
// read per token. Measurement for docs/PERF.md, never run by the tests.
//
//   bench_memory_bandwidth [MiB per buffer, default 1024] [repetitions, default 5]
//
// Kernels (f32 arrays, each much larger than the last-level cache; pages touched in parallel with
// the same static schedule as the kernels so that they sit near the threads that use them):
//   read   s += a[i]                 bytes counted: 4 per element (the pattern of a weight read)
//   copy   c[i] = a[i]               8 per element (plus write-allocate traffic, not counted)
//   triad  a[i] = b[i] + k * c[i]    12 per element (likewise)
// Each is run with every OpenMP thread and with 1 thread; the best of the repetitions is printed
// in GB/s (10^9 bytes/s), the figure STREAM reports.

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;

struct Buffer {
  float* p = nullptr;
  std::size_t n = 0;
  explicit Buffer(std::size_t count) : n(count) {
    p = static_cast<float*>(std::aligned_alloc(64, ((count * sizeof(float) + 63) / 64) * 64));
    if (!p) throw std::bad_alloc();
  }
  ~Buffer() { std::free(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

void first_touch(float* p, std::size_t n, float v) {
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < n; ++i) p[i] = v + static_cast<float>(i & 7);
}

// Sum reduce; 8 independent accumulator chains of the full vector width so that the loop is
// bound by loads, not by the latency of the adds.
float read_kernel(const float* __restrict a, std::size_t n) {
  float total = 0.f;
#pragma omp parallel reduction(+ : total)
  {
    constexpr std::size_t kLanes = 128;  // 8 chains x 16 floats (one 512-bit register each)
    alignas(64) float acc[kLanes] = {};
    const int nt = omp_get_num_threads();
    const int t = omp_get_thread_num();
    const std::size_t blocks = n / kLanes;
    const std::size_t b0 = blocks * t / nt, b1 = blocks * (t + 1) / nt;
    for (std::size_t b = b0; b < b1; ++b) {
      const float* __restrict q = a + b * kLanes;
#pragma omp simd
      for (std::size_t l = 0; l < kLanes; ++l) acc[l] += q[l];
    }
    float s = 0.f;
    for (std::size_t l = 0; l < kLanes; ++l) s += acc[l];
    if (t == nt - 1)
      for (std::size_t i = blocks * kLanes; i < n; ++i) s += a[i];
    total += s;
  }
  return total;
}

void copy_kernel(float* __restrict c, const float* __restrict a, std::size_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::size_t i = 0; i < n; ++i) c[i] = a[i];
}

void triad_kernel(float* __restrict a, const float* __restrict b, const float* __restrict c, float k,
                  std::size_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + k * c[i];
}

template <typename F>
double best_seconds(int reps, F&& f) {
  f();  // warm-up: page tables, frequency
  double best = std::numeric_limits<double>::max();
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best;
}

volatile float g_sink;

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  if (mib == 0 || reps <= 0) {
    std::fprintf(stderr, "usage: %s [MiB per buffer] [repetitions]\n", argv[0]);
    return 2;
  }
  const std::size_t n = mib * (std::size_t{1} << 20) / sizeof(float);
  const int max_threads = omp_get_max_threads();
  std::printf("buffers: 3 x %zu MiB (f32), best of %d repetitions, OpenMP max threads %d\n", mib, reps,
              max_threads);

  Buffer a(n), b(n), c(n);
  first_touch(a.p, n, 1.f);
  first_touch(b.p, n, 2.f);
  first_touch(c.p, n, 3.f);

  const double bytes = static_cast<double>(n) * sizeof(float);
  std::printf("%-8s %8s %12s %10s\n", "kernel", "threads", "GB/s", "GiB/s");
  int thread_counts[2] = {max_threads, 1};
  const int n_counts = max_threads > 1 ? 2 : 1;
  for (int ti = 0; ti < n_counts; ++ti) {
    const int nt = thread_counts[ti];
    omp_set_num_threads(nt);
    auto report = [&](const char* name, double moved, double secs) {
      std::printf("%-8s %8d %12.2f %10.2f\n", name, nt, moved / secs / 1e9, moved / secs / (1 << 30));
    };
    report("read", bytes, best_seconds(reps, [&] { g_sink = read_kernel(a.p, n); }));
    report("copy", 2 * bytes, best_seconds(reps, [&] { copy_kernel(c.p, a.p, n); }));
    report("triad", 3 * bytes, best_seconds(reps, [&] { triad_kernel(a.p, b.p, c.p, 0.5f, n); }));
  }
  std::fflush(stdout);
  return 0;
}
