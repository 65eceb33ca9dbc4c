// `pagedc kernels check` for every kernel other than paged attention. References: the IR ops
// (kv_cache_write, rms_norm, layer_norm, rope, silu / gelu / Relu / gated_act / Mul, Gather,
// Transpose, Add / Sub / Mul / Div, Cast) on the same rounded inputs, and for the kernels with no
// IR op (copy_blocks, swap_blocks, softmax_rows, argmax_rows, top_k_top_p_filter) the contract of
// kernel_params.h computed directly (in double where it matters).
//
// Tolerances, per output dtype (ulps of the output type at the reference value + absolute):
//  - exact: data movement (kv_cache_write, block copies, embedding, strided_copy), elementwise
//    arithmetic and casts (one f32 operation rounded once, as the reference rounds it), argmax and
//    the top-k/top-p filter (top-p thresholds sit halfway between cumulative masses);
//  - norms: f32 64 ulps + 1e-6 (f32 row statistics against double ones), 16-bit 1 ulp;
//  - rope: f32 2 ulps + 1e-6, 16-bit 1 ulp; activations: f32 8 ulps + 1e-30 (f32 expf / erff
//    against double), 16-bit 1 ulp; softmax: 64 f32 ulps + 1e-30 (expf and the f32 row sum).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "codegen/KernelCheckSupport.h"
#include "ir/Error.h"
#include "runtime/Sampler.h"
#include "templates/kernel_params.h"

namespace pagedc::kernelcheck {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

unsigned threadsOf(const KernelKey& key) { return static_cast<unsigned>(key.intParam("threads")); }
unsigned gridFor(int64_t count, unsigned threads) { return static_cast<unsigned>(std::max<int64_t>(1, (count + threads - 1) / threads)); }

Tolerance sixteenBitOr(DType dtype, Tolerance f32) { return dtype == DType::F32 ? f32 : Tolerance{1, 0}; }
const Tolerance kExact{0, 0};

std::vector<float> rounded(DType dtype, std::vector<float> values) {
  for (float& v : values) v = roundTo(dtype, v);
  return values;
}

std::vector<float> bytesAsFloats(const std::vector<uint8_t>& bytes) { return std::vector<float>(bytes.begin(), bytes.end()); }

std::vector<uint8_t> randomBytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// ---- KV cache -------------------------------------------------------------------------------------

void checkKvCacheWrite(CheckContext& c) {
  const KernelKey& key = c.key();
  const DType t = floatDType(key.param("dtype")), cache = floatDType(key.param("cache"));
  const LoadedKernel& kernel = c.kernel(key, sizeof(KvCacheWriteParams));
  const int64_t tokens = 13, kvHeads = 3, headDim = 40, blockSize = 4, numBlocks = 5;
  const int64_t row = kvHeads * headDim, tokenStride = row + 16;  // rows of a fused projection
  auto& rng = c.rng();
  const std::vector<float> keyRows = randomRounded(rng, t, static_cast<size_t>(tokens * tokenStride), -3, 3);
  const std::vector<float> valueRows = randomRounded(rng, t, static_cast<size_t>(tokens * tokenStride), -3, 3);
  const size_t cacheSize = static_cast<size_t>(numBlocks * kvHeads * blockSize * headDim);
  const std::vector<float> keyCache = randomRounded(rng, cache, cacheSize, -1, 1), valueCache = randomRounded(rng, cache, cacheSize, -1, 1);
  std::vector<int64_t> slots(static_cast<size_t>(numBlocks * blockSize));
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng);
  slots.resize(static_cast<size_t>(tokens));
  for (size_t i = 0; i < slots.size(); i += 3) slots[i] = -1;  // padding tokens write nothing

  std::vector<float> key3(static_cast<size_t>(tokens * row)), value3(key3.size());
  for (int64_t tk = 0; tk < tokens; ++tk)
    for (int64_t i = 0; i < row; ++i) {
      key3[static_cast<size_t>(tk * row + i)] = keyRows[static_cast<size_t>(tk * tokenStride + i)];
      value3[static_cast<size_t>(tk * row + i)] = valueRows[static_cast<size_t>(tk * tokenStride + i)];
    }
  const std::vector<int64_t> cacheShape = {numBlocks, kvHeads, blockSize, headDim};
  auto reference = runReferenceOp("kv_cache_write",
                                  {f32Tensor({tokens, kvHeads, headDim}, key3), f32Tensor({tokens, kvHeads, headDim}, value3),
                                   f32Tensor(cacheShape, keyCache).convertTo(cache), f32Tensor(cacheShape, valueCache).convertTo(cache),
                                   i64Tensor({tokens}, slots)},
                                  {}, 2);
  c.verify("strided rows, padding slots", {{"key_cache", cache, floatsOf(reference[0]), kExact}, {"value_cache", cache, floatsOf(reference[1]), kExact}},
           [&](const Schedule& schedule) {
             GuardedBuffer k = GuardedBuffer::ofFloats(t, keyRows), v = GuardedBuffer::ofFloats(t, valueRows);
             GuardedBuffer kc = GuardedBuffer::ofFloats(cache, keyCache), vc = GuardedBuffer::ofFloats(cache, valueCache);
             GuardedBuffer s = GuardedBuffer::ofInts(slots);
             KvCacheWriteParams p{};
             p.key = k.data();
             p.value = v.data();
             p.key_cache = kc.data();
             p.value_cache = vc.data();
             p.slot_mapping = static_cast<const i64*>(s.data());
             p.key_token_stride = tokenStride;
             p.value_token_stride = tokenStride;
             p.num_tokens = tokens;
             p.num_kv_heads = kvHeads;
             p.head_dim = headDim;
             p.block_size = blockSize;
             kernel.launch({static_cast<unsigned>(tokens), 1, 1}, threadsOf(key), &p, schedule);
             return RunOutputs{{"key_cache", kc.readFloats(cache, cacheSize)}, {"value_cache", vc.readFloats(cache, cacheSize)}};
           });
}

