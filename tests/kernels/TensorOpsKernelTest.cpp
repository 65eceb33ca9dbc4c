// The generic tensor kernels against the reference ops: strided_copy as Transpose, Slice (negative
// steps), Expand and the inputs of a Concat; elementwise_binary as Add / Sub / Mul / Div with
// broadcasting; cast between f32, f16 and bf16 (specials included). All exact: the kernels compute
// each element in f32 and round once, as the reference does after its (exactly rounded) f32 result.
#include <gtest/gtest.h>

#include <limits>
#include <numeric>
#include <random>

#include "../unit/OpTestSupport.h"
#include "OtherKernelsTestSupport.h"
#include "tensor_ops.cuh"

using namespace pagedc;
using namespace pagedc::kerneltest;

namespace {

std::vector<int64_t> denseStrides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
  return strides;
}

int64_t product(const std::vector<int64_t>& shape) { return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>()); }

unsigned gridFor(int64_t count, int threads) { return static_cast<unsigned>((count + threads - 1) / threads); }

// ---- strided_copy -------------------------------------------------------------------------------

struct CopyView {
  std::vector<int64_t> shape, inStrides, outStrides;
  int64_t inOffset = 0, outOffset = 0;
};

// Runs strided_copy under every schedule on a fresh copy of `out`; returns the result.
template <class T, int NUM_THREADS>
std::vector<float> runCopy(const std::vector<float>& in, std::vector<float> out, const std::vector<CopyView>& views) {
  std::vector<float> first;
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<T> inBuffer(toStorage<T>(in)), outBuffer(toStorage<T>(out));
    for (const auto& view : views) {
      StridedCopyParams p{};
      p.out = outBuffer.get();
      p.in = inBuffer.get();
      p.rank = static_cast<int64_t>(view.shape.size());
      for (size_t i = 0; i < view.shape.size(); ++i) {
        p.shape[i] = view.shape[i];
        p.in_strides[i] = view.inStrides[i];
        p.out_strides[i] = view.outStrides[i];
      }
      p.in_offset = view.inOffset;
      p.out_offset = view.outOffset;
      p.count = product(view.shape);
      emu::launch(strided_copy<T, NUM_THREADS>, emu::Dim3{gridFor(p.count, NUM_THREADS)}, emu::Dim3{NUM_THREADS}, p, options);
    }
    std::vector<float> got = widen(outBuffer.read());
    if (first.empty())
      first = got;
    else
      expectSameBits(got, first, "copy under another schedule");
  }
  return first;
}

template <class T, int NUM_THREADS>
void checkTranspose(const std::vector<int64_t>& shape, const std::vector<int64_t>& perm, uint32_t seed) {
  SCOPED_TRACE(std::string("transpose T=") + Element<T>::name + " rank=" + std::to_string(shape.size()));
  std::mt19937 rng(seed);
  std::vector<float> x = randomRounded<T>(rng, product(shape), -10, 10);
  std::vector<float> want = floatsOf(test::runOp("Transpose", {f32Tensor(shape, x)}, {{"perm", perm}})[0]);
  CopyView view;
  const auto inStrides = denseStrides(shape);
  for (int64_t axis : perm) {
    view.shape.push_back(shape[axis]);
    view.inStrides.push_back(inStrides[axis]);
  }
  view.outStrides = denseStrides(view.shape);
  expectSameBits(runCopy<T, NUM_THREADS>(x, std::vector<float>(x.size()), {view}), want, "transpose");
}

TEST(StridedCopyKernel, Transpose) {
  checkTranspose<float, 64>({3, 4, 5}, {2, 0, 1}, 1);
  checkTranspose<bf16, 128>({2, 1, 3, 2, 2, 3}, {5, 3, 1, 0, 4, 2}, 2);  // the largest rank
  checkTranspose<f16, 64>({7, 33}, {1, 0}, 3);
}

