// The CPU backend's paged attention and KV cache write kernels (runtime/cpu/) against the reference
// ops of ir/ops/PagedAttentionOps.cpp, on every instruction set this CPU has (AVX-512, AVX2,
// portable), plus the batch invariance the kernels promise: a token's output bits do not depend on
// the rest of the batch, the thread count, or how its prompt was chunked.
//
// Tolerance against the reference: the reference takes dot products and the softmax sum in double
// (but exponentiates in f32 and accumulates the output in f32); the kernel is f32 throughout, with
// an online softmax (a running max and sum rescaled per group of keys) and a polynomial exp. With
// K/V and queries in [-1, 1] (queries up to ±8 in the softcap tests) and contexts of up to 300
// keys, the largest difference observed is 1.3e-6; we allow |kernel - reference| <= 1e-5 * (1 +
// |reference|): 1e-5 relative on outputs of magnitude ~1. 16-bit caches get the same tolerance: the reference reads the same 16-bit caches
// (the interpreter widens them exactly, as the kernel does), so only the arithmetic differs. A
// masking or indexing bug (a key too many or too few, a wrong block) moves outputs by ~1e-2.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "OpTestSupport.h"
#include "ir/Error.h"
#include "ir/HalfFloat.h"
#include "runtime/cpu/CpuIsa.h"
#include "runtime/cpu/KvCacheWriteKernel.h"
#include "runtime/cpu/PagedAttentionKernel.h"

namespace pagedc {
namespace {

using namespace test;
using cpu::CpuIsa;

constexpr float kTolerance = 1e-5f;

std::vector<CpuIsa> supportedIsas() {
  std::vector<CpuIsa> isas;
  for (CpuIsa isa : {CpuIsa::Avx512, CpuIsa::Avx2, CpuIsa::Portable})
    if (cpu::cpuSupports(isa)) isas.push_back(isa);
  return isas;
}

// Restores the instruction set and the OpenMP thread count a test changes.
class KernelSettingsGuard {
public:
  ~KernelSettingsGuard() {
    cpu::forceCpuIsa(isa_);
    omp_set_num_threads(threads_);
  }

private:
  CpuIsa isa_ = cpu::activeCpuIsa();
  int threads_ = omp_get_max_threads();
};

void useIsa(CpuIsa isa) { ASSERT_TRUE(cpu::forceCpuIsa(isa)) << cpu::cpuIsaName(isa); }

void storeElement(Tensor& cache, int64_t index, float x) {
  if (cache.dtype() == DType::F32)
    cache.mutableData<float>()[index] = x;
  else if (cache.dtype() == DType::BF16)
    cache.mutableData<uint16_t>()[index] = floatToBf16(x);
  else
    cache.mutableData<uint16_t>()[index] = floatToF16(x);
}

struct Geometry {
  int64_t heads = 4, kvHeads = 4, headDim = 64, blockSize = 16;
  DType cacheType = DType::F32;
};

struct SeqSpec {
  int64_t contextLen, queryLen;
};

// A paged cache shared by many sequences (each with its own scattered blocks, every position of its
// context written) and each sequence's query rows. Slots no sequence wrote hold NaN, so a kernel
// reading a key it should not turns its output into NaN.
struct World {
  Geometry g;
  std::vector<SeqSpec> seqs;
  int64_t numBlocks = 0, maxBlocks = 0;
  Tensor keyCache, valueCache;
  std::vector<std::vector<int64_t>> tables;  // per sequence, maxBlocks entries
  std::vector<std::vector<float>> queries;   // per sequence, [queryLen, heads, headDim]
  float scale = 0, softcap = 0;
  int64_t window = -1;
};

World makeWorld(const Geometry& g, std::vector<SeqSpec> seqs, uint32_t seed, float queryScale = 1.0f) {
  World w;
  w.g = g;
  w.seqs = std::move(seqs);
  w.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(g.headDim)));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  int64_t needed = 0;
  for (const SeqSpec& s : w.seqs) {
    const int64_t blocks = (s.contextLen + g.blockSize - 1) / g.blockSize;
    needed += blocks;
    w.maxBlocks = std::max(w.maxBlocks, blocks);
  }
  w.maxBlocks += 1;              // an unused trailing entry per table
  w.numBlocks = needed + 3;      // and a few blocks nobody owns
  std::vector<int64_t> physical(static_cast<size_t>(w.numBlocks));
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), rng);
  const std::vector<int64_t> shape{w.numBlocks, g.kvHeads, g.blockSize, g.headDim};
  w.keyCache = Tensor::zeros(g.cacheType, shape);
  w.valueCache = Tensor::zeros(g.cacheType, shape);
  const int64_t cacheElems = w.keyCache.numElements();
  for (int64_t i = 0; i < cacheElems; ++i) {
    storeElement(w.keyCache, i, std::numeric_limits<float>::quiet_NaN());
    storeElement(w.valueCache, i, std::numeric_limits<float>::quiet_NaN());
  }
  size_t next = 0;
  for (const SeqSpec& s : w.seqs) {
    std::vector<int64_t> table(static_cast<size_t>(w.maxBlocks), 1'000'000);  // entries past the context are never read
    const int64_t blocks = (s.contextLen + g.blockSize - 1) / g.blockSize;
    for (int64_t b = 0; b < blocks; ++b) table[static_cast<size_t>(b)] = physical[next++];
    for (int64_t pos = 0; pos < s.contextLen; ++pos)
      for (int64_t h = 0; h < g.kvHeads; ++h)
        for (int64_t d = 0; d < g.headDim; ++d) {
          const int64_t at = ((table[static_cast<size_t>(pos / g.blockSize)] * g.kvHeads + h) * g.blockSize + pos % g.blockSize) * g.headDim + d;
          storeElement(w.keyCache, at, uniform(rng));
          storeElement(w.valueCache, at, uniform(rng));
        }
    w.tables.push_back(std::move(table));
    std::vector<float> q(static_cast<size_t>(s.queryLen * g.heads * g.headDim));
    for (float& x : q) x = uniform(rng) * queryScale;
    w.queries.push_back(std::move(q));
  }
  return w;
}