void checkCopyBlocks(CheckContext& c) {
  const KernelKey& key = c.key();
  const LoadedKernel& kernel = c.kernel(key, sizeof(CopyBlocksParams));
  const std::vector<int64_t> mapping = {0, 3, 2, 1, 5, 6, 4, 7};  // (src, dst); no dst is a src
  const int64_t layers = 3, blocks = 8, pairs = static_cast<int64_t>(mapping.size() / 2);
  // 16-byte units, 4-byte units (not a multiple of the threads), single bytes.
  for (int64_t blockBytes : {int64_t{16 * 2 * 64 * 2}, int64_t{3 * 20}, int64_t{37}}) {
    std::vector<std::vector<uint8_t>> keys, values;
    for (int64_t l = 0; l < layers; ++l) {
      keys.push_back(randomBytes(c.rng(), static_cast<size_t>(blocks * blockBytes)));
      values.push_back(randomBytes(c.rng(), static_cast<size_t>(blocks * blockBytes)));
    }
    auto copied = [&](std::vector<uint8_t> pool) {
      const std::vector<uint8_t> before = pool;
      for (int64_t i = 0; i < pairs; ++i)
        std::copy_n(before.begin() + mapping[2 * i] * blockBytes, blockBytes, pool.begin() + mapping[2 * i + 1] * blockBytes);
      return bytesAsFloats(pool);
    };
    std::vector<ExpectedOutput> expected;
    for (int64_t l = 0; l < layers; ++l) {
      expected.push_back({"key layer " + std::to_string(l), DType::U8, copied(keys[l]), kExact});
      expected.push_back({"value layer " + std::to_string(l), DType::U8, copied(values[l]), kExact});
    }
    c.verify("block_bytes " + std::to_string(blockBytes), expected, [&](const Schedule& schedule) {
      std::vector<GuardedBuffer> keyPools, valuePools;
      std::vector<void*> keyPointers, valuePointers;
      for (int64_t l = 0; l < layers; ++l) {
        keyPools.push_back(GuardedBuffer::ofPod(keys[l]));
        valuePools.push_back(GuardedBuffer::ofPod(values[l]));
        keyPointers.push_back(keyPools.back().data());
        valuePointers.push_back(valuePools.back().data());
      }
      GuardedBuffer keyTable = GuardedBuffer::ofPod(keyPointers), valueTable = GuardedBuffer::ofPod(valuePointers);
      GuardedBuffer map = GuardedBuffer::ofInts(mapping);
      CopyBlocksParams p{};
      p.key_caches = static_cast<void* const*>(keyTable.data());
      p.value_caches = static_cast<void* const*>(valueTable.data());
      p.block_mapping = static_cast<const i64*>(map.data());
      p.num_layers = layers;
      p.num_pairs = pairs;
      p.block_bytes = blockBytes;
      kernel.launch({static_cast<unsigned>(layers), static_cast<unsigned>(pairs), 1}, threadsOf(key), &p, schedule);
      RunOutputs out;
      for (int64_t l = 0; l < layers; ++l) {
        out["key layer " + std::to_string(l)] = bytesAsFloats(keyPools[l].readBytes());
        out["value layer " + std::to_string(l)] = bytesAsFloats(valuePools[l].readBytes());
      }
      return out;
    });
  }
}

