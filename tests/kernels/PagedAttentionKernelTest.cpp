// The paged attention kernels (templates/paged_attention.cuh) on the CPU emulation, against the
// reference op paged_attention (ir/ops/PagedAttentionOps.cpp) on the same (rounded) inputs.
//
// Every case is a batch of sequences over a shuffled paged cache whose unused blocks (and the block
// table entries past each sequence) hold NaN, so reading a wrong block or key shows in the output.
// Each batch runs two ways: the decode kernel (+ the split-K reduction) for the query_len == 1
// sequences then the prefill kernel with skip_single_token for the rest; and the prefill kernel
// alone for everything. Each way runs under two emulator schedules, and the two outputs must be
// bitwise equal (no kernel uses atomics, so any difference is a race).
//
// Tolerances (|got - want| <= ulps * ulp_T(|want|) + absolute, T the output type): outputs are
// convex combinations of values in [-1, 1], so they lie in [-1, 1].
//  - f32: absolute 1e-5. The kernel accumulates in f32 with one rescale per chunk; the reference sums
//    f32 products of double weights; both errors are a few 1e-7 for these context lengths, while a
//    missing, extra or wrong key moves an output by ~1/context_len >= 1e-3.
//  - f16 / bf16: 1 ulp of T at the reference value + 1e-5. The kernel rounds its f32 result once
//    (half an ulp); the other half ulp covers the f32 differences above pushing a value across a
//    rounding boundary, and results near a binade edge.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../unit/OpTestSupport.h"
#include "PagedAttentionTestSupport.h"
#include "paged_attention.cuh"

using namespace pagedc;
using namespace pagedc::pagedattentiontest;

