// `pagedc kernels check` for the paged attention kernels: decode (one pass, or split-K with the
// reduction), prefill, and the reduction (checked behind a split decode), against the reference
// op paged_attention on the same rounded inputs.
//
// Each case is a batch over a shuffled paged cache: decode sequences whose context lengths sit on
// and around the block and partition boundaries (and several partitions long), prefill sequences
// (whole prompts over several query tiles, a chunk after a cached prefix, two tokens, none), plus a
// few random lengths. Unused cache rows, block table padding and query padding hold NaN, and
// outputs start as NaN, so reading a wrong key or writing a token the kernel does not own shows.
// A second case adds a sliding window, a softcap and a strided (fused QKV) query.
//
// Tolerances (outputs are convex combinations of values in [-1, 1]): f32 1e-5 absolute (f32
// accumulation against the reference's double weights: a few 1e-7, while a wrong or missing key
// moves an output by ~1/context_len); f16/bf16 1 ulp + 1e-5 (one rounding of the f32 result, plus
// f32 differences crossing a rounding boundary).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "codegen/KernelCheckSupport.h"
#include "ir/Error.h"
#include "templates/kernel_params.h"

namespace pagedc::kernelcheck {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Geometry {
  DType t = DType::F32, c = DType::F32;
  int64_t headDim = 0, blockSize = 0, qPerKv = 1, partition = 0, queryTile = 8;
};

struct Batch {
  struct Sequence {
    int64_t contextLen, queryLen;
  };
  std::string name;
  std::vector<Sequence> sequences;
  int64_t kvHeads = 2;
  int64_t slidingWindow = -1;
  float softcap = 0;
  float queryRange = 3;
  int64_t queryPadding = 0;  // heads' worth of elements between query tokens
};

Batch boundaryBatch(const Geometry& g, std::mt19937_64& rng) {
  const int64_t b = g.blockSize, p = g.partition > 0 ? g.partition : 2 * g.blockSize, q = g.queryTile;
  std::vector<int64_t> decodeLens = {1, b - 1, b, b + 1, p - 1, p, p + 1, 3 * p + 5};
  std::uniform_int_distribution<int64_t> anyLen(1, 4 * p);
  decodeLens.push_back(anyLen(rng));
  decodeLens.push_back(anyLen(rng));
  std::sort(decodeLens.begin(), decodeLens.end());
  decodeLens.erase(std::unique(decodeLens.begin(), decodeLens.end()), decodeLens.end());
  Batch batch;
  batch.name = "mixed batch";
  for (int64_t len : decodeLens)
    if (len >= 1) batch.sequences.push_back({len, 1});
  batch.sequences.push_back({2 * q + 3, 2 * q + 3});  // a whole prompt over three tiles
  batch.sequences.push_back({p + b + 5, q + 2});      // a chunk after a cached prefix
  batch.sequences.push_back({9, 0});                  // a sequence with nothing to compute
  batch.sequences.push_back({5, 5});                  // a prompt shorter than a tile
  batch.sequences.push_back({2 * b + 3, 2});          // two tokens (the prefill path)
  const int64_t randomContext = anyLen(rng);
  const int64_t randomQuery = std::uniform_int_distribution<int64_t>(2, std::max<int64_t>(2, std::min<int64_t>(randomContext, 2 * q + 1)))(rng);
  batch.sequences.push_back({std::max(randomContext, randomQuery), randomQuery});  // a random prefill chunk
  std::shuffle(batch.sequences.begin(), batch.sequences.end(), rng);
  return batch;
}

struct Inputs {
  int64_t numSeqs = 0, numTokens = 0, numHeads = 0, numBlocks = 0, maxBlocksPerSeq = 0, maxPartitions = 1, maxQueryLen = 0, queryTokenStride = 0;
  std::vector<float> query, keyCache, valueCache;
  std::vector<int64_t> blockTables, contextLens, queryStartLoc;
  std::vector<bool> isDecode;  // per token
};

Inputs makeInputs(const Geometry& g, const Batch& batch, std::mt19937_64& rng) {
  Inputs in;
  in.numSeqs = static_cast<int64_t>(batch.sequences.size());
  in.numHeads = batch.kvHeads * g.qPerKv;
  in.queryTokenStride = (in.numHeads + batch.queryPadding) * g.headDim;
  in.queryStartLoc.push_back(0);
  int64_t blocksUsed = 0;
  for (const auto& s : batch.sequences) {
    in.queryStartLoc.push_back(in.queryStartLoc.back() + s.queryLen);
    in.contextLens.push_back(s.contextLen);
    const int64_t blocks = (s.contextLen + g.blockSize - 1) / g.blockSize;
    in.maxBlocksPerSeq = std::max(in.maxBlocksPerSeq, blocks);
    in.maxQueryLen = std::max(in.maxQueryLen, s.queryLen);
    blocksUsed += blocks;
    for (int64_t t = 0; t < s.queryLen; ++t) in.isDecode.push_back(s.queryLen == 1);
    if (s.queryLen == 1 && g.partition > 0) {
      const int64_t visible = batch.slidingWindow > 0 ? std::min(s.contextLen, batch.slidingWindow) : s.contextLen;
      in.maxPartitions = std::max(in.maxPartitions, (visible + g.partition - 1) / g.partition);
    }
  }
  in.numTokens = in.queryStartLoc.back();
  // Shuffled physical blocks and a few spare blocks of NaN that the table padding points at.
  in.numBlocks = blocksUsed + 3;
  std::vector<int64_t> physical(static_cast<size_t>(in.numBlocks));
  std::iota(physical.begin(), physical.end(), 0);
  std::shuffle(physical.begin(), physical.end(), rng);
  in.blockTables.assign(static_cast<size_t>(in.numSeqs * in.maxBlocksPerSeq), physical.back());
  const int64_t blockElems = batch.kvHeads * g.blockSize * g.headDim;
  in.keyCache.assign(static_cast<size_t>(in.numBlocks * blockElems), kNaN);
  in.valueCache = in.keyCache;
  std::uniform_real_distribution<float> unit(-1, 1);
  size_t next = 0;
  for (int64_t s = 0; s < in.numSeqs; ++s) {
    const int64_t contextLen = batch.sequences[static_cast<size_t>(s)].contextLen;
    for (int64_t b = 0; b * g.blockSize < contextLen; ++b) {
      const int64_t block = physical[next++];
      in.blockTables[static_cast<size_t>(s * in.maxBlocksPerSeq + b)] = block;
      for (int64_t h = 0; h < batch.kvHeads; ++h)
        for (int64_t row = 0; row < g.blockSize && b * g.blockSize + row < contextLen; ++row)
          for (int64_t d = 0; d < g.headDim; ++d) {
            const size_t at = static_cast<size_t>(((block * batch.kvHeads + h) * g.blockSize + row) * g.headDim + d);
            in.keyCache[at] = roundTo(g.c, unit(rng));
            in.valueCache[at] = roundTo(g.c, unit(rng));
          }
    }
  }
  std::uniform_real_distribution<float> queryDist(-batch.queryRange, batch.queryRange);
  in.query.assign(static_cast<size_t>(in.numTokens * in.queryTokenStride), kNaN);
  for (int64_t t = 0; t < in.numTokens; ++t)
    for (int64_t i = 0; i < in.numHeads * g.headDim; ++i) in.query[static_cast<size_t>(t * in.queryTokenStride + i)] = roundTo(g.t, queryDist(rng));
  return in;
}

std::vector<float> referenceOutput(const Geometry& g, const Batch& batch, const Inputs& in, float scale) {
  std::vector<float> dense(static_cast<size_t>(in.numTokens * in.numHeads * g.headDim));
  for (int64_t t = 0; t < in.numTokens; ++t)
    std::copy_n(in.query.begin() + t * in.queryTokenStride, in.numHeads * g.headDim, dense.begin() + t * in.numHeads * g.headDim);
  const std::vector<int64_t> cacheShape = {in.numBlocks, batch.kvHeads, g.blockSize, g.headDim};
  AttrMap attrs = {{"scale", static_cast<double>(scale)}, {"softcap", static_cast<double>(batch.softcap)}, {"sliding_window", batch.slidingWindow}};
  auto out = runReferenceOp("paged_attention",
                            {f32Tensor({in.numTokens, in.numHeads, g.headDim}, dense), f32Tensor(cacheShape, in.keyCache),
                             f32Tensor(cacheShape, in.valueCache), i64Tensor({in.numSeqs, in.maxBlocksPerSeq}, in.blockTables),
                             i64Tensor({in.numSeqs}, in.contextLens), i64Tensor({in.numSeqs + 1}, in.queryStartLoc)},
                            attrs);
  return floatsOf(out.at(0));
}

// Device copies of a batch's inputs, the output (NaN) and the split-K scratch (NaN).
struct DeviceBatch {
  GuardedBuffer query, keyCache, valueCache, blockTables, contextLens, queryStartLoc, out, partialOut, partialMax, partialSum;
  PagedAttentionParams params{};

