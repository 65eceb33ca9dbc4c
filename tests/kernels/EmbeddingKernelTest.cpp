// The embedding kernel against the reference Gather (axis 0); ids outside the vocabulary give zero
// rows. Rows that allow 16-byte copies and rows that do not, under every schedule; exact.
#include <gtest/gtest.h>

#include <random>

#include "../unit/OpTestSupport.h"
#include "OtherKernelsTestSupport.h"
#include "embedding.cuh"

using namespace pagedc;
using namespace pagedc::kerneltest;

namespace {

template <class T, int NUM_THREADS>
void checkEmbedding(int64_t vocab, int64_t hidden, uint32_t seed) {
  SCOPED_TRACE(std::string("T=") + Element<T>::name + " hidden=" + std::to_string(hidden) + " threads=" + std::to_string(NUM_THREADS));
  std::mt19937 rng(seed);
  std::vector<float> table = randomRounded<T>(rng, vocab * hidden, -1, 1);
  std::vector<int64_t> ids = {3, 0, vocab - 1, -1, 7, vocab, 7, 1000000, 2};
  const int64_t tokens = static_cast<int64_t>(ids.size());
  std::vector<int64_t> validIds = ids;
  for (auto& id : validIds) id = (id < 0 || id >= vocab) ? 0 : id;
  std::vector<float> want = floatsOf(test::runOp("Gather", {f32Tensor({vocab, hidden}, table), i64Tensor({tokens}, validIds)}, {})[0]);
  for (int64_t t = 0; t < tokens; ++t)
    if (ids[t] != validIds[t]) std::fill_n(want.begin() + t * hidden, hidden, 0.0f);
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<T> tableBuffer(toStorage<T>(table)), out(toStorage<T>(std::vector<float>(tokens * hidden, 5.0f)));
    DeviceArray<i64> idBuffer(ids);
    EmbeddingParams p{out.get(), tableBuffer.get(), idBuffer.get(), tokens, hidden, vocab};
    emu::launch(embedding<T, NUM_THREADS>, emu::Dim3{static_cast<unsigned>(tokens)}, emu::Dim3{NUM_THREADS}, p, options);
    expectSameBits(widen(out.read()), want, "embedding rows");
  }
}

TEST(EmbeddingKernel, GathersRowsAndZeroesInvalidIds) {
  checkEmbedding<float, 64>(20, 72, 1);   // 288-byte rows: 16-byte copies
  checkEmbedding<float, 64>(20, 33, 2);   // 132-byte rows: element copies
  checkEmbedding<bf16, 128>(30, 200, 3);  // 400-byte rows, more elements than threads
  checkEmbedding<f16, 64>(11, 13, 4);     // 26-byte rows
  checkEmbedding<bf16, 256>(9, 1000, 5);
}

}  // namespace