void checkSwapBlocks(CheckContext& c) {
  const KernelKey& key = c.key();
  const LoadedKernel& kernel = c.kernel(key, sizeof(SwapBlocksParams));
  const std::vector<int64_t> mapping = {4, 0, 0, 8, 2, 3};
  const int64_t srcBlocks = 5, dstBlocks = 9, pairs = static_cast<int64_t>(mapping.size() / 2);
  for (int64_t blockBytes : {int64_t{8 * 128 * 2}, int64_t{44}, int64_t{13}}) {
    const std::vector<uint8_t> src = randomBytes(c.rng(), static_cast<size_t>(srcBlocks * blockBytes));
    const std::vector<uint8_t> dst = randomBytes(c.rng(), static_cast<size_t>(dstBlocks * blockBytes));
    std::vector<uint8_t> want = dst;
    for (int64_t i = 0; i < pairs; ++i) std::copy_n(src.begin() + mapping[2 * i] * blockBytes, blockBytes, want.begin() + mapping[2 * i + 1] * blockBytes);
    c.verify("block_bytes " + std::to_string(blockBytes),
             {{"dst_pool", DType::U8, bytesAsFloats(want), kExact}, {"src_pool", DType::U8, bytesAsFloats(src), kExact}},
             [&](const Schedule& schedule) {
               GuardedBuffer from = GuardedBuffer::ofPod(src), to = GuardedBuffer::ofPod(dst), map = GuardedBuffer::ofInts(mapping);
               SwapBlocksParams p{from.data(), to.data(), static_cast<const i64*>(map.data()), pairs, blockBytes};
               kernel.launch({static_cast<unsigned>(pairs), 1, 1}, threadsOf(key), &p, schedule);
               return RunOutputs{{"dst_pool", bytesAsFloats(to.readBytes())}, {"src_pool", bytesAsFloats(from.readBytes())}};
             });
  }
}

// ---- normalisation --------------------------------------------------------------------------------

void checkNorm(CheckContext& c, bool layer) {
  const KernelKey& key = c.key();
  const DType t = floatDType(key.param("dtype"));
  const LoadedKernel& kernel = c.kernel(key, sizeof(NormParams));
  const Tolerance tolerance = sixteenBitOr(t, {64, 1e-6});
  struct Case {
    std::string name;
    int64_t rows, hidden;
    bool residual, bias, sumOut;
  };
  // A hidden size that is no multiple of the threads, and a wide one.
  for (const Case& k : {Case{"residual + sum out" + std::string(layer ? " + bias" : ""), 7, 1000, true, layer, true}, Case{"plain", 3, 4096 + 32, false, false, false}}) {
    auto& rng = c.rng();
    const size_t n = static_cast<size_t>(k.rows * k.hidden);
    const float offset = layer ? 1.5f : 0.0f;  // keeps layer norm's mean away from zero
    const std::vector<float> x = randomRounded(rng, t, n, -2 + offset, 2 + offset);
    const std::vector<float> residual = k.residual ? randomRounded(rng, t, n, -1, 1) : std::vector<float>{};
    const std::vector<float> weight = randomRounded(rng, t, static_cast<size_t>(k.hidden), 0.5f, 1.5f);
    const std::vector<float> bias = k.bias ? randomRounded(rng, t, static_cast<size_t>(k.hidden), -0.5f, 0.5f) : std::vector<float>{};
    std::vector<Tensor> operands = {f32Tensor({k.rows, k.hidden}, x), f32Tensor({k.hidden}, weight)};
    if (layer) operands.push_back(k.bias ? f32Tensor({k.hidden}, bias) : Tensor());
    operands.push_back(k.residual ? f32Tensor({k.rows, k.hidden}, residual) : Tensor());
    auto reference = runReferenceOp(layer ? "layer_norm" : "rms_norm", operands, {{"epsilon", 1e-5}}, k.residual ? 2 : 1);
    std::vector<ExpectedOutput> expected = {{"out", t, floatsOf(reference[0]), tolerance}};
    if (k.sumOut) expected.push_back({"sum_out", t, rounded(t, k.residual ? floatsOf(reference[1]) : x), kExact});
    c.verify(k.name, expected, [&](const Schedule& schedule) {
      GuardedBuffer xb = GuardedBuffer::ofFloats(t, x), rb = GuardedBuffer::ofFloats(t, residual), wb = GuardedBuffer::ofFloats(t, weight);
      GuardedBuffer bb = GuardedBuffer::ofFloats(t, bias), out(n * dtypeSize(t)), sum(k.sumOut ? n * dtypeSize(t) : 0);
      NormParams p{};
      p.out = out.data();
      p.sum_out = k.sumOut ? sum.data() : nullptr;
      p.x = xb.data();
      p.residual = k.residual ? rb.data() : nullptr;
      p.weight = wb.data();
      p.bias = k.bias ? bb.data() : nullptr;
      p.rows = k.rows;
      p.hidden = k.hidden;
      p.epsilon = 1e-5f;
      kernel.launch({static_cast<unsigned>(k.rows), 1, 1}, threadsOf(key), &p, schedule);
      RunOutputs outputs{{"out", out.readFloats(t, n)}};
      if (k.sumOut) outputs["sum_out"] = sum.readFloats(t, n);
      return outputs;
    });
  }
}

// ---- rotary embedding -----------------------------------------------------------------------------