namespace {

// A batch: each sequence's context length and how many of its last positions are query tokens.
struct Batch {
  struct Sequence {
    int64_t contextLen, queryLen;
  };
  std::vector<Sequence> sequences;
  int64_t kvHeads = 2;
  int64_t slidingWindow = -1;
  float softcap = 0;
  float queryRange = 3;     // query values uniform in [-queryRange, queryRange): larger = peakier softmax
  int64_t queryPadding = 0; // extra heads' worth of elements between query tokens (a fused QKV row)
  std::string name;
};

// Decode sequences whose context lengths sit on the block and partition boundaries, several
// partitions long, and prefill sequences: whole prompts, chunks of a longer context, single
// tokens, and an empty one.
Batch boundaryBatch(int blockSize, int partitionSize, int queryTile) {
  const int ps = partitionSize > 0 ? partitionSize : 2 * blockSize;
  std::vector<int64_t> decodeLens = {1, blockSize - 1, blockSize, blockSize + 1, ps - 1, ps, ps + 1, 3 * ps + 5};
  std::sort(decodeLens.begin(), decodeLens.end());
  decodeLens.erase(std::unique(decodeLens.begin(), decodeLens.end()), decodeLens.end());
  Batch batch;
  batch.name = "boundaries";
  for (int64_t len : decodeLens)
    if (len >= 1) batch.sequences.push_back({len, 1});
  batch.sequences.push_back({2 * queryTile + 3, 2 * queryTile + 3});      // a whole prompt, three tiles
  batch.sequences.push_back({std::max(ps + blockSize + 5, 2 * queryTile + 5), queryTile + 2});  // a chunk after a cached prefix
  batch.sequences.push_back({9, 0});                                        // nothing to compute
  batch.sequences.push_back({5, 5});                                        // a prompt shorter than a tile
  batch.sequences.push_back({2 * blockSize + 3, 2});                        // two tokens (prefill path)
  return batch;
}

// The exact extent of everything a launch reads and writes, so guard pages catch any stray access.
struct Inputs {
  int64_t numTokens = 0, numHeads = 0, numBlocks = 0, maxBlocksPerSeq = 0, maxPartitions = 1, maxQueryLen = 0;
  int64_t queryTokenStride = 0;
  std::vector<float> query;              // [numTokens, queryTokenStride], rounded to T (NaN padding)
  std::vector<float> keyCache, valueCache;  // [numBlocks, kvHeads, blockSize, headDim], rounded to C
  std::vector<i64> blockTables, contextLens, queryStartLoc;  // i64 (long long), as the kernels read them
  std::vector<bool> isDecode;            // per token: its sequence has query_len == 1
};

template <int HEAD_DIM, int BLOCK_SIZE, int Q_PER_KV, class T, class C>
Inputs makeInputs(const Batch& batch, int partitionSize, std::mt19937& rng) {
  Inputs in;
  const int64_t numSeqs = static_cast<int64_t>(batch.sequences.size());
  in.numHeads = batch.kvHeads * Q_PER_KV;
  in.queryTokenStride = (in.numHeads + batch.queryPadding) * HEAD_DIM;
  in.queryStartLoc.push_back(0);
  int64_t blocksUsed = 0;
  for (const auto& s : batch.sequences) {
    in.queryStartLoc.push_back(in.queryStartLoc.back() + s.queryLen);
    in.contextLens.push_back(s.contextLen);
    const int64_t blocks = (s.contextLen + BLOCK_SIZE - 1) / BLOCK_SIZE;
    in.maxBlocksPerSeq = std::max(in.maxBlocksPerSeq, blocks);
    in.maxQueryLen = std::max(in.maxQueryLen, s.queryLen);
    blocksUsed += blocks;
    for (int64_t t = 0; t < s.queryLen; ++t) in.isDecode.push_back(s.queryLen == 1);
    if (s.queryLen == 1 && partitionSize > 0) {
      const int64_t visible = batch.slidingWindow > 0 ? std::min(s.contextLen, batch.slidingWindow) : s.contextLen;
      in.maxPartitions = std::max(in.maxPartitions, (visible + partitionSize - 1) / partitionSize);
    }
  }
  in.numTokens = in.queryStartLoc.back();
  // Physical blocks in shuffled order, plus spare blocks of NaN that table padding points at.
  const int64_t spareBlocks = 3;
  in.numBlocks = blocksUsed + spareBlocks;
  std::vector<int64_t> physical(static_cast<size_t>(in.numBlocks));
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), rng);
  in.blockTables.assign(static_cast<size_t>(numSeqs * in.maxBlocksPerSeq), physical.back());
  const int64_t blockElems = batch.kvHeads * BLOCK_SIZE * HEAD_DIM;
  in.keyCache.assign(static_cast<size_t>(in.numBlocks * blockElems), std::numeric_limits<float>::quiet_NaN());
  in.valueCache = in.keyCache;
  int64_t next = 0;
  for (int64_t s = 0; s < numSeqs; ++s) {
    const int64_t contextLen = batch.sequences[static_cast<size_t>(s)].contextLen;
    for (int64_t b = 0; b * BLOCK_SIZE < contextLen; ++b) {
      const int64_t block = physical[static_cast<size_t>(next++)];
      in.blockTables[static_cast<size_t>(s * in.maxBlocksPerSeq + b)] = block;
      // Fill only the rows holding keys of the context: the rest of the last block stays NaN.
      for (int64_t h = 0; h < batch.kvHeads; ++h)
        for (int64_t row = 0; row < BLOCK_SIZE && b * BLOCK_SIZE + row < contextLen; ++row)
          for (int64_t d = 0; d < HEAD_DIM; ++d) {
            const size_t at = static_cast<size_t>(((block * batch.kvHeads + h) * BLOCK_SIZE + row) * HEAD_DIM + d);
            in.keyCache[at] = randomRounded<C>(rng, -1, 1);
            in.valueCache[at] = randomRounded<C>(rng, -1, 1);
          }
    }
  }
  in.query.assign(static_cast<size_t>(in.numTokens * in.queryTokenStride), std::numeric_limits<float>::quiet_NaN());
  for (int64_t t = 0; t < in.numTokens; ++t)
    for (int64_t i = 0; i < in.numHeads * HEAD_DIM; ++i)
      in.query[static_cast<size_t>(t * in.queryTokenStride + i)] = randomRounded<T>(rng, -batch.queryRange, batch.queryRange);
  return in;
}