  DeviceBatch(const Geometry& g, const Batch& batch, const Inputs& in, float scale) {
    const size_t scratchRows = static_cast<size_t>(in.numSeqs * in.numHeads * in.maxPartitions);
    query = GuardedBuffer::ofFloats(g.t, in.query);
    keyCache = GuardedBuffer::ofFloats(g.c, in.keyCache);
    valueCache = GuardedBuffer::ofFloats(g.c, in.valueCache);
    blockTables = GuardedBuffer::ofInts(in.blockTables);
    contextLens = GuardedBuffer::ofInts(in.contextLens);
    queryStartLoc = GuardedBuffer::ofInts(in.queryStartLoc);
    out = GuardedBuffer::ofFloats(g.t, std::vector<float>(static_cast<size_t>(in.numTokens * in.numHeads * g.headDim), kNaN));
    partialOut = GuardedBuffer::ofFloats(DType::F32, std::vector<float>(scratchRows * static_cast<size_t>(g.headDim), kNaN));
    partialMax = GuardedBuffer::ofFloats(DType::F32, std::vector<float>(scratchRows, kNaN));
    partialSum = GuardedBuffer::ofFloats(DType::F32, std::vector<float>(scratchRows, kNaN));
    params.out = out.data();
    params.query = query.data();
    params.key_cache = keyCache.data();
    params.value_cache = valueCache.data();
    params.block_tables = static_cast<const i64*>(blockTables.data());
    params.context_lens = static_cast<const i64*>(contextLens.data());
    params.query_start_loc = static_cast<const i64*>(queryStartLoc.data());
    params.partial_out = static_cast<float*>(partialOut.data());
    params.partial_max = static_cast<float*>(partialMax.data());
    params.partial_sum = static_cast<float*>(partialSum.data());
    params.query_token_stride = in.queryTokenStride;
    params.num_seqs = in.numSeqs;
    params.num_heads = in.numHeads;
    params.num_kv_heads = batch.kvHeads;
    params.max_blocks_per_seq = in.maxBlocksPerSeq;
    params.sliding_window = batch.slidingWindow;
    params.partition_size = g.partition;
    params.max_partitions = in.maxPartitions;
    params.skip_single_token = 0;
    params.scale = scale;
    params.softcap = batch.softcap;
  }
};

// Which kernels a check launches, with their thread counts.
struct Launches {
  const LoadedKernel* decode = nullptr;
  unsigned decodeThreads = 0;
  const LoadedKernel* reduce = nullptr;
  unsigned reduceThreads = 0;
  const LoadedKernel* prefill = nullptr;
  unsigned prefillThreads = 0;
};

void runDecode(const Launches& k, const Geometry& g, DeviceBatch& dev, const Inputs& in, const Schedule& schedule) {
  k.decode->launch({static_cast<unsigned>(dev.params.num_kv_heads), static_cast<unsigned>(in.numSeqs),
                    static_cast<unsigned>(g.partition > 0 ? in.maxPartitions : 1)},
                   k.decodeThreads, &dev.params, schedule);
  if (g.partition > 0) k.reduce->launch({static_cast<unsigned>(in.numHeads), static_cast<unsigned>(in.numSeqs), 1}, k.reduceThreads, &dev.params, schedule);
}

void runPrefill(const Launches& k, const Geometry& g, DeviceBatch& dev, const Inputs& in, bool skipSingleToken, const Schedule& schedule) {
  dev.params.skip_single_token = skipSingleToken ? 1 : 0;
  const int64_t tiles = std::max<int64_t>(1, (in.maxQueryLen + g.queryTile - 1) / g.queryTile);
  k.prefill->launch({static_cast<unsigned>(dev.params.num_kv_heads), static_cast<unsigned>(in.numSeqs), static_cast<unsigned>(tiles)}, k.prefillThreads,
                    &dev.params, schedule);
}

// The reference rows of the tokens `keep` selects, NaN (untouched) elsewhere.
std::vector<float> onlyTokens(const std::vector<float>& want, const Inputs& in, int64_t rowElems, bool decodeTokens) {
  std::vector<float> out(want.size(), kNaN);
  for (int64_t t = 0; t < in.numTokens; ++t)
    if (in.isDecode[static_cast<size_t>(t)] == decodeTokens) std::copy_n(want.begin() + t * rowElems, rowElems, out.begin() + t * rowElems);
  return out;
}

}  // namespace

