#include "cli/KernelsBench.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "codegen/CudaKernelProvider.h"
#include "ir/Error.h"
#include "ir/HalfFloat.h"
#include "runtime/cpu/PagedAttentionKernel.h"
#include "runtime/cuda/CudaDevice.h"
#include "runtime/cuda/CudaDriver.h"
#include "runtime/cuda/CudaKernelCache.h"
#include "runtime/kernels/KernelCatalog.h"
#include "templates/kernel_params.h"

namespace pagedc::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchArguments {
  std::string cache = "f16";
  int64_t context = 2048;     // decode: keys per sequence
  int64_t batch = 16;         // decode: sequences
  int64_t prefillTokens = 256;  // prefill: one sequence of this many query tokens (its whole context)
  int64_t heads = 32;
  int64_t kvHeads = 8;
  std::vector<int64_t> headDims = {64, 128};
  std::vector<int64_t> blocks = {8, 16, 32};
  double minSeconds = 0.3;
  int threads = 0;
  bool noGpu = false;
};

// One attention problem: decode (batch sequences of one query token over `context` keys) or
// prefill (one sequence whose `context` tokens are all queries).
struct Shape {
  bool prefill = false;
  int64_t seqs = 0;
  int64_t context = 0;
  int64_t queryLen = 0;
  int64_t heads = 0;
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  int64_t blockSize = 0;
  int64_t tokens() const { return seqs * queryLen; }
  int64_t blocksPerSeq() const { return (context + blockSize - 1) / blockSize; }
  int64_t numBlocks() const { return seqs * blocksPerSeq(); }
  // Every sequence's keys and values, read once: the bytes a bandwidth-bound kernel must move.
  double kvBytes(int64_t elementBytes) const { return 2.0 * static_cast<double>(seqs * context * kvHeads * headDim * elementBytes); }
};

// Runs `call` in rounds until `minSeconds` have passed; the best time per call (the others are
// slowed by whatever else runs on a shared machine).
template <class Call>
double bestSeconds(double minSeconds, Call&& call) {
  call();  // warm up: page faults, thread pools, caches of the work lists
  double best = 1e30, total = 0;
  do {
    const auto start = Clock::now();
    call();
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    best = std::min(best, seconds);
    total += seconds;
  } while (total < minSeconds);
  return best;
}

// memcpy of 256 MiB, as read + write bytes per second: what the memory system sustains.
double memcpyBandwidth(double minSeconds) {
  const size_t bytes = size_t{256} << 20;
  std::vector<char> from(bytes, 1), to(bytes, 0);
  const double seconds = bestSeconds(minSeconds, [&] { std::memcpy(to.data(), from.data(), bytes); });
  return 2.0 * static_cast<double>(bytes) / seconds / 1e9;
}

std::vector<uint16_t> randomHalfs(size_t count, DType type, std::mt19937& rng) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<uint16_t> bits(count);
  for (uint16_t& b : bits) b = type == DType::BF16 ? floatToBf16(uniform(rng)) : floatToF16(uniform(rng));
  return bits;
}

// The bytes of `count` random values of `type` (f32, f16 or bf16).
std::vector<char> randomValues(size_t count, DType type, std::mt19937& rng) {
  std::vector<char> bytes(count * (type == DType::F32 ? 4 : 2));
  if (type == DType::F32) {
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    for (size_t i = 0; i < count; ++i) {
      const float value = uniform(rng);
      std::memcpy(bytes.data() + 4 * i, &value, 4);
    }
  } else {
    const std::vector<uint16_t> bits = randomHalfs(count, type, rng);
    std::memcpy(bytes.data(), bits.data(), bytes.size());
  }
  return bytes;
}

struct HostProblem {
  std::vector<int64_t> blockTables, contextLens, queryStartLoc;
};