void checkRope(CheckContext& c) {
  const KernelKey& key = c.key();
  const DType t = floatDType(key.param("dtype"));
  const bool interleaved = key.intParam("interleaved") != 0;
  const LoadedKernel& kernel = c.kernel(key, sizeof(RopeParams));
  struct Case {
    std::string name;
    int64_t batch, heads, seq, headDim, rotaryDim;
    bool sharedPositions;
  };
  for (const Case& k : {Case{"full rotation", 2, 3, 5, 64, 64, false}, Case{"partial rotary_dim, shared positions", 2, 4, 3, 80, 32, true}}) {
    auto& rng = c.rng();
    const int64_t maxPositions = 50, half = k.rotaryDim / 2, positionRows = k.sharedPositions ? 1 : k.batch;
    const size_t size = static_cast<size_t>(k.batch * k.heads * k.seq * k.headDim);
    const std::vector<float> x = randomRounded(rng, t, size, -2, 2);
    std::vector<int64_t> positions(static_cast<size_t>(positionRows * k.seq));
    std::uniform_int_distribution<int64_t> position(0, maxPositions - 1);
    for (auto& p : positions) p = position(rng);
    std::vector<float> cosTable, sinTable;
    for (int64_t p = 0; p < maxPositions; ++p)
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(p) * std::pow(10000.0, -static_cast<double>(i) / static_cast<double>(half));
        cosTable.push_back(static_cast<float>(std::cos(angle)));
        sinTable.push_back(static_cast<float>(std::sin(angle)));
      }
    auto reference = runReferenceOp("rope",
                                    {f32Tensor({k.batch, k.heads, k.seq, k.headDim}, x), i64Tensor({positionRows, k.seq}, positions),
                                     f32Tensor({maxPositions, half}, cosTable), f32Tensor({maxPositions, half}, sinTable)},
                                    {{"interleaved", int64_t{interleaved ? 1 : 0}}, {"rotary_dim", k.rotaryDim}});
    c.verify(k.name, {{"out", t, floatsOf(reference[0]), sixteenBitOr(t, {2, 1e-6})}}, [&](const Schedule& schedule) {
      GuardedBuffer xb = GuardedBuffer::ofFloats(t, x), out(size * dtypeSize(t)), pb = GuardedBuffer::ofInts(positions);
      GuardedBuffer cb = GuardedBuffer::ofFloats(DType::F32, cosTable), sb = GuardedBuffer::ofFloats(DType::F32, sinTable);
      RopeParams p{};
      p.out = out.data();
      p.x = xb.data();
      p.positions = static_cast<const i64*>(pb.data());
      p.cos_table = static_cast<const float*>(cb.data());
      p.sin_table = static_cast<const float*>(sb.data());
      p.batch = k.batch;
      p.seq = k.seq;
      p.heads = k.heads;
      p.head_dim = k.headDim;
      p.rotary_dim = k.rotaryDim;
      p.batch_stride = k.heads * k.seq * k.headDim;  // x is [batch, heads, seq, head_dim]
      p.seq_stride = k.headDim;
      p.head_stride = k.seq * k.headDim;
      p.positions_batch_stride = k.sharedPositions ? 0 : k.seq;
      p.max_positions = maxPositions;
      kernel.launch({static_cast<unsigned>(k.batch * k.seq), 1, 1}, threadsOf(key), &p, schedule);
      return RunOutputs{{"out", out.readFloats(t, size)}};
    });
  }
}

// ---- activations, embedding ------------------------------------------------------------------------

void checkActivation(CheckContext& c) {
  const KernelKey& key = c.key();
  const DType t = floatDType(key.param("dtype"));
  const std::string act = key.param("act");
  const LoadedKernel& kernel = c.kernel(key, sizeof(ActivationParams));
  for (bool gated : {false, true}) {
    auto& rng = c.rng();
    const int64_t count = 1000 + 37;
    // Within [-5, 5] the reference's double evaluation keeps f32 accuracy; plus exact zeros,
    // tiny values and tails that underflow.
    std::vector<float> x = randomRounded(rng, t, static_cast<size_t>(count), -5, 5);
    const float special[] = {0.0f, -0.0f, 1e-6f, -1e-6f, 30.0f, -30.0f, -90.0f};
    for (size_t i = 0; i < std::size(special); ++i) x[i] = roundTo(t, special[i]);
    const std::vector<float> up = gated ? randomRounded(rng, t, static_cast<size_t>(count), -2, 2) : std::vector<float>{};
    Tensor xt = f32Tensor({count}, x);
    Tensor y;
    if (gated && act != "relu") {
      y = runReferenceOp("gated_act", {xt, f32Tensor({count}, up)}, {{"activation", act}})[0];
    } else {
      if (act == "silu") y = runReferenceOp("silu", {xt}, {})[0];
      if (act == "gelu") y = runReferenceOp("gelu", {xt}, {})[0];
      if (act == "gelu_tanh") y = runReferenceOp("gelu", {xt}, {{"approximate", std::string("tanh")}})[0];
      if (act == "relu") y = runReferenceOp("Relu", {xt}, {})[0];
      if (gated) y = runReferenceOp("Mul", {y, f32Tensor({count}, up)}, {})[0];
    }
    c.verify(gated ? "gated (x * up)" : "plain", {{"out", t, floatsOf(y), sixteenBitOr(t, {8, 1e-30})}}, [&](const Schedule& schedule) {
      GuardedBuffer xb = GuardedBuffer::ofFloats(t, x), ub = GuardedBuffer::ofFloats(t, up), out(static_cast<size_t>(count) * dtypeSize(t));
      ActivationParams p{out.data(), xb.data(), gated ? ub.data() : nullptr, count};
      kernel.launch({gridFor(count, threadsOf(key)), 1, 1}, threadsOf(key), &p, schedule);
      return RunOutputs{{"out", out.readFloats(t, static_cast<size_t>(count))}};
    });
  }
}