bool checkAttentionKernel(CheckContext& c) {
  const KernelKey& key = c.key();
  const std::string& kernel = key.kernel;
  if (kernel != "paged_attention_decode" && kernel != "paged_attention_prefill" && kernel != "paged_attention_reduce") return false;

  Geometry g;
  g.t = floatDType(key.param("dtype"));
  g.headDim = key.intParam("head_dim");
  Launches k;
  const std::string threads = key.param("threads");
  if (kernel == "paged_attention_reduce") {
    // The reduction combines what a split decode wrote: check it behind one (same T, C = T).
    g.c = g.t;
    g.blockSize = 16;
    g.partition = 32;
    const KernelKey decode = companionKey("paged_attention_decode", {{"dtype", key.param("dtype")}, {"cache", key.param("dtype")},
                                                                      {"head_dim", key.param("head_dim")}, {"block", "16"}, {"partition", "32"}});
    g.qPerKv = decode.intParam("q_per_kv");
    k.decode = &c.kernel(decode, sizeof(PagedAttentionParams));
    k.decodeThreads = static_cast<unsigned>(decode.intParam("threads"));
    k.reduce = &c.kernel(key, sizeof(PagedAttentionParams));
    k.reduceThreads = static_cast<unsigned>(key.intParam("threads"));
  } else {
    g.c = floatDType(key.param("cache"));
    g.blockSize = key.intParam("block");
    g.qPerKv = key.intParam("q_per_kv");
    if (kernel == "paged_attention_decode") {
      g.partition = key.intParam("partition");
      k.decode = &c.kernel(key, sizeof(PagedAttentionParams));
      k.decodeThreads = static_cast<unsigned>(key.intParam("threads"));
      if (g.partition > 0) {
        const KernelKey reduce = companionKey("paged_attention_reduce", {{"dtype", key.param("dtype")}, {"head_dim", key.param("head_dim")}, {"threads", threads}});
        k.reduce = &c.kernel(reduce, sizeof(PagedAttentionParams));
        k.reduceThreads = static_cast<unsigned>(reduce.intParam("threads"));
      }
    } else {
      g.queryTile = key.intParam("query_tile");
      k.prefill = &c.kernel(key, sizeof(PagedAttentionParams));
      k.prefillThreads = static_cast<unsigned>(key.intParam("threads"));
    }
  }

  const Tolerance tolerance = g.t == DType::F32 ? Tolerance{0, 1e-5} : Tolerance{1, 1e-5};
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(g.headDim)));
  Batch plain = boundaryBatch(g, c.rng());
  Batch windowed = boundaryBatch(g, c.rng());
  windowed.name = "window+softcap+strided q";
  windowed.kvHeads = 1;
  windowed.slidingWindow = g.blockSize + 3;
  windowed.softcap = 2.5f;
  windowed.queryRange = 8;
  windowed.queryPadding = 2;

  for (const Batch& batch : {plain, windowed}) {
    const Inputs in = makeInputs(g, batch, c.rng());
    const std::vector<float> want = referenceOutput(g, batch, in, scale);
    const int64_t rowElems = in.numHeads * g.headDim;
    if (k.decode) {
      // Decode (+ reduce) writes exactly the decode tokens and leaves the others untouched.
      c.verify(batch.name + " (decode tokens)", {{"out", g.t, onlyTokens(want, in, rowElems, true), tolerance}}, [&](const Schedule& schedule) {
        DeviceBatch dev(g, batch, in, scale);
        runDecode(k, g, dev, in, schedule);
        return RunOutputs{{"out", dev.out.readFloats(g.t, want.size())}};
      });
    } else {
      c.verify(batch.name, {{"out", g.t, want, tolerance}}, [&](const Schedule& schedule) {
        DeviceBatch dev(g, batch, in, scale);
        runPrefill(k, g, dev, in, false, schedule);
        return RunOutputs{{"out", dev.out.readFloats(g.t, want.size())}};
      });
      // With skip_single_token the decode tokens are left to the decode kernel.
      c.verify(batch.name + " (skip decode)", {{"out", g.t, onlyTokens(want, in, rowElems, false), tolerance}}, [&](const Schedule& schedule) {
        DeviceBatch dev(g, batch, in, scale);
        runPrefill(k, g, dev, in, true, schedule);
        return RunOutputs{{"out", dev.out.readFloats(g.t, want.size())}};
      });
    }
  }
  return true;
}

}  // namespace pagedc::kernelcheck