TEST(StridedCopyKernel, SliceWithNegativeStep) {
  std::mt19937 rng(4);
  const std::vector<int64_t> shape = {4, 3, 6};
  std::vector<float> x = randomRounded<bf16>(rng, product(shape), -10, 10);
  // x[1:3, :, 4:0:-2]
  auto want = floatsOf(test::runOp("Slice",
                                   {f32Tensor(shape, x), i64Tensor({2}, {1, 4}), i64Tensor({2}, {3, 0}), i64Tensor({2}, {0, 2}),
                                    i64Tensor({2}, {1, -2})},
                                   {})[0]);
  CopyView view{{2, 3, 2}, {18, 6, -2}, denseStrides({2, 3, 2}), 1 * 18 + 4, 0};
  expectSameBits(runCopy<bf16, 64>(x, std::vector<float>(want.size()), {view}), want, "slice");
}

TEST(StridedCopyKernel, ExpandWithZeroStrides) {
  std::mt19937 rng(5);
  std::vector<float> x = randomRounded<float>(rng, 3, -10, 10);
  auto want = floatsOf(test::runOp("Expand", {f32Tensor({3, 1}, x), i64Tensor({3}, {2, 3, 4})}, {})[0]);
  CopyView view{{2, 3, 4}, {0, 1, 0}, denseStrides({2, 3, 4}), 0, 0};
  expectSameBits(runCopy<float, 64>(x, std::vector<float>(want.size()), {view}), want, "expand");
}

TEST(StridedCopyKernel, ConcatInputsPlacedByOffsetAndStrides) {
  std::mt19937 rng(6);
  std::vector<float> a = randomRounded<f16>(rng, 2 * 3 * 4, -10, 10), b = randomRounded<f16>(rng, 2 * 5 * 4, -10, 10);
  auto want = floatsOf(test::runOp("Concat", {f32Tensor({2, 3, 4}, a), f32Tensor({2, 5, 4}, b)}, {{"axis", 1}})[0]);
  // Both inputs live in one buffer here (a, then b); each launch places one of them.
  std::vector<float> in = a;
  in.insert(in.end(), b.begin(), b.end());
  const auto outStrides = denseStrides({2, 8, 4});
  CopyView first{{2, 3, 4}, denseStrides({2, 3, 4}), outStrides, 0, 0};
  CopyView second{{2, 5, 4}, denseStrides({2, 5, 4}), outStrides, static_cast<int64_t>(a.size()), 3 * 4};
  expectSameBits(runCopy<f16, 128>(in, std::vector<float>(want.size()), {first, second}), want, "concat");
}

// ---- elementwise_binary -------------------------------------------------------------------------

// Strides of an operand of `shape` broadcast to `outShape` (aligned at the right, 0 on broadcast axes).
std::vector<int64_t> broadcastStrides(const std::vector<int64_t>& shape, const std::vector<int64_t>& outShape) {
  std::vector<int64_t> strides(outShape.size(), 0);
  const auto dense = denseStrides(shape);
  const size_t lead = outShape.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) strides[lead + i] = shape[i] == 1 ? 0 : dense[i];
  return strides;
}

template <class T, int OP, int NUM_THREADS>
void checkBinary(const std::vector<int64_t>& aShape, const std::vector<int64_t>& bShape, const std::vector<int64_t>& outShape, uint32_t seed) {
  static const char* kNames[] = {"Add", "Sub", "Mul", "Div"};
  SCOPED_TRACE(std::string(kNames[OP]) + " T=" + Element<T>::name);
  std::mt19937 rng(seed);
  std::vector<float> a = randomRounded<T>(rng, product(aShape), -10, 10), b = randomRounded<T>(rng, product(bShape), 0.5f, 4);
  for (size_t i = 0; i < b.size(); i += 2) b[i] = -b[i];
  std::vector<float> want = floatsOf(test::runOp(kNames[OP], {f32Tensor(aShape, a), f32Tensor(bShape, b)}, {})[0]);
  for (float& v : want) v = roundTo<T>(v);
  const int64_t count = product(outShape);
  const auto aStrides = broadcastStrides(aShape, outShape), bStrides = broadcastStrides(bShape, outShape);
  std::vector<float> first;
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<T> aBuffer(toStorage<T>(a)), bBuffer(toStorage<T>(b)), out(count);
    BinaryParams p{};
    p.out = out.get();
    p.a = aBuffer.get();
    p.b = bBuffer.get();
    p.rank = static_cast<int64_t>(outShape.size());
    for (size_t i = 0; i < outShape.size(); ++i) {
      p.shape[i] = outShape[i];
      p.a_strides[i] = aStrides[i];
      p.b_strides[i] = bStrides[i];
    }
    p.count = count;
    emu::launch(elementwise_binary<T, OP, NUM_THREADS>, emu::Dim3{gridFor(count, NUM_THREADS)}, emu::Dim3{NUM_THREADS}, p, options);
    expectSameBits(widen(out.read()), want, "binary result");
  }
}

