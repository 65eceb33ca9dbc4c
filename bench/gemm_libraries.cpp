// Measures the GEMM libraries pagedc could use on this machine, for the shapes of a 125M Llama
// (hidden 768, intermediate 2048, vocab 32000) at the batch sizes the engine runs: oneDNN's
// matmul and OpenBLAS's sgemm, f32 and bf16 weights, f32 results. Debian's OpenBLAS 0.3.21 is built
// without BUILD_BFLOAT16 (no cblas_sbgemm), so bf16 is oneDNN only.
// It also checks batch invariance: row 0 of C must be bitwise equal whatever M is.
// Build: bench/CMakeLists.txt (only when both libraries are installed). Results: docs/PERF.md.
#include <cblas.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>


namespace {
uint16_t toBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

double seconds(const std::function<void()>& fn) {
  fn();
  int reps = 0;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    fn();
    ++reps;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < 0.3);
  return elapsed / reps;
}

struct Shape { int64_t k, n; const char* name; };
}  // namespace

int main() {
  using namespace dnnl;
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1, 1);
  const Shape shapes[] = {{768, 768, "qkvo 768x768"}, {768, 2048, "up 768x2048"}, {2048, 768, "down 2048x768"}, {768, 32000, "lm_head 768x32000"}};
  const int64_t batches[] = {1, 16, 64, 256};
  std::printf("%-18s %5s | %10s %10s | %10s | GB/s of weights at M=1 (f32 dnnl, blas; bf16 dnnl)\n", "shape", "M", "dnnl f32", "blas f32", "dnnl bf16");
  for (const Shape& s : shapes) {
    std::vector<float> w(static_cast<size_t>(s.k * s.n));
    for (float& x : w) x = dist(rng);
    std::vector<uint16_t> wb(w.size());
    for (size_t i = 0; i < w.size(); ++i) wb[i] = toBf16(w[i]);
    std::vector<float> row0Ref[3];
    for (int64_t m : batches) {
      std::vector<float> a(static_cast<size_t>(m * s.k)), c(static_cast<size_t>(m * s.n));
      for (float& x : a) x = dist(rng);
      std::vector<uint16_t> ab(a.size());
      for (size_t i = 0; i < a.size(); ++i) ab[i] = toBf16(a[i]);
      // oneDNN f32: weights [K, N] row-major; src/dst plain.
      memory::desc ad({m, s.k}, memory::data_type::f32, memory::format_tag::ab);
      memory::desc wd({s.k, s.n}, memory::data_type::f32, memory::format_tag::ab);
      memory::desc cd({m, s.n}, memory::data_type::f32, memory::format_tag::ab);
      matmul::primitive_desc pd(matmul::desc(ad, wd, cd), eng);
      memory am(ad, eng, a.data()), wm(wd, eng, w.data()), cm(cd, eng, c.data());
      matmul mm(pd);
      auto runF32 = [&] { mm.execute(strm, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, cm}}); strm.wait(); };
      memory::desc adb({m, s.k}, memory::data_type::bf16, memory::format_tag::ab);
      memory::desc wdb({s.k, s.n}, memory::data_type::bf16, memory::format_tag::ab);
      matmul::primitive_desc pdb(matmul::desc(adb, wdb, cd), eng);
      memory amb(adb, eng, ab.data()), wmb(wdb, eng, wb.data());
      matmul mmb(pdb);
      auto runBf16 = [&] { mmb.execute(strm, {{DNNL_ARG_SRC, amb}, {DNNL_ARG_WEIGHTS, wmb}, {DNNL_ARG_DST, cm}}); strm.wait(); };
      auto blasF32 = [&] { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, s.n, s.k, 1.f, a.data(), s.k, w.data(), s.n, 0.f, c.data(), s.n); };
      double t[3] = {seconds(runF32), seconds(blasF32), seconds(runBf16)};
      // Batch invariance: row 0's result for the same row 0 input. a's first row differs per M,
      // so recompute with a shared first row.
      std::mt19937 r0(99);
      for (int64_t i = 0; i < s.k; ++i) { a[static_cast<size_t>(i)] = dist(r0); ab[static_cast<size_t>(i)] = toBf16(a[static_cast<size_t>(i)]); }
      bool invariant[3];
      std::function<void()> runs[3] = {runF32, blasF32, runBf16};
      for (int lib = 0; lib < 3; ++lib) {
        runs[lib]();
        std::vector<float> row(c.begin(), c.begin() + s.n);
        if (m == 1) row0Ref[lib] = row;
        invariant[lib] = row == row0Ref[lib];
      }
      double flops = 2.0 * static_cast<double>(m * s.k * s.n);
      std::printf("%-18s %5lld | %7.1f GF%s %7.1f GF%s | %7.1f GF%s", s.name, static_cast<long long>(m), flops / t[0] * 1e-9,
                  invariant[0] ? " " : "!", flops / t[1] * 1e-9, invariant[1] ? " " : "!", flops / t[2] * 1e-9, invariant[2] ? " " : "!");
      if (m == 1) {
        double bytes = static_cast<double>(s.k * s.n);
        std::printf(" | %.1f %.1f %.1f", bytes * 4 / t[0] * 1e-9, bytes * 4 / t[1] * 1e-9, bytes * 2 / t[2] * 1e-9);
      }
      std::printf("\n");
    }
  }
  std::printf("(! = row 0 differs bitwise from the M=1 result: not batch invariant)\n");
}