void checkEmbedding(CheckContext& c) {
  const KernelKey& key = c.key();
  const DType t = floatDType(key.param("dtype"));
  const LoadedKernel& kernel = c.kernel(key, sizeof(EmbeddingParams));
  auto& rng = c.rng();
  const int64_t vocab = 50, hidden = 96 + 5, tokens = 11;
  const std::vector<float> table = randomRounded(rng, t, static_cast<size_t>(vocab * hidden), -1, 1);
  std::vector<int64_t> ids(static_cast<size_t>(tokens));
  std::uniform_int_distribution<int64_t> id(0, vocab - 1);
  for (auto& i : ids) i = id(rng);
  ids[2] = -1;     // out of range: a zero row
  ids[7] = vocab;  // out of range: a zero row
  std::vector<int64_t> validIds = ids;
  for (auto& i : validIds) i = std::clamp<int64_t>(i, 0, vocab - 1);
  std::vector<float> want = floatsOf(runReferenceOp("Gather", {f32Tensor({vocab, hidden}, table), i64Tensor({tokens}, validIds)}, {})[0]);
  for (int64_t tk = 0; tk < tokens; ++tk)
    if (ids[static_cast<size_t>(tk)] != validIds[static_cast<size_t>(tk)]) std::fill_n(want.begin() + tk * hidden, hidden, 0.0f);
  c.verify("ids with out-of-range entries", {{"out", t, want, kExact}}, [&](const Schedule& schedule) {
    GuardedBuffer tb = GuardedBuffer::ofFloats(t, table), ib = GuardedBuffer::ofInts(ids);
    GuardedBuffer out = GuardedBuffer::ofFloats(t, std::vector<float>(want.size(), kNaN));
    EmbeddingParams p{out.data(), tb.data(), static_cast<const i64*>(ib.data()), tokens, hidden, vocab};
    kernel.launch({static_cast<unsigned>(tokens), 1, 1}, threadsOf(key), &p, schedule);
    return RunOutputs{{"out", out.readFloats(t, want.size())}};
  });
}

// ---- sampler steps --------------------------------------------------------------------------------

// Rows of distinct random logits, with one row of ties, one with -inf entries and one of only -inf.
std::vector<float> samplerLogits(std::mt19937_64& rng, int64_t rows, int64_t vocab) {
  std::vector<float> logits(static_cast<size_t>(rows * vocab));
  std::uniform_real_distribution<float> dist(-8, 8);
  for (float& v : logits) v = dist(rng);
  for (int64_t j = 0; j < vocab; j += 7) logits[static_cast<size_t>(vocab + j)] = 9.5f;  // ties at the max in row 1
  for (int64_t j = 0; j < vocab; j += 3) logits[static_cast<size_t>(2 * vocab + j)] = -kInf;
  std::fill_n(logits.begin() + 3 * vocab, vocab, -kInf);
  return logits;
}