// The reference op on the same rounded inputs: [numTokens, numHeads, headDim] f32.
template <int HEAD_DIM, int BLOCK_SIZE>
std::vector<float> referenceOutput(const Batch& batch, const Inputs& in, float scale) {
  std::vector<float> denseQuery(static_cast<size_t>(in.numTokens * in.numHeads * HEAD_DIM));
  for (int64_t t = 0; t < in.numTokens; ++t)
    std::copy_n(in.query.begin() + t * in.queryTokenStride, in.numHeads * HEAD_DIM, denseQuery.begin() + t * in.numHeads * HEAD_DIM);
  const int64_t numSeqs = static_cast<int64_t>(batch.sequences.size());
  const std::vector<int64_t> cacheShape = {in.numBlocks, batch.kvHeads, BLOCK_SIZE, HEAD_DIM};
  AttrMap attrs = {{"scale", static_cast<double>(scale)}, {"softcap", static_cast<double>(batch.softcap)}, {"sliding_window", batch.slidingWindow}};
  auto out = test::runOp("paged_attention",
                         {Tensor::fromValues(DType::F32, {in.numTokens, in.numHeads, HEAD_DIM}, denseQuery),
                          Tensor::fromValues(DType::F32, cacheShape, in.keyCache), Tensor::fromValues(DType::F32, cacheShape, in.valueCache),
                          Tensor::fromValues(DType::I64, {numSeqs, in.maxBlocksPerSeq}, in.blockTables),
                          Tensor::fromValues(DType::I64, {numSeqs}, in.contextLens), Tensor::fromValues(DType::I64, {numSeqs + 1}, in.queryStartLoc)},
                         attrs);
  return test::floatsOf(out.at(0));
}

// One kernel variant family: the decode kernel with PARTITION_SIZE (0: one pass), the reduction
// when split, and the prefill kernel with QUERY_TILE, sharing the other parameters.
template <class T, class C, int HEAD_DIM, int BLOCK_SIZE, int Q_PER_KV, int NUM_THREADS, int PARTITION_SIZE, int QUERY_TILE>
struct Variant {
  static std::string name() {
    std::ostringstream s;
    s << "T=" << Element<T>::name << " C=" << Element<C>::name << " head_dim=" << HEAD_DIM << " block=" << BLOCK_SIZE << " q_per_kv=" << Q_PER_KV
      << " threads=" << NUM_THREADS << " partition=" << PARTITION_SIZE << " query_tile=" << QUERY_TILE;
    return s.str();
  }

  // Device copies of the inputs plus the output (NaN) and the split-K scratch (NaN).
  struct Device {
    DeviceArray<T> query;
    DeviceArray<C> keyCache, valueCache;
    DeviceArray<i64> blockTables, contextLens, queryStartLoc;
    DeviceArray<T> out;
    DeviceArray<float> partialOut, partialMax, partialSum;
    PagedAttentionParams params{};

    Device(const Batch& batch, const Inputs& in, float scale)
        : query(toStorage<T>(in.query)),
          keyCache(toStorage<C>(in.keyCache)),
          valueCache(toStorage<C>(in.valueCache)),
          blockTables(in.blockTables),
          contextLens(in.contextLens),
          queryStartLoc(in.queryStartLoc),
          out(toStorage<T>(std::vector<float>(static_cast<size_t>(in.numTokens * in.numHeads * HEAD_DIM), std::numeric_limits<float>::quiet_NaN()))),
          partialOut(std::vector<float>(static_cast<size_t>(scratchRows(batch, in) * HEAD_DIM), std::numeric_limits<float>::quiet_NaN())),
          partialMax(std::vector<float>(static_cast<size_t>(scratchRows(batch, in)), std::numeric_limits<float>::quiet_NaN())),
          partialSum(std::vector<float>(static_cast<size_t>(scratchRows(batch, in)), std::numeric_limits<float>::quiet_NaN())) {
      params.out = out.get();
      params.query = query.get();
      params.key_cache = keyCache.get();
      params.value_cache = valueCache.get();
      params.block_tables = blockTables.get();
      params.context_lens = contextLens.get();
      params.query_start_loc = queryStartLoc.get();
      params.partial_out = partialOut.get();
      params.partial_max = partialMax.get();
      params.partial_sum = partialSum.get();
      params.query_token_stride = in.queryTokenStride;
      params.num_seqs = static_cast<i64>(batch.sequences.size());
      params.num_heads = in.numHeads;
      params.num_kv_heads = batch.kvHeads;
      params.max_blocks_per_seq = in.maxBlocksPerSeq;
      params.sliding_window = batch.slidingWindow;
      params.partition_size = PARTITION_SIZE;
      params.max_partitions = in.maxPartitions;
      params.skip_single_token = 0;
      params.scale = scale;
      params.softcap = batch.softcap;
    }
    static int64_t scratchRows(const Batch& batch, const Inputs& in) {
      return static_cast<int64_t>(batch.sequences.size()) * in.numHeads * in.maxPartitions;
    }
  };