TEST(ElementwiseBinaryKernel, BroadcastingArithmetic) {
  checkBinary<float, 0, 64>({2, 1, 5}, {3, 1}, {2, 3, 5}, 1);
  checkBinary<bf16, 1, 128>({4, 7}, {4, 7}, {4, 7}, 2);
  checkBinary<f16, 2, 64>({1}, {3, 1, 50}, {3, 1, 50}, 3);
  checkBinary<float, 3, 256>({5, 1, 1, 2, 1, 3}, {4, 1, 2, 3, 3}, {5, 4, 1, 2, 3, 3}, 4);
  checkBinary<bf16, 3, 64>({33}, {2, 1}, {2, 33}, 5);
  checkBinary<f16, 0, 64>({2, 40}, {40}, {2, 40}, 6);
}

// ---- cast ----------------------------------------------------------------------------------------

template <class TI, class TO, int NUM_THREADS>
void checkCast(uint32_t seed) {
  SCOPED_TRACE(std::string("cast ") + Element<TI>::name + " -> " + Element<TO>::name);
  std::mt19937 rng(seed);
  std::vector<float> x = randomRounded<TI>(rng, 1000, -70000, 70000);
  const float inf = std::numeric_limits<float>::infinity();
  // Specials: signed zeros, infinities, NaN, values past f16's range, f16 subnormals, halfway cases.
  const float special[] = {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), 65519.0f, 65520.0f, 1e-7f, -3e-8f, 1e-30f,
                           1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 1.0f + 1.0f / 256, 3.0e38f};
  for (size_t i = 0; i < std::size(special); ++i) x[i] = roundTo<TI>(special[i]);
  for (size_t i = std::size(special); i < 300; ++i) x[i] = roundTo<TI>(x[i] * 1e-6f);  // small magnitudes too
  Tensor input = f32Tensor({static_cast<int64_t>(x.size())}, x).convertTo(Element<TI>::dtype);
  std::vector<float> want = floatsOf(test::runOp("Cast", {input}, {{"to", Element<TO>::dtype}})[0]);
  for (const auto& options : schedules()) {
    SCOPED_TRACE(scheduleName(options));
    DeviceArray<TI> in(toStorage<TI>(x));
    DeviceArray<TO> out(x.size());
    CastParams p{out.get(), in.get(), static_cast<int64_t>(x.size())};
    emu::launch(cast<TI, TO, NUM_THREADS>, emu::Dim3{gridFor(p.count, NUM_THREADS)}, emu::Dim3{NUM_THREADS}, p, options);
    // Exact (NaN matches any NaN; the sign of zero is checked separately).
    std::vector<float> got = widen(out.read());
    expectClose<TO>(got, want, {0, 0}, "cast");
    for (size_t i = 0; i < want.size(); ++i) {
      if (want[i] == 0.0f) {
        EXPECT_EQ(std::signbit(got[i]), std::signbit(want[i])) << "element " << i;
      }
    }
  }
}

TEST(CastKernel, RoundsToNearestEvenWithSpecials) {
  checkCast<float, f16, 64>(1);
  checkCast<float, bf16, 128>(2);
  checkCast<f16, float, 64>(3);
  checkCast<bf16, f16, 64>(4);
  checkCast<f16, bf16, 256>(5);
  checkCast<bf16, float, 64>(6);
  checkCast<float, float, 64>(7);
}

}  // namespace