HostProblem hostIndex(const Shape& shape) {
  HostProblem p;
  p.blockTables.resize(static_cast<size_t>(shape.numBlocks()));
  // Sequence s owns a shuffled run of blocks, as a pool hands out blocks freed in any order.
  std::iota(p.blockTables.begin(), p.blockTables.end(), 0);
  std::shuffle(p.blockTables.begin(), p.blockTables.end(), std::mt19937(7));
  p.contextLens.assign(static_cast<size_t>(shape.seqs), shape.context);
  p.queryStartLoc.resize(static_cast<size_t>(shape.seqs + 1));
  for (int64_t s = 0; s <= shape.seqs; ++s) p.queryStartLoc[static_cast<size_t>(s)] = s * shape.queryLen;
  return p;
}

double benchCpu(const Shape& shape, DType cache, double minSeconds) {
  std::mt19937 rng(1);
  const size_t cacheElements = static_cast<size_t>(shape.numBlocks() * shape.kvHeads * shape.blockSize * shape.headDim);
  const std::vector<char> keys = randomValues(cacheElements, cache, rng), values = randomValues(cacheElements, cache, rng);
  std::vector<float> query(static_cast<size_t>(shape.tokens() * shape.heads * shape.headDim));
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (float& q : query) q = uniform(rng);
  std::vector<float> output(query.size());
  const HostProblem index = hostIndex(shape);
  cpu::PagedAttentionArgs a;
  a.query = query.data();
  a.output = output.data();
  a.keyCache = keys.data();
  a.valueCache = values.data();
  a.cacheType = cache;
  a.blockTables = index.blockTables.data();
  a.contextLens = index.contextLens.data();
  a.queryStartLoc = index.queryStartLoc.data();
  a.numTokens = shape.tokens();
  a.numSeqs = shape.seqs;
  a.maxBlocks = shape.blocksPerSeq();
  a.numBlocks = shape.numBlocks();
  a.heads = shape.heads;
  a.kvHeads = shape.kvHeads;
  a.blockSize = shape.blockSize;
  a.headDim = shape.headDim;
  a.scale = 1.0f / std::sqrt(static_cast<float>(shape.headDim));
  return bestSeconds(minSeconds, [&] { cpu::pagedAttention(a); });
}

// The CUDA side: the same shapes through the CUDA variants (one-pass decode, prefill), timed with
// events over repeated launches.
class GpuBench {
public:
  explicit GpuBench(std::shared_ptr<const CudaDriver> driver)
      : device_(std::move(driver), 0), stream_(device_), kernels_(device_, std::make_shared<CudaKernelProvider>()) {}

  const cuda::CudaDevice& device() const { return device_; }

