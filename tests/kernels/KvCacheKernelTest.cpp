// kv_cache_write against the reference op kv_cache_write; copy_blocks and swap_blocks against plain
// block copies. Every launch runs under each emulator schedule.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "../unit/OpTestSupport.h"
#include "OtherKernelsTestSupport.h"
#include "kv_cache.cuh"

using namespace pagedc;
using namespace pagedc::kerneltest;

namespace {

struct WriteShape {
  int64_t tokens, kvHeads, headDim, blockSize, numBlocks;
  int64_t tokenStride;  // elements between tokens of key/value (>= kvHeads * headDim: a fused QKV row)
};

// A cache tensor of type C holding `values` (already rounded to C), for the reference op.
template <class C>
Tensor cacheTensor(const std::vector<int64_t>& shape, const std::vector<float>& values) {
  if constexpr (std::is_same_v<C, float>) {
    return f32Tensor(shape, values);
  } else {
    std::vector<uint16_t> bits;
    for (float v : values) bits.push_back(Element<C>::store(v).bits);
    return Tensor::fromValues(Element<C>::dtype, shape, bits);
  }
}

template <class T, class C, int NUM_THREADS>
void checkKvCacheWrite(const WriteShape& s, uint32_t seed) {
  SCOPED_TRACE(std::string("T=") + Element<T>::name + " C=" + Element<C>::name + " threads=" + std::to_string(NUM_THREADS));
  std::mt19937 rng(seed);
  const int64_t row = s.kvHeads * s.headDim;
  // Strided key/value rows (only the first kvHeads * headDim of each token are the operand).
  std::vector<float> keyRows = randomRounded<T>(rng, s.tokens * s.tokenStride, -3, 3);
  std::vector<float> valueRows = randomRounded<T>(rng, s.tokens * s.tokenStride, -3, 3);
  const std::vector<int64_t> cacheShape = {s.numBlocks, s.kvHeads, s.blockSize, s.headDim};
  const size_t cacheSize = s.numBlocks * s.kvHeads * s.blockSize * s.headDim;
  std::vector<float> keyCache = randomRounded<C>(rng, cacheSize, -1, 1);
  std::vector<float> valueCache = randomRounded<C>(rng, cacheSize, -1, 1);
  // Distinct slots, some of them padding (-1).
  std::vector<int64_t> slots(s.numBlocks * s.blockSize);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), rng);
  slots.resize(s.tokens);
  for (int64_t t = 0; t < s.tokens; t += 3) slots[t] = -1;

  std::vector<float> key(s.tokens * row), value(s.tokens * row);
  for (int64_t t = 0; t < s.tokens; ++t)
    for (int64_t i = 0; i < row; ++i) {
      key[t * row + i] = keyRows[t * s.tokenStride + i];
      value[t * row + i] = valueRows[t * s.tokenStride + i];
    }
  auto reference = test::runOp("kv_cache_write",
                               {f32Tensor({s.tokens, s.kvHeads, s.headDim}, key), f32Tensor({s.tokens, s.kvHeads, s.headDim}, value),
                                cacheTensor<C>(cacheShape, keyCache), cacheTensor<C>(cacheShape, valueCache), i64Tensor({s.tokens}, slots)},
                               {}, 2);

  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<T> keyIn(toStorage<T>(keyRows)), valueIn(toStorage<T>(valueRows));
    DeviceArray<C> keyOut(toStorage<C>(keyCache)), valueOut(toStorage<C>(valueCache));
    DeviceArray<i64> slotBuffer(slots);
    KvCacheWriteParams p{};
    p.key = keyIn.get();
    p.value = valueIn.get();
    p.key_cache = keyOut.get();
    p.value_cache = valueOut.get();
    p.slot_mapping = slotBuffer.get();
    p.key_token_stride = s.tokenStride;
    p.value_token_stride = s.tokenStride;
    p.num_tokens = s.tokens;
    p.num_kv_heads = s.kvHeads;
    p.head_dim = s.headDim;
    p.block_size = s.blockSize;
    emu::launch(kv_cache_write<T, C, NUM_THREADS>, emu::Dim3{static_cast<unsigned>(s.tokens)}, emu::Dim3{NUM_THREADS}, p, options);
    expectSameBits(widen(keyOut.read()), floatsOf(reference[0]), "key cache");
    expectSameBits(widen(valueOut.read()), floatsOf(reference[1]), "value cache");
  }
}

TEST(KvCacheWriteKernel, MatchesReferenceOpAcrossTypes) {
  // 3 heads x 40 dims = 120 elements per token: not a multiple of the thread count.
  const WriteShape shape{11, 3, 40, 4, 5, 3 * 40};
  checkKvCacheWrite<float, float, 64>(shape, 1);
  checkKvCacheWrite<f16, f16, 128>(shape, 2);
  checkKvCacheWrite<bf16, bf16, 64>(shape, 3);
  checkKvCacheWrite<float, bf16, 128>(shape, 4);
  checkKvCacheWrite<bf16, f16, 64>(shape, 5);
  checkKvCacheWrite<f16, float, 64>(shape, 6);
}

TEST(KvCacheWriteKernel, StridedTokenRowsOfAFusedProjection) {
  // Key rows inside a [tokens, (heads + 2 kv heads) * head_dim] QKV output: stride 8 * 16.
  checkKvCacheWrite<bf16, bf16, 64>(WriteShape{9, 2, 16, 8, 3, 8 * 16}, 7);
  checkKvCacheWrite<float, f16, 256>(WriteShape{5, 4, 64, 16, 2, 6 * 64}, 8);
}