  static void launchDecode(Device& dev, const Inputs& in, const emu::LaunchOptions& options) {
    const int64_t numSeqs = dev.params.num_seqs;
    emu::launch(paged_attention_decode<T, C, HEAD_DIM, BLOCK_SIZE, Q_PER_KV, NUM_THREADS, PARTITION_SIZE>,
                dim3(static_cast<unsigned>(dev.params.num_kv_heads), static_cast<unsigned>(numSeqs), static_cast<unsigned>(PARTITION_SIZE > 0 ? in.maxPartitions : 1)),
                dim3(NUM_THREADS), dev.params, options);
    if constexpr (PARTITION_SIZE > 0)
      emu::launch(paged_attention_reduce<T, HEAD_DIM, NUM_THREADS>, dim3(static_cast<unsigned>(in.numHeads), static_cast<unsigned>(numSeqs)), dim3(NUM_THREADS),
                  dev.params, options);
  }
  static void launchPrefill(Device& dev, const Inputs& in, bool skipSingleToken, const emu::LaunchOptions& options) {
    dev.params.skip_single_token = skipSingleToken ? 1 : 0;
    const int64_t tiles = (in.maxQueryLen + QUERY_TILE - 1) / QUERY_TILE;
    emu::launch(paged_attention_prefill<T, C, HEAD_DIM, BLOCK_SIZE, Q_PER_KV, NUM_THREADS, QUERY_TILE>,
                dim3(static_cast<unsigned>(dev.params.num_kv_heads), static_cast<unsigned>(dev.params.num_seqs), static_cast<unsigned>(std::max<int64_t>(1, tiles))),
                dim3(NUM_THREADS), dev.params, options);
  }

  // Runs the batch both ways under two schedules; checks each against the reference and the
  // schedules against each other.
  static void check(Batch batch, uint32_t seed) {
    SCOPED_TRACE(name() + " batch=" + batch.name);
    std::mt19937 rng(seed);
    const Inputs in = makeInputs<HEAD_DIM, BLOCK_SIZE, Q_PER_KV, T, C>(batch, PARTITION_SIZE, rng);
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(HEAD_DIM)));
    const std::vector<float> want = referenceOutput<HEAD_DIM, BLOCK_SIZE>(batch, in, scale);
    const Tolerance tolerance = std::is_same_v<T, float> ? Tolerance{0, 1e-5} : Tolerance{1, 1e-5};
    const int64_t rowElems = in.numHeads * HEAD_DIM;

    const emu::LaunchOptions scheduleA{emu::Schedule::Forward, 0};
    const emu::LaunchOptions scheduleB{seed % 2 ? emu::Schedule::Reverse : emu::Schedule::Shuffled, seed};
    std::vector<float> splitOut[2], prefillOut[2];
    int which = 0;
    for (const emu::LaunchOptions& options : {scheduleA, scheduleB}) {
      SCOPED_TRACE("schedule " + std::to_string(static_cast<int>(options.schedule)));
      {
        // Decode (+ reduce) first: it must write exactly the decode tokens.
        Device dev(batch, in, scale);
        launchDecode(dev, in, options);
        std::vector<float> afterDecode = widen(dev.out.read());
        std::vector<float> decodeWant(afterDecode.size(), std::numeric_limits<float>::quiet_NaN());
        for (int64_t t = 0; t < in.numTokens; ++t)
          if (in.isDecode[static_cast<size_t>(t)]) std::copy_n(want.begin() + t * rowElems, rowElems, decodeWant.begin() + t * rowElems);
        expectClose<T>(afterDecode, decodeWant, tolerance, "decode kernel (decode tokens written, others untouched)");
        launchPrefill(dev, in, /*skipSingleToken=*/true, options);
        splitOut[which] = widen(dev.out.read());
        expectClose<T>(splitOut[which], want, tolerance, "decode + prefill with skip_single_token");
      }
      {
        Device dev(batch, in, scale);
        launchPrefill(dev, in, /*skipSingleToken=*/false, options);
        prefillOut[which] = widen(dev.out.read());
        expectClose<T>(prefillOut[which], want, tolerance, "prefill kernel alone");
      }
      ++which;
    }
    expectSameBits(splitOut[1], splitOut[0], "decode + prefill: schedules disagree (a race)");
    expectSameBits(prefillOut[1], prefillOut[0], "prefill alone: schedules disagree (a race)");
  }

  // The boundary batch, then with a sliding window, then with a softcap and a peaky softmax.
  static void checkAll(uint32_t seed) {
    Batch batch = boundaryBatch(BLOCK_SIZE, PARTITION_SIZE, QUERY_TILE);
    check(batch, seed);
    Batch windowed = batch;
    windowed.name = "sliding window";
    windowed.slidingWindow = BLOCK_SIZE + 3;
    windowed.queryPadding = 2;  // and a strided query, as a fused QKV projection leaves it
    check(windowed, seed + 1);
    Batch capped = batch;
    capped.name = "softcap";
    capped.softcap = 2.5f;
    capped.queryRange = 8;
    check(capped, seed + 2);
  }
};