  // Seconds per launch of the variant for `shape` (T = C = `cache`).
  double run(const Shape& shape, DType cache, double minSeconds) {
    const std::string dtype(dtypeName(cache));
    std::map<std::string, std::string> values = {{"dtype", dtype},
                                                 {"head_dim", std::to_string(shape.headDim)},
                                                 {"block", std::to_string(shape.blockSize)},
                                                 {"q_per_kv", std::to_string(shape.heads / shape.kvHeads)}};
    if (!shape.prefill) values["partition"] = "0";
    const KernelKey key = makeKernelKey(shape.prefill ? "paged_attention_prefill" : "paged_attention_decode", values);
    const CUfunction function = kernels_.function(key);
    const unsigned threads = static_cast<unsigned>(key.intParam("threads"));
    cuda::LaunchGrid grid{static_cast<unsigned>(shape.kvHeads), static_cast<unsigned>(shape.seqs), 1};
    if (shape.prefill) {
      const int64_t tile = key.intParam("query_tile");
      grid.z = static_cast<unsigned>((shape.queryLen + tile - 1) / tile);
    }

    std::mt19937 rng(1);
    const size_t elementBytes = cache == DType::F32 ? 4 : 2;
    const size_t cacheElements = static_cast<size_t>(shape.numBlocks() * shape.kvHeads * shape.blockSize * shape.headDim);
    const size_t queryElements = static_cast<size_t>(shape.tokens() * shape.heads * shape.headDim);
    const HostProblem index = hostIndex(shape);
    cuda::DeviceBuffer keys = upload(randomValues(cacheElements, cache, rng), "bench key cache");
    cuda::DeviceBuffer vals = upload(randomValues(cacheElements, cache, rng), "bench value cache");
    cuda::DeviceBuffer query = upload(randomValues(queryElements, cache, rng), "bench query");
    cuda::DeviceBuffer out(device_, queryElements * elementBytes, "bench output");
    cuda::DeviceBuffer tables = upload(bytesOf(index.blockTables), "bench block tables");
    cuda::DeviceBuffer lens = upload(bytesOf(index.contextLens), "bench context lengths");
    cuda::DeviceBuffer starts = upload(bytesOf(index.queryStartLoc), "bench query starts");

    PagedAttentionParams p{};
    p.out = pointer(out);
    p.query = pointer(query);
    p.key_cache = pointer(keys);
    p.value_cache = pointer(vals);
    p.block_tables = static_cast<const i64*>(pointer(tables));
    p.context_lens = static_cast<const i64*>(pointer(lens));
    p.query_start_loc = static_cast<const i64*>(pointer(starts));
    p.query_token_stride = shape.heads * shape.headDim;
    p.num_seqs = shape.seqs;
    p.num_heads = shape.heads;
    p.num_kv_heads = shape.kvHeads;
    p.max_blocks_per_seq = shape.blocksPerSeq();
    p.scale = 1.0f / std::sqrt(static_cast<float>(shape.headDim));

    cuda::CudaEvent start(device_, true), end(device_, true);
    auto launch = [&] { kernels_.launch(function, grid, threads, p, stream_.get(), "bench attention"); };
    launch();
    stream_.synchronize();
    // Batches of launches between two events, growing until a batch takes >= 10 ms.
    double best = 1e30, total = 0;
    int repeats = 10;
    do {
      start.record(stream_.get());
      for (int i = 0; i < repeats; ++i) launch();
      end.record(stream_.get());
      end.synchronize();
      const double seconds = end.millisecondsSince(start) / 1e3;
      best = std::min(best, seconds / repeats);
      total += seconds;
      if (seconds < 0.01) repeats *= 2;
    } while (total < minSeconds);
    return best;
  }

private:
  template <class T>
  static std::vector<char> bytesOf(const std::vector<T>& values) {
    std::vector<char> bytes(values.size() * sizeof(T));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return bytes;
  }
  static void* pointer(const cuda::DeviceBuffer& buffer) { return reinterpret_cast<void*>(static_cast<uintptr_t>(buffer.get())); }
  cuda::DeviceBuffer upload(const std::vector<char>& bytes, const char* what) {
    cuda::DeviceBuffer buffer(device_, bytes.size(), what);
    device_.check(device_.driver().cuMemcpyHtoDAsync(buffer.get(), bytes.data(), bytes.size(), stream_.get()), "cuMemcpyHtoDAsync", what);
    stream_.synchronize();
    return buffer;
  }

  cuda::CudaDevice device_;
  cuda::CudaStream stream_;
  cuda::CudaKernelCache kernels_;
};

std::vector<Shape> shapesOf(const BenchArguments& args) {
  std::vector<Shape> shapes;
  for (bool prefill : {false, true}) {
    for (int64_t headDim : args.headDims) {
      for (int64_t block : args.blocks) {
        Shape s;
        s.prefill = prefill;
        s.seqs = prefill ? 1 : args.batch;
        s.context = prefill ? args.prefillTokens : args.context;
        s.queryLen = prefill ? args.prefillTokens : 1;
        s.heads = args.heads;
        s.kvHeads = args.kvHeads;
        s.headDim = headDim;
        s.blockSize = block;
        shapes.push_back(s);
      }
    }
  }
  return shapes;
}