// ---- copy_blocks / swap_blocks -------------------------------------------------------------------

std::vector<uint8_t> randomBytes(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

template <int NUM_THREADS>
void checkCopyBlocks(int64_t blockBytes, uint32_t seed) {
  SCOPED_TRACE("block_bytes=" + std::to_string(blockBytes) + " threads=" + std::to_string(NUM_THREADS));
  std::mt19937 rng(seed);
  const int64_t layers = 3, blocks = 8;
  const std::vector<int64_t> mapping = {0, 3, 2, 1, 5, 6, 4, 7};  // (src, dst) pairs, no dst is a src
  const int64_t pairs = static_cast<int64_t>(mapping.size() / 2);
  std::vector<std::vector<uint8_t>> keys, values;
  for (int64_t l = 0; l < layers; ++l) {
    keys.push_back(randomBytes(rng, blocks * blockBytes));
    values.push_back(randomBytes(rng, blocks * blockBytes));
  }
  auto expectedOf = [&](std::vector<uint8_t> cache) {
    const std::vector<uint8_t> before = cache;
    for (int64_t pr = 0; pr < pairs; ++pr)
      std::copy_n(before.begin() + mapping[2 * pr] * blockBytes, blockBytes, cache.begin() + mapping[2 * pr + 1] * blockBytes);
    return cache;
  };
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    std::vector<DeviceArray<uint8_t>> keyBuffers, valueBuffers;
    for (int64_t l = 0; l < layers; ++l) {
      keyBuffers.emplace_back(keys[l]);
      valueBuffers.emplace_back(values[l]);
    }
    std::vector<void*> keyPointers, valuePointers;
    for (int64_t l = 0; l < layers; ++l) {
      keyPointers.push_back(keyBuffers[l].get());
      valuePointers.push_back(valueBuffers[l].get());
    }
    DeviceArray<void*> keyTable(keyPointers), valueTable(valuePointers);
    DeviceArray<i64> mappingBuffer(mapping);
    CopyBlocksParams p{};
    p.key_caches = keyTable.get();
    p.value_caches = valueTable.get();
    p.block_mapping = mappingBuffer.get();
    p.num_layers = layers;
    p.num_pairs = pairs;
    p.block_bytes = blockBytes;
    emu::launch(copy_blocks<NUM_THREADS>, emu::Dim3{static_cast<unsigned>(layers), static_cast<unsigned>(pairs)}, emu::Dim3{NUM_THREADS}, p,
                options);
    for (int64_t l = 0; l < layers; ++l) {
      EXPECT_EQ(keyBuffers[l].read(), expectedOf(keys[l])) << "layer " << l << " keys";
      EXPECT_EQ(valueBuffers[l].read(), expectedOf(values[l])) << "layer " << l << " values";
    }
  }
}

TEST(CopyBlocksKernel, CopiesEveryPairInEveryLayer) {
  checkCopyBlocks<128>(16 * 2 * 64 * 2, 11);  // 16-byte units
  checkCopyBlocks<64>(3 * 20, 12);            // 4-byte units, not a multiple of the thread count
  checkCopyBlocks<64>(37, 13);                // single bytes
}

template <int NUM_THREADS>
void checkSwapBlocks(int64_t blockBytes, uint32_t seed) {
  SCOPED_TRACE("block_bytes=" + std::to_string(blockBytes) + " threads=" + std::to_string(NUM_THREADS));
  std::mt19937 rng(seed);
  const int64_t srcBlocks = 5, dstBlocks = 9;
  const std::vector<int64_t> mapping = {4, 0, 0, 8, 2, 3};
  const int64_t pairs = static_cast<int64_t>(mapping.size() / 2);
  const std::vector<uint8_t> src = randomBytes(rng, srcBlocks * blockBytes);
  const std::vector<uint8_t> dst = randomBytes(rng, dstBlocks * blockBytes);
  std::vector<uint8_t> expected = dst;
  for (int64_t pr = 0; pr < pairs; ++pr)
    std::copy_n(src.begin() + mapping[2 * pr] * blockBytes, blockBytes, expected.begin() + mapping[2 * pr + 1] * blockBytes);
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<uint8_t> srcBuffer(src), dstBuffer(dst);
    DeviceArray<i64> mappingBuffer(mapping);
    SwapBlocksParams p{};
    p.src_pool = srcBuffer.get();
    p.dst_pool = dstBuffer.get();
    p.block_mapping = mappingBuffer.get();
    p.num_pairs = pairs;
    p.block_bytes = blockBytes;
    emu::launch(swap_blocks<NUM_THREADS>, emu::Dim3{static_cast<unsigned>(pairs)}, emu::Dim3{NUM_THREADS}, p, options);
    EXPECT_EQ(dstBuffer.read(), expected);
    EXPECT_EQ(srcBuffer.read(), src) << "the source pool is read only";
  }
}

TEST(SwapBlocksKernel, CopiesBlocksBetweenPools) {
  checkSwapBlocks<256>(8 * 128 * 2, 21);
  checkSwapBlocks<64>(44, 22);
  checkSwapBlocks<64>(13, 23);
}

}  // namespace