// A covering set of instantiations (the full grid is compiled through NVRTC elsewhere): every dtype
// (and a T != C pair), head dims 64/80/96/112/128/256 and the unusual 72, 40 and 34, block sizes 1, 8,
// 16, 32, 128, GQA ratios 1, 2, 3, 4, 8, thread counts 64 to 512 (96 too), one-pass and split
// decode, query tiles from 3 to 16, tiles with more rows than slots (several passes) and fewer
// (key groups merged).

TEST(PagedAttentionKernel, F32HeadDim64Block16Mha) { Variant<float, float, 64, 16, 1, 128, 32, 8>::checkAll(11); }
TEST(PagedAttentionKernel, F16HeadDim128Block16Gqa4) { Variant<f16, f16, 128, 16, 4, 128, 64, 16>::checkAll(21); }
TEST(PagedAttentionKernel, Bf16HeadDim80Block8Gqa2OnePass) { Variant<bf16, bf16, 80, 8, 2, 64, 0, 4>::checkAll(31); }
TEST(PagedAttentionKernel, F16HeadDim96Block32Gqa8SeveralPasses) { Variant<f16, f16, 96, 32, 8, 256, 64, 8>::checkAll(41); }
TEST(PagedAttentionKernel, F32ActivationsF16CacheHeadDim112Gqa3) { Variant<float, f16, 112, 16, 3, 96, 32, 5>::checkAll(51); }
TEST(PagedAttentionKernel, Bf16HeadDim256Block16Mha) { Variant<bf16, bf16, 256, 16, 1, 128, 128, 16>::checkAll(61); }
TEST(PagedAttentionKernel, F16HeadDim72Block8Gqa2) { Variant<f16, f16, 72, 8, 2, 128, 16, 3>::checkAll(71); }
TEST(PagedAttentionKernel, F32HeadDim40Block1Gqa2OnePass) { Variant<float, float, 40, 1, 2, 64, 0, 16>::checkAll(81); }
TEST(PagedAttentionKernel, F16ActivationsBf16CacheBlock128Gqa8Threads512) { Variant<f16, bf16, 64, 128, 8, 512, 256, 4>::checkAll(91); }
// head_dim / 2 odd: the row's 17 units do not split evenly over its lanes.
TEST(PagedAttentionKernel, Bf16HeadDim34UnevenLaneSplit) { Variant<bf16, bf16, 34, 16, 2, 64, 32, 4>::checkAll(101); }

}  // namespace