// One step's flattened inputs for a subset of the world's sequences, in the given order.
struct Step {
  std::vector<float> query;
  std::vector<int64_t> tables, contextLens, queryStartLoc{0};
  int64_t numTokens = 0;
};

Step makeStep(const World& w, const std::vector<size_t>& which) {
  Step s;
  for (size_t i : which) {
    s.query.insert(s.query.end(), w.queries[i].begin(), w.queries[i].end());
    s.tables.insert(s.tables.end(), w.tables[i].begin(), w.tables[i].end());
    s.contextLens.push_back(w.seqs[i].contextLen);
    s.numTokens += w.seqs[i].queryLen;
    s.queryStartLoc.push_back(s.numTokens);
  }
  return s;
}

std::vector<size_t> allSeqs(const World& w) {
  std::vector<size_t> all(w.seqs.size());
  std::iota(all.begin(), all.end(), 0);
  return all;
}

cpu::PagedAttentionArgs argsFor(const World& w, const Step& s, float* output) {
  cpu::PagedAttentionArgs a;
  a.query = s.query.data();
  a.output = output;
  a.keyCache = w.keyCache.bytes();
  a.valueCache = w.valueCache.bytes();
  a.cacheType = w.g.cacheType;
  a.blockTables = s.tables.data();
  a.contextLens = s.contextLens.data();
  a.queryStartLoc = s.queryStartLoc.data();
  a.numTokens = s.numTokens;
  a.numSeqs = static_cast<int64_t>(s.contextLens.size());
  a.maxBlocks = w.maxBlocks;
  a.numBlocks = w.numBlocks;
  a.heads = w.g.heads;
  a.kvHeads = w.g.kvHeads;
  a.blockSize = w.g.blockSize;
  a.headDim = w.g.headDim;
  a.scale = w.scale;
  a.softcap = w.softcap;
  a.slidingWindow = w.window;
  return a;
}

constexpr float kUnwritten = 12345.0f;

std::vector<float> runKernel(const World& w, const Step& s) {
  std::vector<float> out(static_cast<size_t>(s.numTokens * w.g.heads * w.g.headDim), kUnwritten);
  cpu::pagedAttention(argsFor(w, s, out.data()));
  return out;
}

std::vector<float> runReference(const World& w, const Step& s) {
  const int64_t numSeqs = static_cast<int64_t>(s.contextLens.size());
  AttrMap attrs{{"scale", static_cast<double>(w.scale)}};
  if (w.softcap > 0) attrs["softcap"] = static_cast<double>(w.softcap);
  if (w.window > 0) attrs["sliding_window"] = w.window;
  auto out = runOp("paged_attention",
                   {f32({s.numTokens, w.g.heads, w.g.headDim}, s.query), w.keyCache, w.valueCache, i64({numSeqs, w.maxBlocks}, s.tables),
                    i64({numSeqs}, s.contextLens), i64({numSeqs + 1}, s.queryStartLoc)},
                   attrs);
  return floatsOf(out[0]);
}