void checkSoftmax(CheckContext& c) {
  const KernelKey& key = c.key();
  const LoadedKernel& kernel = c.kernel(key, sizeof(SoftmaxParams));
  const int64_t rows = 6, vocab = 1000 + 3;
  const std::vector<float> logits = samplerLogits(c.rng(), rows, vocab);
  const std::vector<float> temperatures = {1.0f, 0.7f, 1.3f, 1.0f, 0.0f, 2.0f};  // row 4 greedy
  for (bool withTemperatures : {true, false}) {
    std::vector<float> want(logits.size(), 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      const double temperature = withTemperatures ? temperatures[static_cast<size_t>(r)] : 1.0;
      std::vector<double> row(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
      float* out = want.data() + r * vocab;
      if (temperature <= 0) {
        const int64_t best = greedyToken(row);
        if (best >= 0) out[best] = 1.0f;
        continue;
      }
      double max = -kInf;
      for (double v : row) max = std::max(max, v);
      if (max == -kInf) continue;
      double total = 0;
      for (double v : row) total += std::exp((v - max) / temperature);
      for (int64_t j = 0; j < vocab; ++j) out[j] = static_cast<float>(std::exp((row[static_cast<size_t>(j)] - max) / temperature) / total);
    }
    c.verify(withTemperatures ? "temperatures (one greedy)" : "no temperatures", {{"probs", DType::F32, want, {64, 1e-30}}},
             [&](const Schedule& schedule) {
               GuardedBuffer lb = GuardedBuffer::ofFloats(DType::F32, logits), tb = GuardedBuffer::ofFloats(DType::F32, temperatures);
               GuardedBuffer probs = GuardedBuffer::ofFloats(DType::F32, std::vector<float>(logits.size(), kNaN));
               SoftmaxParams p{static_cast<float*>(probs.data()), static_cast<const float*>(lb.data()),
                               withTemperatures ? static_cast<const float*>(tb.data()) : nullptr, rows, vocab};
               kernel.launch({static_cast<unsigned>(rows), 1, 1}, threadsOf(key), &p, schedule);
               return RunOutputs{{"probs", probs.readFloats(DType::F32, logits.size())}};
             });
  }
}

void checkArgmax(CheckContext& c) {
  const KernelKey& key = c.key();
  const LoadedKernel& kernel = c.kernel(key, sizeof(ArgmaxParams));
  const int64_t rows = 5, vocab = 1000 + 3;
  std::vector<float> logits = samplerLogits(c.rng(), rows, vocab);
  logits[static_cast<size_t>(4 * vocab + 10)] = kNaN;  // NaN never wins
  std::vector<float> wantIndex, wantValue;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> row(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
    const int64_t best = greedyToken(row);
    wantIndex.push_back(static_cast<float>(best));
    wantValue.push_back(best >= 0 ? logits[static_cast<size_t>(r * vocab + best)] : -kInf);
  }
  c.verify("ties, -inf rows, NaN", {{"index", DType::I64, wantIndex, kExact}, {"value", DType::F32, wantValue, kExact}}, [&](const Schedule& schedule) {
    GuardedBuffer lb = GuardedBuffer::ofFloats(DType::F32, logits), index = GuardedBuffer::ofInts(std::vector<int64_t>(rows, -7));
    GuardedBuffer value = GuardedBuffer::ofFloats(DType::F32, std::vector<float>(static_cast<size_t>(rows), kNaN));
    ArgmaxParams p{static_cast<i64*>(index.data()), static_cast<float*>(value.data()), static_cast<const float*>(lb.data()), rows, vocab};
    kernel.launch({static_cast<unsigned>(rows), 1, 1}, threadsOf(key), &p, schedule);
    return RunOutputs{{"index", index.readFloats(DType::I64, static_cast<size_t>(rows))}, {"value", value.readFloats(DType::F32, static_cast<size_t>(rows))}};
  });
}

// The filter's contract (kernel_params.h) in double: top-k keeps values >= the k-th largest (ties
// kept), then top-p keeps the most likely tokens until their mass reaches top_p (ties with the
// last kept kept), over softmax((logits - max) / temperature) renormalised over what top-k kept.
std::vector<float> referenceTopKTopP(const std::vector<float>& row, int64_t topK, float topP, float temperature) {
  const int64_t vocab = static_cast<int64_t>(row.size());
  std::vector<float> out = row;
  std::vector<bool> kept(row.size());
  for (size_t j = 0; j < row.size(); ++j) kept[j] = !std::isnan(row[j]);
  if (topK > 0 && topK < vocab) {
    std::vector<float> sorted;
    for (size_t j = 0; j < row.size(); ++j)
      if (kept[j]) sorted.push_back(row[j]);
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    if (static_cast<int64_t>(sorted.size()) > topK) {
      const float threshold = sorted[static_cast<size_t>(topK - 1)];
      for (size_t j = 0; j < row.size(); ++j) kept[j] = kept[j] && row[j] >= threshold;
    }
  }
  if (topP < 1 && temperature > 0) {
    double max = -kInf;
    for (size_t j = 0; j < row.size(); ++j)
      if (kept[j]) max = std::max(max, static_cast<double>(row[j]));
    std::vector<std::pair<double, size_t>> probs;
    double total = 0;
    for (size_t j = 0; j < row.size(); ++j)
      if (kept[j] && row[j] != -kInf) {
        const double p = std::exp((row[j] - max) / temperature);
        probs.push_back({p, j});
        total += p;
      }
    std::sort(probs.begin(), probs.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
    double mass = 0;
    size_t last = probs.size();
    for (size_t i = 0; i < probs.size(); ++i) {
      mass += probs[i].first / total;
      if (mass >= topP) {
        last = i;
        break;
      }
    }
    if (last < probs.size()) {
      const double lastProb = probs[last].first;
      for (size_t i = last + 1; i < probs.size(); ++i)
        if (probs[i].first < lastProb) kept[probs[i].second] = false;
    }
  }
  for (size_t j = 0; j < row.size(); ++j)
    if (!kept[j]) out[j] = -kInf;
  return out;
}

// A top_p halfway between two cumulative masses of the row's sorted distribution (after top-k),
// so f32 and double arithmetic agree on where the nucleus ends.
float safeTopP(const std::vector<float>& row, int64_t topK, float temperature, std::mt19937_64& rng) {
  std::vector<float> afterTopK = referenceTopKTopP(row, topK, 1.0f, temperature);
  double max = -kInf;
  for (float v : afterTopK) max = std::max(max, static_cast<double>(v));
  std::vector<double> probs;
  double total = 0;
  for (float v : afterTopK)
    if (v != -kInf) {
      probs.push_back(std::exp((v - max) / temperature));
      total += probs.back();
    }
  std::sort(probs.begin(), probs.end(), std::greater<>());
  if (probs.size() < 3) return 1.0f;
  std::uniform_int_distribution<size_t> pick(0, std::min<size_t>(probs.size() - 2, 40));
  const size_t i = pick(rng);
  double mass = 0;
  for (size_t j = 0; j <= i; ++j) mass += probs[j] / total;
  return static_cast<float>(mass + 0.5 * probs[i + 1] / total);
}

void checkTopKTopP(CheckContext& c) {
  const KernelKey& key = c.key();
  const LoadedKernel& kernel = c.kernel(key, sizeof(TopKTopPParams));
  auto& rng = c.rng();
  const int64_t rows = 6, vocab = 500 + 1;
  std::vector<float> logits(static_cast<size_t>(rows * vocab));
  std::uniform_real_distribution<float> dist(-6, 6);
  for (float& v : logits) v = dist(rng);
  for (int64_t j = 0; j < vocab; j += 5) logits[static_cast<size_t>(2 * vocab + j)] = 3.25f;  // ties around the top-k cut
  const std::vector<int64_t> topK = {0, 17, 10, vocab, 40, 1};
  const std::vector<float> temperatures = {1.0f, 0.8f, 1.0f, 1.5f, 0.0f, 1.0f};  // row 4 greedy: top-p skipped
  std::vector<float> topP(static_cast<size_t>(rows));
  std::vector<float> want;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> row(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
    const size_t i = static_cast<size_t>(r);
    topP[i] = r == 2 || r == 5 ? 1.0f : temperatures[i] > 0 ? safeTopP(row, topK[i], temperatures[i], rng) : 0.5f;
    std::vector<float> filtered = referenceTopKTopP(row, topK[i], topP[i], temperatures[i]);
    want.insert(want.end(), filtered.begin(), filtered.end());
  }
  c.verify("top-k, top-p, ties, greedy row", {{"logits", DType::F32, want, kExact}}, [&](const Schedule& schedule) {
    GuardedBuffer lb = GuardedBuffer::ofFloats(DType::F32, logits), kb = GuardedBuffer::ofInts(topK);
    GuardedBuffer pb = GuardedBuffer::ofFloats(DType::F32, topP), tb = GuardedBuffer::ofFloats(DType::F32, temperatures);
    TopKTopPParams p{static_cast<float*>(lb.data()), static_cast<const i64*>(kb.data()), static_cast<const float*>(pb.data()), rows, vocab,
                     static_cast<const float*>(tb.data())};
    kernel.launch({static_cast<unsigned>(rows), 1, 1}, threadsOf(key), &p, schedule);
    return RunOutputs{{"logits", lb.readFloats(DType::F32, logits.size())}};
  });
}

// ---- tensor ops -----------------------------------------------------------------------------------

std::vector<int64_t> denseStrides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

int64_t product(const std::vector<int64_t>& shape) { return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>()); }

void checkStridedCopy(CheckContext& c) {
  const KernelKey& key = c.key();
  const DType t = floatDType(key.param("dtype"));
  const LoadedKernel& kernel = c.kernel(key, sizeof(StridedCopyParams));
  const std::vector<int64_t> shape = {3, 4, 5, 7}, perm = {2, 0, 3, 1};
  const std::vector<float> x = randomRounded(c.rng(), t, static_cast<size_t>(product(shape)), -4, 4);
  const std::vector<float> want = floatsOf(runReferenceOp("Transpose", {f32Tensor(shape, x)}, {{"perm", perm}})[0]);
  std::vector<int64_t> outShape, inStrides;
  const std::vector<int64_t> dense = denseStrides(shape);
  for (int64_t axis : perm) {
    outShape.push_back(shape[static_cast<size_t>(axis)]);
    inStrides.push_back(dense[static_cast<size_t>(axis)]);
  }
  const std::vector<int64_t> outStrides = denseStrides(outShape);
  c.verify("transpose (2, 0, 3, 1)", {{"out", t, want, kExact}}, [&](const Schedule& schedule) {
    GuardedBuffer in = GuardedBuffer::ofFloats(t, x), out(want.size() * dtypeSize(t));
    StridedCopyParams p{};
    p.out = out.data();
    p.in = in.data();
    p.rank = static_cast<int64_t>(outShape.size());
    for (size_t i = 0; i < outShape.size(); ++i) {
      p.shape[i] = outShape[i];
      p.in_strides[i] = inStrides[i];
      p.out_strides[i] = outStrides[i];
    }
    p.count = product(outShape);
    // A grid smaller than the elements: the grid-stride loop covers the rest.
    kernel.launch({std::max(1u, gridFor(p.count, threadsOf(key)) / 2), 1, 1}, threadsOf(key), &p, schedule);
    return RunOutputs{{"out", out.readFloats(t, want.size())}};
  });
}

void checkBinary(CheckContext& c) {
  const KernelKey& key = c.key();
  const DType t = floatDType(key.param("dtype"));
  const std::string op = key.param("op");
  const LoadedKernel& kernel = c.kernel(key, sizeof(BinaryParams));
  const std::string opName = op == "add" ? "Add" : op == "sub" ? "Sub" : op == "mul" ? "Mul" : "Div";
  const std::vector<int64_t> aShape = {2, 1, 5, 3}, bShape = {4, 1, 3}, outShape = {2, 4, 5, 3};
  std::vector<float> a = randomRounded(c.rng(), t, static_cast<size_t>(product(aShape)), -10, 10);
  std::vector<float> b = randomRounded(c.rng(), t, static_cast<size_t>(product(bShape)), 0.5f, 4);
  for (size_t i = 0; i < b.size(); i += 2) b[i] = -b[i];
  const std::vector<float> want = rounded(t, floatsOf(runReferenceOp(opName, {f32Tensor(aShape, a), f32Tensor(bShape, b)}, {})[0]));
  auto broadcastStrides = [&](const std::vector<int64_t>& shape) {
    std::vector<int64_t> strides(outShape.size(), 0);
    const std::vector<int64_t> dense = denseStrides(shape);
    const size_t lead = outShape.size() - shape.size();
    for (size_t i = 0; i < shape.size(); ++i) strides[lead + i] = shape[i] == 1 ? 0 : dense[i];
    return strides;
  };
  const std::vector<int64_t> aStrides = broadcastStrides(aShape), bStrides = broadcastStrides(bShape);
  c.verify("broadcast [2,1,5,3] " + op + " [4,1,3]", {{"out", t, want, kExact}}, [&](const Schedule& schedule) {
    GuardedBuffer ab = GuardedBuffer::ofFloats(t, a), bb = GuardedBuffer::ofFloats(t, b), out(want.size() * dtypeSize(t));
    BinaryParams p{};
    p.out = out.data();
    p.a = ab.data();
    p.b = bb.data();
    p.rank = static_cast<int64_t>(outShape.size());
    for (size_t i = 0; i < outShape.size(); ++i) {
      p.shape[i] = outShape[i];
      p.a_strides[i] = aStrides[i];
      p.b_strides[i] = bStrides[i];
    }
    p.count = product(outShape);
    kernel.launch({gridFor(p.count, threadsOf(key)), 1, 1}, threadsOf(key), &p, schedule);
    return RunOutputs{{"out", out.readFloats(t, want.size())}};
  });
}

void checkCast(CheckContext& c) {
  const KernelKey& key = c.key();
  const DType in = floatDType(key.param("in")), out = floatDType(key.param("out"));
  const LoadedKernel& kernel = c.kernel(key, sizeof(CastParams));
  std::vector<float> x = randomRounded(c.rng(), in, 1000, -70000, 70000);
  // Signed zeros, infinities, NaN, values past f16's range, f16 subnormals, halfway cases.
  const float special[] = {0.0f, -0.0f, kInf, -kInf, kNaN, 65519.0f, 65520.0f, 1e-7f, -3e-8f, 1e-30f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 1.0f + 1.0f / 256, 3.0e38f};
  for (size_t i = 0; i < std::size(special); ++i) x[i] = roundTo(in, special[i]);
  for (size_t i = std::size(special); i < 300; ++i) x[i] = roundTo(in, x[i] * 1e-6f);
  const std::vector<float> want = floatsOf(runReferenceOp("Cast", {f32Tensor({static_cast<int64_t>(x.size())}, x).convertTo(in)}, {{"to", out}})[0]);
  c.verify("specials, subnormals, halfway cases", {{"out", out, want, kExact}}, [&](const Schedule& schedule) {
    GuardedBuffer ib = GuardedBuffer::ofFloats(in, x), ob(x.size() * dtypeSize(out));
    CastParams p{ob.data(), ib.data(), static_cast<int64_t>(x.size())};
    kernel.launch({gridFor(p.count, threadsOf(key)), 1, 1}, threadsOf(key), &p, schedule);
    return RunOutputs{{"out", ob.readFloats(out, x.size())}};
  });
}

}  // namespace

bool checkOtherKernel(CheckContext& c) {
  const std::string& kernel = c.key().kernel;
  if (kernel == "kv_cache_write") checkKvCacheWrite(c);
  else if (kernel == "copy_blocks") checkCopyBlocks(c);
  else if (kernel == "swap_blocks") checkSwapBlocks(c);
  else if (kernel == "rms_norm") checkNorm(c, false);
  else if (kernel == "layer_norm") checkNorm(c, true);
  else if (kernel == "rope") checkRope(c);
  else if (kernel == "activation") checkActivation(c);
  else if (kernel == "embedding") checkEmbedding(c);
  else if (kernel == "softmax_rows") checkSoftmax(c);
  else if (kernel == "argmax_rows") checkArgmax(c);
  else if (kernel == "top_k_top_p_filter") checkTopKTopP(c);
  else if (kernel == "strided_copy") checkStridedCopy(c);
  else if (kernel == "elementwise_binary") checkBinary(c);
  else if (kernel == "cast") checkCast(c);
  else return false;
  return true;
}

}  // namespace pagedc::kernelcheck