void runBench(const BenchArguments& args) {
  auto cache = parseDType(args.cache);
  if (!cache || (*cache != DType::F32 && *cache != DType::F16 && *cache != DType::BF16)) {
    fail("--cache must be f32, f16 or bf16 (got '", args.cache, "')");
  }
  if (args.kvHeads <= 0 || args.heads % args.kvHeads != 0) fail("--heads must be a multiple of --kv-heads");
  if (args.threads > 0) omp_set_num_threads(args.threads);
  const int64_t elementBytes = *cache == DType::F32 ? 4 : 2;
  const std::vector<Shape> shapes = shapesOf(args);

  std::printf("paged attention: %lld heads, %lld kv heads, %s cache; decode: %lld sequences x %lld keys; prefill: 1 sequence x %lld tokens\n",
              static_cast<long long>(args.heads), static_cast<long long>(args.kvHeads), args.cache.c_str(), static_cast<long long>(args.batch),
              static_cast<long long>(args.context), static_cast<long long>(args.prefillTokens));
  const double memcpyGBs = memcpyBandwidth(args.minSeconds);
  std::printf("\nCPU (%d OpenMP threads): memcpy %.1f GB/s (read + write bytes, 256 MiB)\n", omp_get_max_threads(), memcpyGBs);
  std::printf("%-8s %8s %6s %12s %10s %10s\n", "phase", "head_dim", "block", "time/call", "KV GB/s", "of memcpy");
  for (const Shape& shape : shapes) {
    const double seconds = benchCpu(shape, *cache, args.minSeconds);
    const double gbs = shape.kvBytes(elementBytes) / seconds / 1e9;
    std::printf("%-8s %8lld %6lld %9.3f ms %10.1f %9.0f%%\n", shape.prefill ? "prefill" : "decode", static_cast<long long>(shape.headDim),
                static_cast<long long>(shape.blockSize), seconds * 1e3, gbs, 100.0 * gbs / memcpyGBs);
    std::fflush(stdout);
  }

  if (args.noGpu) return;
  const CudaAvailability cuda = probeCuda();
  if (!cuda.available()) {
    std::printf("\nGPU: none (%s); timed the CPU kernels only\n", cuda.reason.c_str());
    return;
  }
  GpuBench gpu(cuda.driver);
  const double peak = gpu.device().info().peakBandwidthGBs;
  std::printf("\nGPU %s: peak DRAM bandwidth %.0f GB/s\n", gpu.device().describe().c_str(), peak);
  std::printf("%-8s %8s %6s %12s %10s %10s\n", "phase", "head_dim", "block", "time/call", "KV GB/s", "of peak");
  for (const Shape& shape : shapes) {
    const double seconds = gpu.run(shape, *cache, args.minSeconds);
    const double gbs = shape.kvBytes(elementBytes) / seconds / 1e9;
    std::printf("%-8s %8lld %6lld %9.3f ms %10.1f %9.0f%%\n", shape.prefill ? "prefill" : "decode", static_cast<long long>(shape.headDim),
                static_cast<long long>(shape.blockSize), seconds * 1e3, gbs, peak > 0 ? 100.0 * gbs / peak : 0.0);
    std::fflush(stdout);
  }
}

}  // namespace

void addKernelsBenchCommand(CLI::App& kernels) {
  auto args = std::make_shared<BenchArguments>();
  auto* command = kernels.add_subcommand("bench", "time the paged attention kernels: the CPU backend's always, the CUDA variants when a GPU is present");
  command->add_option("--cache", args->cache, "KV cache (and, on the GPU, activation) dtype: f32, f16, bf16")->capture_default_str();
  command->add_option("--context", args->context, "decode: keys per sequence")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--batch", args->batch, "decode: sequences")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--prefill-tokens", args->prefillTokens, "prefill: query tokens of the one sequence")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--heads", args->heads, "query heads")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--kv-heads", args->kvHeads, "kv heads")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--head-dims", args->headDims, "head dims to time")->capture_default_str()->delimiter(',');
  command->add_option("--blocks", args->blocks, "block sizes to time")->capture_default_str()->delimiter(',');
  command->add_option("--min-seconds", args->minSeconds, "time per configuration")->capture_default_str();
  command->add_option("--threads", args->threads, "CPU threads (default: OpenMP's)");
  command->add_flag("--no-gpu", args->noGpu, "time the CPU kernels only");
  command->callback([args] { runBench(*args); });
}

}  // namespace pagedc::cli