// |actual - expected| <= kTolerance * (1 + |expected|) everywhere; reports the worst element.
void expectClose(const std::vector<float>& actual, const std::vector<float>& expected, const Geometry& g) {
  ASSERT_EQ(actual.size(), expected.size());
  double worst = 0;
  size_t worstAt = 0, bad = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double error = std::fabs(static_cast<double>(actual[i]) - expected[i]);
    const double allowed = kTolerance * (1.0 + std::fabs(expected[i]));
    if (!(error <= allowed)) ++bad;
    if (!(error <= worst)) {
      worst = error;
      worstAt = i;
    }
  }
  const size_t row = worstAt / static_cast<size_t>(g.headDim);
  EXPECT_EQ(bad, 0u) << "worst error " << worst << " at token " << row / static_cast<size_t>(g.heads) << " head "
                     << row % static_cast<size_t>(g.heads) << " dim " << worstAt % static_cast<size_t>(g.headDim) << ": kernel "
                     << actual[worstAt] << ", reference " << expected[worstAt];
}

// The rows of sequence `index` (its position in `which`) from a step's output.
std::vector<float> rowsOf(const World& w, const Step& s, const std::vector<float>& out, size_t index) {
  const int64_t row = w.g.heads * w.g.headDim;
  return std::vector<float>(out.begin() + s.queryStartLoc[index] * row, out.begin() + s.queryStartLoc[index + 1] * row);
}

void expectSameBits(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  size_t differ = 0, first = a.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) {
      ++differ;
      first = std::min(first, i);
    }
  EXPECT_EQ(differ, 0u) << what << ": " << differ << " of " << a.size() << " elements differ, first at " << first << " (" << a[first] << " vs "
                        << b[first] << ")";
}

// Prefill, chunked-prefill continuations and decodes; contexts ending mid-block, on a block
// boundary, one past it; an empty sequence.
std::vector<SeqSpec> mixedBatch() {
  return {{1, 1}, {37, 37}, {70, 1}, {150, 23}, {0, 0}, {32, 32}, {33, 1}, {96, 40}, {17, 2}};
}

// ---- Against the reference --------------------------------------------------------------------

class CpuPagedAttentionShapes : public testing::TestWithParam<std::tuple<int64_t, int64_t, DType>> {};

