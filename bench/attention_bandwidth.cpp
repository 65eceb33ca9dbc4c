// Decode attention bandwidth of the CPU paged attention kernel (runtime/cpu/PagedAttentionKernel)
// for a 125M Llama's attention shape: 12 heads of 64, 12 kv heads, blocks of 16 tokens, f32 and
// bf16 caches; one query token per sequence at context 512, 2048 and 8192, batch 1, 16 and 64.
// Reports time per call and the achieved GB/s of K/V bytes read (every sequence's keys and values
// of its whole context), on all OpenMP threads and on one.
//
// Each call attends one layer; the benchmark cycles through up to 12 layers' caches (as a decode
// step does) so small configurations are not measured from a warm last-level cache, within a cache
// budget (--max-cache-gb, default 4). A configuration whose single layer exceeds it is skipped.
//
// Usage: bench_attention_bandwidth [--max-cache-gb=G] [--min-seconds=S] [--isa=avx512|avx2|portable]
//                                  [--cache=f32|bf16] [--context=N] [--batch=N]   (filters)
//                                  [--huge-pages]   (madvise the caches to transparent huge pages)
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ir/HalfFloat.h"
#include "runtime/cpu/CpuIsa.h"
#include "runtime/cpu/PagedAttentionKernel.h"

namespace {

using namespace pagedc;

constexpr int64_t kHeads = 12, kKvHeads = 12, kHeadDim = 64, kBlockSize = 16, kMaxLayers = 12;

struct Options {
  double maxCacheGb = 4.0;
  double minSeconds = 0.5;
  std::string cache;     // "" (all), "f32" or "bf16"
  int64_t context = 0;  // 0: all
  int64_t batch = 0;    // 0: all
  bool hugePages = false;
};

// A cache buffer: 2 MiB aligned and, when --huge-pages, advised to transparent huge pages (the
// KV pool of an engine is one big allocation that can be); otherwise 4 KiB pages.
struct CacheBuffer {
  uint8_t* bytes = nullptr;
  CacheBuffer() = default;
  CacheBuffer(size_t size, bool hugePages) {
    constexpr size_t kAlign = size_t{2} << 20;
    bytes = static_cast<uint8_t*>(std::aligned_alloc(kAlign, (size + kAlign - 1) / kAlign * kAlign));
    if (!bytes) {
      std::fprintf(stderr, "out of memory allocating %zu bytes\n", size);
      std::exit(1);
    }
    if (hugePages) madvise(bytes, (size + kAlign - 1) / kAlign * kAlign, MADV_HUGEPAGE);
  }
  CacheBuffer(const CacheBuffer&) = delete;
  CacheBuffer& operator=(const CacheBuffer&) = delete;
  CacheBuffer(CacheBuffer&& other) noexcept : bytes(other.bytes) { other.bytes = nullptr; }
  CacheBuffer& operator=(CacheBuffer&& other) noexcept {
    std::swap(bytes, other.bytes);
    return *this;
  }
  ~CacheBuffer() { std::free(bytes); }
};

struct Result {
  double secondsPerCall = 0;  // best round
  double meanSecondsPerCall = 0;
  double gbPerSecond = 0;
};

Result measure(DType type, int64_t context, int64_t batch, int layers, int threads, double minSeconds, const std::vector<CacheBuffer>& keyCaches,
               const std::vector<CacheBuffer>& valueCaches, const std::vector<int64_t>& tables, int64_t numBlocks) {
  std::vector<float> query(static_cast<size_t>(batch * kHeads * kHeadDim));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& x : query) x = uniform(rng);
  std::vector<float> output(query.size());
  std::vector<int64_t> lens(static_cast<size_t>(batch), context), starts(static_cast<size_t>(batch + 1));
  std::iota(starts.begin(), starts.end(), 0);
  cpu::PagedAttentionArgs a;
  a.query = query.data();
  a.output = output.data();
  a.cacheType = type;
  a.blockTables = tables.data();
  a.contextLens = lens.data();
  a.queryStartLoc = starts.data();
  a.numTokens = batch;
  a.numSeqs = batch;
  a.maxBlocks = context / kBlockSize;
  a.numBlocks = numBlocks;
  a.heads = kHeads;
  a.kvHeads = kKvHeads;
  a.blockSize = kBlockSize;
  a.headDim = kHeadDim;
  a.scale = 0.125f;
  omp_set_num_threads(threads);
  auto call = [&](int layer) {
    a.keyCache = keyCaches[static_cast<size_t>(layer)].bytes;
    a.valueCache = valueCaches[static_cast<size_t>(layer)].bytes;
    cpu::pagedAttention(a);
  };
  for (int l = 0; l < layers; ++l) call(l);  // warm up (page faults, thread pool)
  // Rounds of one call per layer until minSeconds have passed; the best round counts (as STREAM
  // reports its best repetition): on a shared machine the others are slowed by other processes.
  double best = 1e30, total = 0;
  int64_t calls = 0;
  do {
    const auto start = std::chrono::steady_clock::now();
    for (int l = 0; l < layers; ++l) call(l);
    const double round = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, round / layers);
    total += round;
    calls += layers;
  } while (total < minSeconds);
  const double bytes = static_cast<double>(batch * context * kKvHeads * kHeadDim) * (type == DType::F32 ? 4 : 2) * 2;
  Result r;
  r.secondsPerCall = best;
  r.meanSecondsPerCall = total / static_cast<double>(calls);
  r.gbPerSecond = bytes / r.secondsPerCall / 1e9;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--max-cache-gb=", 0) == 0) {
      options.maxCacheGb = std::atof(arg.c_str() + 15);
    } else if (arg.rfind("--min-seconds=", 0) == 0) {
      options.minSeconds = std::atof(arg.c_str() + 14);
    } else if (arg == "--huge-pages") {
      options.hugePages = true;
    } else if (arg.rfind("--cache=", 0) == 0) {
      options.cache = arg.substr(8);
    } else if (arg.rfind("--context=", 0) == 0) {
      options.context = std::atoll(arg.c_str() + 10);
    } else if (arg.rfind("--batch=", 0) == 0) {
      options.batch = std::atoll(arg.c_str() + 8);
    } else if (arg.rfind("--isa=", 0) == 0) {
      const std::string name = arg.substr(6);
      const cpu::CpuIsa isa = name == "avx512" ? cpu::CpuIsa::Avx512 : name == "avx2" ? cpu::CpuIsa::Avx2 : cpu::CpuIsa::Portable;
      if (cpu::cpuIsaName(isa) != name || !cpu::forceCpuIsa(isa)) {
        std::fprintf(stderr, "unknown or unsupported instruction set %s\n", name.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--max-cache-gb=G] [--min-seconds=S] [--isa=avx512|avx2|portable] [--cache=f32|bf16] [--context=N] [--batch=N] [--huge-pages]\n",
                   argv[0]);
      return 2;
    }
  }
  const int allThreads = omp_get_max_threads();
  std::printf("paged attention decode: %lld heads x %lld, %lld kv heads, block %lld; isa %s; %d threads; cache budget %.1f GB; %s pages\n",
              static_cast<long long>(kHeads), static_cast<long long>(kHeadDim), static_cast<long long>(kKvHeads), static_cast<long long>(kBlockSize),
              std::string(cpu::cpuIsaName(cpu::activeCpuIsa())).c_str(), allThreads, options.maxCacheGb,
              options.hugePages ? "huge (madvised)" : "4 KiB");
  std::printf("best round per call (mean over all rounds in parentheses)\n");
  std::printf("%-5s %7s %5s %6s %10s | %-21s %7s | %-21s %7s\n", "cache", "context", "batch", "layers", "KV MB/call", "us/call, all threads", "GB/s",
              "us/call, 1 thread", "GB/s");
  for (DType type : {DType::F32, DType::BF16}) {
    if (!options.cache.empty() && options.cache != dtypeName(type)) continue;
    const int64_t elemSize = type == DType::F32 ? 4 : 2;
    for (int64_t context : {512, 2048, 8192})
      for (int64_t batch : {1, 16, 64}) {
        if ((options.context && context != options.context) || (options.batch && batch != options.batch)) continue;
        const int64_t blocksPerSeq = context / kBlockSize, numBlocks = blocksPerSeq * batch;
        const int64_t layerBytes = numBlocks * kKvHeads * kBlockSize * kHeadDim * elemSize * 2;
        const double budget = options.maxCacheGb * 1e9;
        if (static_cast<double>(layerBytes) > budget) {
          std::printf("%-5s %7lld %5lld  skipped: one layer's caches take %.1f GB\n", std::string(dtypeName(type)).c_str(), static_cast<long long>(context),
                      static_cast<long long>(batch), static_cast<double>(layerBytes) / 1e9);
          continue;
        }
        const int layers = static_cast<int>(std::clamp<int64_t>(static_cast<int64_t>(budget / static_cast<double>(layerBytes)), 1, kMaxLayers));
        // Scattered blocks: each sequence's table is a slice of a random permutation.
        std::vector<int64_t> tables(static_cast<size_t>(numBlocks));
        std::iota(tables.begin(), tables.end(), 0);
        std::shuffle(tables.begin(), tables.end(), std::mt19937(7));
        std::vector<CacheBuffer> keyCaches, valueCaches;
        for (int l = 0; l < layers; ++l) {
          keyCaches.emplace_back(static_cast<size_t>(layerBytes / 2), options.hugePages);
          valueCaches.emplace_back(static_cast<size_t>(layerBytes / 2), options.hugePages);
        }
        for (int l = 0; l < layers; ++l)
          for (uint8_t* bytes : {keyCaches[static_cast<size_t>(l)].bytes, valueCaches[static_cast<size_t>(l)].bytes}) {
            const int64_t n = layerBytes / 2 / elemSize;
#pragma omp parallel for
            for (int64_t i = 0; i < n; ++i) {
              const float x = static_cast<float>((i * 2654435761u + static_cast<uint64_t>(l)) % 2001) / 1000.0f - 1.0f;
              if (type == DType::F32)
                std::memcpy(bytes + i * 4, &x, 4);
              else {
                const uint16_t h = floatToBf16(x);
                std::memcpy(bytes + i * 2, &h, 2);
              }
            }
          }
        const Result all = measure(type, context, batch, layers, allThreads, options.minSeconds, keyCaches, valueCaches, tables, numBlocks);
        const Result one = measure(type, context, batch, layers, 1, options.minSeconds, keyCaches, valueCaches, tables, numBlocks);
        std::printf("%-5s %7lld %5lld %6d %10.1f | %9.0f (%9.0f) %7.1f | %9.0f (%9.0f) %7.1f\n", std::string(dtypeName(type)).c_str(),
                    static_cast<long long>(context), static_cast<long long>(batch), layers, static_cast<double>(layerBytes) / 1e6, all.secondsPerCall * 1e6,
                    all.meanSecondsPerCall * 1e6, all.gbPerSecond, one.secondsPerCall * 1e6, one.meanSecondsPerCall * 1e6, one.gbPerSecond);
        std::fflush(stdout);
      }
  }
  omp_set_num_threads(allThreads);
  return 0;
}