TEST_P(CpuPagedAttentionShapes, MatchesReferenceOnMixedBatches) {
  KernelSettingsGuard guard;
  const auto [headDim, blockSize, cacheType] = GetParam();
  omp_set_num_threads(2);
  for (auto [heads, kvHeads] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {8, 2}}) {
    const Geometry g{heads, kvHeads, headDim, blockSize, cacheType};
    World w = makeWorld(g, mixedBatch(), static_cast<uint32_t>(headDim * 1000 + blockSize * 10 + heads));
    const Step step = makeStep(w, allSeqs(w));
    const std::vector<float> expected = runReference(w, step);
    for (CpuIsa isa : supportedIsas()) {
      SCOPED_TRACE(std::string(cpu::cpuIsaName(isa)) + " heads " + std::to_string(heads) + "/" + std::to_string(kvHeads));
      useIsa(isa);
      expectClose(runKernel(w, step), expected, g);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(HeadDimsBlockSizesCacheTypes, CpuPagedAttentionShapes,
                         testing::Combine(testing::Values<int64_t>(16, 20, 64, 80, 128), testing::Values<int64_t>(8, 16, 32),
                                          testing::Values(DType::F32, DType::BF16, DType::F16)),
                         [](const testing::TestParamInfo<CpuPagedAttentionShapes::ParamType>& info) {
                           return "d" + std::to_string(std::get<0>(info.param)) + "_b" + std::to_string(std::get<1>(info.param)) + "_" +
                                  std::string(dtypeName(std::get<2>(info.param)));
                         });

// The other compiled head dims (32, 96, 256), a block size that is no multiple of the vector width
// (24) and one smaller than it (4), and an explicit scale.
TEST(CpuPagedAttention, MatchesReferenceOnOtherHeadDimsAndBlockSizes) {
  KernelSettingsGuard guard;
  omp_set_num_threads(2);
  for (auto [headDim, blockSize] : std::vector<std::pair<int64_t, int64_t>>{{32, 16}, {96, 16}, {256, 16}, {64, 24}, {40, 4}}) {
    const Geometry g{6, 2, headDim, blockSize, DType::BF16};
    World w = makeWorld(g, mixedBatch(), static_cast<uint32_t>(headDim + blockSize));
    w.scale = 0.3f;
    const Step step = makeStep(w, allSeqs(w));
    const std::vector<float> expected = runReference(w, step);
    for (CpuIsa isa : supportedIsas()) {
      SCOPED_TRACE(std::string(cpu::cpuIsaName(isa)) + " head dim " + std::to_string(headDim) + " block " + std::to_string(blockSize));
      useIsa(isa);
      expectClose(runKernel(w, step), expected, g);
    }
  }
}

TEST(CpuPagedAttention, SoftcapAndSlidingWindowMatchReference) {
  KernelSettingsGuard guard;
  omp_set_num_threads(2);
  struct Case {
    float softcap;
    int64_t window;
  };
  // Queries scaled so raw scores reach ~±30: the cap of 5 bends most of them.
  for (const Case& c : {Case{5.0f, -1}, Case{0.0f, 20}, Case{0.0f, 16}, Case{0.0f, 1}, Case{5.0f, 33}, Case{0.0f, 1000}}) {
    for (DType type : {DType::F32, DType::F16}) {
      const Geometry g{8, 2, 64, 16, type};
      World w = makeWorld(g, mixedBatch(), 7, 8.0f);
      w.softcap = c.softcap;
      w.window = c.window;
      const Step step = makeStep(w, allSeqs(w));
      const std::vector<float> expected = runReference(w, step);
      for (CpuIsa isa : supportedIsas()) {
        SCOPED_TRACE(std::string(cpu::cpuIsaName(isa)) + " softcap " + std::to_string(c.softcap) + " window " + std::to_string(c.window) + " " +
                     std::string(dtypeName(type)));
        useIsa(isa);
        expectClose(runKernel(w, step), expected, g);
      }
    }
  }
}

// Only the blocks inside the window are read: entries before it may be anything (freed blocks).
TEST(CpuPagedAttention, SlidingWindowIgnoresTableEntriesBeforeTheWindow) {
  KernelSettingsGuard guard;
  const Geometry g{4, 4, 32, 8, DType::F32};
  World w = makeWorld(g, {{100, 3}, {64, 1}}, 11);
  w.window = 20;
  const Step step = makeStep(w, allSeqs(w));
  const std::vector<float> expected = runKernel(w, step);
  Step freed = step;
  for (int64_t b = 0; b < (97 - 20 + 1) / 8; ++b) freed.tables[static_cast<size_t>(b)] = -1;  // sequence 0's first query sees 78..97
  for (int64_t b = 0; b < (63 - 20 + 1) / 8; ++b) freed.tables[static_cast<size_t>(w.maxBlocks + b)] = 1'000'000;
  expectSameBits(runKernel(w, freed), expected, "blocks before the window freed");
  expectClose(runReference(w, freed), expected, g);
}

TEST(CpuPagedAttention, StridedQueryRows) {
  KernelSettingsGuard guard;
  const Geometry g{4, 2, 64, 16, DType::F32};
  World w = makeWorld(g, mixedBatch(), 5);
  const Step step = makeStep(w, allSeqs(w));
  const std::vector<float> expected = runKernel(w, step);
  // The same queries as the first part of wider rows (a fused QKV projection's output).
  const int64_t row = g.heads * g.headDim, stride = row + 2 * g.kvHeads * g.headDim;
  std::vector<float> fused(static_cast<size_t>(step.numTokens * stride), std::numeric_limits<float>::quiet_NaN());
  for (int64_t t = 0; t < step.numTokens; ++t) std::copy_n(step.query.begin() + t * row, row, fused.begin() + t * stride);
  std::vector<float> out(expected.size(), kUnwritten);
  cpu::PagedAttentionArgs a = argsFor(w, step, out.data());
  a.query = fused.data();
  a.queryTokenStride = stride;
  cpu::pagedAttention(a);
  expectSameBits(out, expected, "strided query");
}

// ---- Batch invariance -------------------------------------------------------------------------

// Each sequence alone, on one thread, against the same sequence among others (before and after
// it), on 2 and 3 threads: the same bits. With GQA and 1-3 sequences the kernel splits a kv head's
// query heads over items; in the big batch it does not; prefill tiles start elsewhere in the batch.
TEST(CpuPagedAttentionInvariance, AloneOrInABatchGivesTheSameBits) {
  KernelSettingsGuard guard;
  const std::vector<SeqSpec> seqs = {{45, 45}, {130, 1}, {90, 20}, {300, 1}, {61, 61}, {16, 1}, {200, 70}, {5, 1}};
  struct Variant {
    Geometry g;
    float softcap;
    int64_t window;
  };
  for (const Variant& v : {Variant{{8, 2, 64, 16, DType::F32}, 0, -1}, Variant{{8, 2, 64, 16, DType::BF16}, 0, -1},
                           Variant{{4, 4, 128, 32, DType::F16}, 10, 50}, Variant{{6, 3, 20, 8, DType::F32}, 0, 7}}) {
    World w = makeWorld(v.g, seqs, 3, 3.0f);
    w.softcap = v.softcap;
    w.window = v.window;
    for (CpuIsa isa : supportedIsas()) {
      useIsa(isa);
      const std::vector<size_t> order = {3, 0, 6, 1, 4, 2, 7, 5};
      const Step batch = makeStep(w, order);
      omp_set_num_threads(2);
      const std::vector<float> batched2 = runKernel(w, batch);
      omp_set_num_threads(3);
      const std::vector<float> batched3 = runKernel(w, batch);
      for (size_t i = 0; i < order.size(); ++i) {
        const Step alone = makeStep(w, {order[i]});
        omp_set_num_threads(1);
        const std::vector<float> single = runKernel(w, alone);
        const std::string what = std::string(cpu::cpuIsaName(isa)) + " " + std::string(dtypeName(v.g.cacheType)) + " sequence " +
                                 std::to_string(order[i]) + " (" + std::to_string(w.seqs[order[i]].queryLen) + " of " +
                                 std::to_string(w.seqs[order[i]].contextLen) + ")";
        expectSameBits(rowsOf(w, batch, batched2, i), single, what + ", batch on 2 threads vs alone on 1");
        expectSameBits(rowsOf(w, batch, batched3, i), single, what + ", batch on 3 threads vs alone on 1");
        omp_set_num_threads(2);
        expectSameBits(runKernel(w, alone), single, what + ", alone on 2 threads vs 1");
      }
    }
  }
}

// A prompt's K/V written by kvCacheWrite and attended in one step, in uneven chunks (each its own
// step, after writing the chunk), and token by token as decodes: every token's rows are the same
// bits. A token falls at a different place of its query tile in each.
TEST(CpuPagedAttentionInvariance, ChunkedPrefillGivesTheSameBits) {
  KernelSettingsGuard guard;
  const int64_t promptLen = 75;
  for (const Geometry& g : {Geometry{4, 4, 64, 16, DType::F32}, Geometry{8, 2, 80, 16, DType::BF16}, Geometry{4, 1, 128, 32, DType::F16},
                            Geometry{2, 2, 20, 8, DType::F32}}) {
    std::mt19937 rng(static_cast<uint32_t>(g.headDim));
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    const int64_t kvRow = g.kvHeads * g.headDim, qRow = g.heads * g.headDim;
    std::vector<float> keys(static_cast<size_t>(promptLen * kvRow)), values(keys.size()), queries(static_cast<size_t>(promptLen * qRow));
    for (auto* v : {&keys, &values, &queries})
      for (float& x : *v) x = uniform(rng) * 2.0f;
    const int64_t maxBlocks = (promptLen + g.blockSize - 1) / g.blockSize, numBlocks = maxBlocks + 2;
    std::vector<int64_t> table(static_cast<size_t>(numBlocks));  // scattered: the first maxBlocks of a permutation
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng);
    table.resize(static_cast<size_t>(maxBlocks));
    for (CpuIsa isa : supportedIsas()) {
      useIsa(isa);
      // Runs the prompt as steps [bounds[i], bounds[i+1]) on `threads` threads; returns all rows.
      auto runChunked = [&](const std::vector<int64_t>& bounds, int threads) {
        omp_set_num_threads(threads);
        const std::vector<int64_t> shape{numBlocks, g.kvHeads, g.blockSize, g.headDim};
        Tensor keyCache = Tensor::zeros(g.cacheType, shape), valueCache = Tensor::zeros(g.cacheType, shape);
        for (int64_t i = 0; i < keyCache.numElements(); ++i) {
          storeElement(keyCache, i, std::numeric_limits<float>::quiet_NaN());
          storeElement(valueCache, i, std::numeric_limits<float>::quiet_NaN());
        }
        std::vector<float> out(static_cast<size_t>(promptLen * qRow), kUnwritten);
        for (size_t c = 0; c + 1 < bounds.size(); ++c) {
          const int64_t begin = bounds[c], end = bounds[c + 1];
          std::vector<int64_t> slots;
          for (int64_t pos = begin; pos < end; ++pos) slots.push_back(table[static_cast<size_t>(pos / g.blockSize)] * g.blockSize + pos % g.blockSize);
          cpu::KvCacheWriteArgs write;
          write.key = keys.data() + begin * kvRow;
          write.value = values.data() + begin * kvRow;
          write.keyCache = keyCache.mutableBytes();
          write.valueCache = valueCache.mutableBytes();
          write.cacheType = g.cacheType;
          write.slots = slots.data();
          write.numTokens = end - begin;
          write.numBlocks = numBlocks;
          write.kvHeads = g.kvHeads;
          write.blockSize = g.blockSize;
          write.headDim = g.headDim;
          cpu::kvCacheWrite(write);
          const std::vector<int64_t> lens{end}, starts{0, end - begin};
          cpu::PagedAttentionArgs a;
          a.query = queries.data() + begin * qRow;
          a.output = out.data() + begin * qRow;
          a.keyCache = keyCache.bytes();
          a.valueCache = valueCache.bytes();
          a.cacheType = g.cacheType;
          a.blockTables = table.data();
          a.contextLens = lens.data();
          a.queryStartLoc = starts.data();
          a.numTokens = end - begin;
          a.numSeqs = 1;
          a.maxBlocks = maxBlocks;
          a.numBlocks = numBlocks;
          a.heads = g.heads;
          a.kvHeads = g.kvHeads;
          a.blockSize = g.blockSize;
          a.headDim = g.headDim;
          a.scale = 0.125f;
          cpu::pagedAttention(a);
        }
        return out;
      };
      std::vector<int64_t> tokenByToken(static_cast<size_t>(promptLen + 1));
      std::iota(tokenByToken.begin(), tokenByToken.end(), 0);
      const std::vector<float> whole = runChunked({0, promptLen}, 1);
      const std::string what = std::string(cpu::cpuIsaName(isa)) + " " + std::to_string(g.heads) + "/" + std::to_string(g.kvHeads) + " heads, d" +
                               std::to_string(g.headDim) + " " + std::string(dtypeName(g.cacheType));
      expectSameBits(runChunked({0, 5, 38, 41, promptLen}, 2), whole, what + ": chunks 5, 33, 3, 34 vs one step");
      expectSameBits(runChunked({0, 1, 2, 50, promptLen}, 1), whole, what + ": chunks 1, 1, 48, 25 vs one step");
      expectSameBits(runChunked(tokenByToken, 2), whole, what + ": one token per step vs one step");
      expectSameBits(runChunked({0, promptLen}, 3), whole, what + ": one step on 3 threads vs 1");
    }
  }
}

TEST(CpuPagedAttentionInvariance, ThreadCountDoesNotChangeBits) {
  KernelSettingsGuard guard;
  const Geometry g{12, 12, 64, 16, DType::BF16};
  World w = makeWorld(g, {{500, 1}, {20, 1}, {300, 100}, {64, 1}, {1000, 1}, {7, 7}}, 9);
  const Step step = makeStep(w, allSeqs(w));
  for (CpuIsa isa : supportedIsas()) {
    useIsa(isa);
    omp_set_num_threads(1);
    const std::vector<float> one = runKernel(w, step);
    for (int threads : {2, 3, 4, 7}) {
      omp_set_num_threads(threads);
      expectSameBits(runKernel(w, step), one, std::string(cpu::cpuIsaName(isa)) + " " + std::to_string(threads) + " threads vs 1");
    }
  }
}

// ---- Errors -------------------------------------------------------------------------------------

TEST(CpuPagedAttentionErrors, BadTablesLengthsAndStartsNameTheSequence) {
  const Geometry g{4, 2, 16, 16, DType::F32};
  World w = makeWorld(g, {{20, 1}, {40, 3}}, 1);  // 2 + 3 blocks; numBlocks 8, maxBlocks 4
  const Step good = makeStep(w, allSeqs(w));
  auto errorFor = [&](const std::function<void(Step&)>& change) {
    Step s = good;
    change(s);
    std::vector<float> out(static_cast<size_t>(good.numTokens * g.heads * g.headDim), kUnwritten);
    std::string message = errorOf([&] { cpu::pagedAttention(argsFor(w, s, out.data())); });
    const bool untouched = std::all_of(out.begin(), out.end(), [](float x) { return x == kUnwritten; });
    EXPECT_EQ(untouched, !message.empty()) << (message.empty() ? "no output written" : "output written before the error: " + message);
    return message;
  };
  EXPECT_EQ(errorFor([](Step&) {}), "");
  EXPECT_EQ(errorFor([&](Step& s) { s.tables[static_cast<size_t>(w.maxBlocks + 2)] = 99; }), "sequence 1: block table entry 2 is 99, outside 0..7");
  EXPECT_EQ(errorFor([&](Step& s) { s.tables[1] = -1; }), "sequence 0: block table entry 1 is -1, outside 0..7");
  EXPECT_EQ(errorFor([&](Step& s) { s.tables[static_cast<size_t>(w.maxBlocks)] = 8; }), "sequence 1: block table entry 0 is 8, outside 0..7");
  EXPECT_EQ(errorFor([](Step& s) { s.contextLens[1] = 2; }), "sequence 1: 3 query tokens but context length 2");
  EXPECT_EQ(errorFor([](Step& s) { s.contextLens[0] = 65; }), "sequence 0: context length 65 needs more than 4 blocks");
  EXPECT_EQ(errorFor([](Step& s) { s.queryStartLoc[1] = 5; }), "sequence 1: -1 query tokens but context length 40");
  EXPECT_EQ(errorFor([](Step& s) { s.queryStartLoc[2] = 3; }), "query_start_loc must run from 0 to num_tokens (4), got 0 .. 3");
  // The same inputs through the reference op fail the same way.
  Step bad = good;
  bad.tables[static_cast<size_t>(w.maxBlocks + 2)] = 99;
  EXPECT_EQ(errorOf([&] { runReference(w, bad); }).find("sequence 1: block table entry 2 is 99, outside 0..7") != std::string::npos, true);
}

TEST(CpuPagedAttentionErrors, BadGeometry) {
  const Geometry g{4, 2, 16, 16, DType::F32};
  World w = makeWorld(g, {{20, 1}}, 1);
  const Step s = makeStep(w, allSeqs(w));
  std::vector<float> out(static_cast<size_t>(g.heads * g.headDim));
  cpu::PagedAttentionArgs a = argsFor(w, s, out.data());
  a.kvHeads = 3;
  EXPECT_NE(errorOf([&] { cpu::pagedAttention(a); }).find("must be a positive multiple of the kv heads (3)"), std::string::npos);
  a = argsFor(w, s, out.data());
  a.cacheType = DType::I32;
  EXPECT_NE(errorOf([&] { cpu::pagedAttention(a); }).find("must be f32, bf16 or f16, not i32"), std::string::npos);
}

// ---- kv_cache_write -------------------------------------------------------------------------------

TEST(CpuKvCacheWrite, MatchesReferenceOp) {
  KernelSettingsGuard guard;
  omp_set_num_threads(2);
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  for (DType type : {DType::F32, DType::BF16, DType::F16})
    for (int64_t numTokens : {5, 300}) {  // 300 tokens x 4 heads x 64 runs on threads
      const int64_t numBlocks = 40, kvHeads = 4, blockSize = 16, headDim = 64, row = kvHeads * headDim;
      const std::vector<int64_t> shape{numBlocks, kvHeads, blockSize, headDim};
      Tensor keyCache = Tensor::zeros(type, shape), valueCache = Tensor::zeros(type, shape);
      for (int64_t i = 0; i < keyCache.numElements(); ++i) {
        storeElement(keyCache, i, uniform(rng));
        storeElement(valueCache, i, uniform(rng));
      }
      std::vector<float> keys(static_cast<size_t>(numTokens * row)), values(keys.size());
      for (auto* v : {&keys, &values})
        for (float& x : *v) x = uniform(rng);
      std::vector<int64_t> slots(static_cast<size_t>(numTokens));
      std::uniform_int_distribution<int64_t> slot(0, numBlocks * blockSize - 1);
      for (int64_t& s : slots) s = slot(rng);
      slots[1] = -1;        // padding
      slots[3] = slots[0];  // written twice: the later token wins
      slots[4] = numBlocks * blockSize - 1;
      auto expected = runOp("kv_cache_write", {f32({numTokens, kvHeads, headDim}, keys), f32({numTokens, kvHeads, headDim}, values), keyCache, valueCache,
                                               i64({numTokens}, slots)},
                            {}, 2, false);
      // The kernel reads the keys as a slice of wider rows (stride 3 * row), the values densely.
      std::vector<float> wideKeys(static_cast<size_t>(numTokens * 3 * row), std::numeric_limits<float>::quiet_NaN());
      for (int64_t t = 0; t < numTokens; ++t) std::copy_n(keys.begin() + t * row, row, wideKeys.begin() + t * 3 * row);
      for (CpuIsa isa : supportedIsas()) {
        SCOPED_TRACE(std::string(cpu::cpuIsaName(isa)) + " " + std::string(dtypeName(type)) + " " + std::to_string(numTokens) + " tokens");
        useIsa(isa);
        Tensor kc = keyCache.convertTo(type), vc = valueCache.convertTo(type);  // fresh copies
        cpu::KvCacheWriteArgs a;
        a.key = wideKeys.data();
        a.keyTokenStride = 3 * row;
        a.value = values.data();
        a.keyCache = kc.mutableBytes();
        a.valueCache = vc.mutableBytes();
        a.cacheType = type;
        a.slots = slots.data();
        a.numTokens = numTokens;
        a.numBlocks = numBlocks;
        a.kvHeads = kvHeads;
        a.blockSize = blockSize;
        a.headDim = headDim;
        cpu::kvCacheWrite(a);
        EXPECT_EQ(floatsOf(kc), floatsOf(expected[0]));
        EXPECT_EQ(floatsOf(vc), floatsOf(expected[1]));
        EXPECT_NE(floatsOf(kc), floatsOf(keyCache));  // something was written
      }
    }
}

// Every instruction set rounds exactly like ir/HalfFloat.h: ties to even, subnormals, overflow to
// infinity, NaN (bf16 keeps the payload's top bits and sets the quiet bit; f16 becomes sign | 0x7e00).
TEST(CpuKvCacheWrite, RoundsLikeHalfFloat) {
  KernelSettingsGuard guard;
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> special = {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                                std::bit_cast<float>(0x7f800001u), std::bit_cast<float>(0xffc12345u), std::numeric_limits<float>::denorm_min(),
                                1e-40f, -1e-39f, 65504.0f, 65519.0f, 65520.0f, -65520.0f, 1e6f, 3.4e38f, 5.96e-8f, 2.98e-8f, 2.99e-8f,
                                6.1e-5f, 6.09e-5f, std::bit_cast<float>(0x3f808000u), std::bit_cast<float>(0x3f818000u),
                                std::bit_cast<float>(0x3f800fffu), std::bit_cast<float>(0x3f801000u), std::bit_cast<float>(0x3f803000u), 1.0f / 3.0f};
  std::mt19937 rng(8);
  std::uniform_int_distribution<uint32_t> bits;
  while (special.size() < 37 * 8) special.push_back(std::bit_cast<float>(bits(rng)));  // any bits, NaNs and subnormals included
  const int64_t headDim = 37, numTokens = 8;  // 37: whole vectors and a scalar tail
  for (DType type : {DType::BF16, DType::F16})
    for (CpuIsa isa : supportedIsas()) {
      SCOPED_TRACE(std::string(cpu::cpuIsaName(isa)) + " " + std::string(dtypeName(type)));
      useIsa(isa);
      std::vector<uint16_t> keyCache(static_cast<size_t>(numTokens * headDim)), valueCache(keyCache.size());
      std::vector<int64_t> slots(static_cast<size_t>(numTokens));
      std::iota(slots.begin(), slots.end(), 0);
      std::vector<float> negated(special);
      for (float& x : negated) x = -x;
      cpu::KvCacheWriteArgs a;
      a.key = special.data();
      a.value = negated.data();
      a.keyCache = keyCache.data();
      a.valueCache = valueCache.data();
      a.cacheType = type;
      a.slots = slots.data();
      a.numTokens = numTokens;
      a.numBlocks = 1;
      a.kvHeads = 1;
      a.blockSize = numTokens;
      a.headDim = headDim;
      cpu::kvCacheWrite(a);
      size_t wrong = 0;
      for (size_t i = 0; i < special.size(); ++i) {
        const uint16_t k = type == DType::BF16 ? floatToBf16(special[i]) : floatToF16(special[i]);
        const uint16_t v = type == DType::BF16 ? floatToBf16(negated[i]) : floatToF16(negated[i]);
        if (keyCache[i] != k || valueCache[i] != v) {
          if (++wrong <= 5)
            ADD_FAILURE() << "0x" << std::hex << std::bit_cast<uint32_t>(special[i]) << ": key 0x" << keyCache[i] << " (expected 0x" << k << "), value 0x"
                          << valueCache[i] << " (expected 0x" << v << ")";
        }
      }
      EXPECT_EQ(wrong, 0u);
    }
}

TEST(CpuKvCacheWrite, SlotBeyondTheCacheNamesTokenAndSlotAndWritesNothing) {
  const int64_t numBlocks = 4, blockSize = 16, headDim = 8;
  std::vector<float> keys(3 * headDim, 1.0f), values(3 * headDim, 2.0f), keyCache(static_cast<size_t>(numBlocks * blockSize * headDim), 0.0f),
      valueCache(keyCache.size(), 0.0f);
  std::vector<int64_t> slots = {5, -1, 64};
  cpu::KvCacheWriteArgs a;
  a.key = keys.data();
  a.value = values.data();
  a.keyCache = keyCache.data();
  a.valueCache = valueCache.data();
  a.slots = slots.data();
  a.numTokens = 3;
  a.numBlocks = numBlocks;
  a.kvHeads = 1;
  a.blockSize = blockSize;
  a.headDim = headDim;
  EXPECT_EQ(errorOf([&] { cpu::kvCacheWrite(a); }), "token 2 has slot 64 beyond the cache of 4 blocks of 16");
  EXPECT_TRUE(std::all_of(keyCache.begin(), keyCache.end(), [](float x) { return x == 0.0f; })) << "token 0 was written before the error";
  slots[2] = 63;
  EXPECT_EQ(errorOf([&] { cpu::kvCacheWrite(a); }), "");
  EXPECT_EQ(keyCache[5 * headDim], 1.0f);
  EXPECT_EQ(valueCache[63 * headDim + headDim - 1], 2.0f);
  a.cacheType = DType::I8;
  EXPECT_NE(errorOf([&] { cpu::kvCacheWrite(a); }).find("must be f32, bf16 or f16, not i8"), std::string::npos);
}

}  // namespace
}  // namespace pagedc
