// Data-movement and elementwise kernels.
#include "runtime/cpu/TensorKernels.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>

#include "ir/Error.h"
#include "ir/HalfFloat.h"

namespace pagedc::cpu {

namespace {
constexpr int64_t kParallelBytes = 1 << 17;

int64_t product(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}
}  // namespace

void permute(const std::byte* src, std::byte* dst, size_t elementSize, std::span<const int64_t> srcShape, std::span<const int64_t> perm) {
  const size_t rank = srcShape.size();
  if (rank > kMaxRank || perm.size() != rank) fail("permute: rank ", rank, " with ", perm.size(), " permutation entries");
  std::array<int64_t, kMaxRank> srcStrides{}, dstShape{}, strides{};
  int64_t stride = 1;
  for (size_t i = rank; i-- > 0;) {
    srcStrides[i] = stride;
    stride *= srcShape[i];
  }
  for (size_t i = 0; i < rank; ++i) {
    dstShape[i] = srcShape[static_cast<size_t>(perm[i])];
    strides[i] = srcStrides[static_cast<size_t>(perm[i])];
  }
  const int64_t total = product(srcShape);
  if (total == 0) return;
  if (rank == 0) {
    std::memcpy(dst, src, elementSize);
    return;
  }
  // The innermost destination axis is copied as a run when it is also innermost in the source.
  const int64_t innerCount = dstShape[rank - 1];
  const bool contiguousInner = strides[rank - 1] == 1;
  const int64_t rows = total / innerCount;
#pragma omp parallel for schedule(static) if (total * static_cast<int64_t>(elementSize) >= kParallelBytes)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t offset = 0, rest = row;
    for (size_t i = rank - 1; i-- > 0;) {
      offset += (rest % dstShape[i]) * strides[i];
      rest /= dstShape[i];
    }
    std::byte* out = dst + static_cast<size_t>(row * innerCount) * elementSize;
    if (contiguousInner) {
      std::memcpy(out, src + static_cast<size_t>(offset) * elementSize, static_cast<size_t>(innerCount) * elementSize);
    } else if (elementSize == 4) {
      const auto* in = reinterpret_cast<const uint32_t*>(src) + offset;
      auto* o = reinterpret_cast<uint32_t*>(out);
      for (int64_t j = 0; j < innerCount; ++j) o[j] = in[j * strides[rank - 1]];
    } else {
      for (int64_t j = 0; j < innerCount; ++j)
        std::memcpy(out + static_cast<size_t>(j) * elementSize, src + static_cast<size_t>(offset + j * strides[rank - 1]) * elementSize, elementSize);
    }
  }
}

void gather(const GatherArgs& a) {
  for (int64_t i = 0; i < a.numIndices; ++i) {
    const int64_t index = a.indices[i];
    if (index < -a.axisSize || index >= a.axisSize)
      fail(a.what, " ", index, " at position ", i, " is outside 0..", a.axisSize - 1);
  }
  const size_t inSize = dtypeSize(a.dataType), outSize = dtypeSize(a.outType);
  const bool sameType = a.dataType == a.outType;
  if (!sameType && a.outType != DType::F32) fail("gather: cannot convert ", dtypeName(a.dataType), " to ", dtypeName(a.outType));
  const int64_t rows = a.outer * a.numIndices;
#pragma omp parallel for schedule(static) if (rows * a.inner * static_cast<int64_t>(outSize) >= kParallelBytes)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t o = row / a.numIndices, i = row % a.numIndices;
    int64_t index = a.indices[i];
    if (index < 0) index += a.axisSize;
    const std::byte* in = a.data + static_cast<size_t>((o * a.axisSize + index) * a.inner) * inSize;
    std::byte* out = a.out + static_cast<size_t>(row * a.inner) * outSize;
    if (sameType) {
      std::memcpy(out, in, static_cast<size_t>(a.inner) * inSize);
      continue;
    }
    auto* f = reinterpret_cast<float*>(out);
    const auto* h = reinterpret_cast<const uint16_t*>(in);
    if (a.dataType == DType::BF16) {
      for (int64_t j = 0; j < a.inner; ++j) f[j] = bf16ToFloat(h[j]);
    } else if (a.dataType == DType::F16) {
      for (int64_t j = 0; j < a.inner; ++j) f[j] = f16ToFloat(h[j]);
    } else {
      fail("gather: cannot convert ", dtypeName(a.dataType), " to f32");
    }
  }
}

void copyAxisBlock(const std::byte* src, int64_t srcAxis, int64_t srcOffset, std::byte* dst, int64_t dstAxis, int64_t dstOffset,
                   int64_t count, int64_t outer, int64_t inner, size_t elementSize) {
  const size_t run = static_cast<size_t>(count * inner) * elementSize;
#pragma omp parallel for schedule(static) if (static_cast<int64_t>(run) * outer >= kParallelBytes)
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + static_cast<size_t>((o * dstAxis + dstOffset) * inner) * elementSize,
                src + static_cast<size_t>((o * srcAxis + srcOffset) * inner) * elementSize, run);
}

void sliceCopy(const std::byte* src, std::span<const int64_t> srcShape, std::byte* dst, std::span<const int64_t> dstShape,
               std::span<const int64_t> starts, std::span<const int64_t> steps, size_t elementSize) {
  const size_t rank = dstShape.size();
  const int64_t total = product(dstShape);
  if (total == 0) return;
  if (rank == 0) {
    std::memcpy(dst, src, elementSize);
    return;
  }
  std::array<int64_t, kMaxRank> srcStrides{};
  int64_t stride = 1;
  for (size_t i = rank; i-- > 0;) {
    srcStrides[i] = stride;
    stride *= srcShape[i];
  }
  const int64_t inner = dstShape[rank - 1], innerStep = steps[rank - 1];
  const int64_t rows = total / inner;
#pragma omp parallel for schedule(static) if (total * static_cast<int64_t>(elementSize) >= kParallelBytes)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t offset = starts[rank - 1], rest = row;
    for (size_t i = rank - 1; i-- > 0;) {
      offset += (starts[i] + (rest % dstShape[i]) * steps[i]) * srcStrides[i];
      rest /= dstShape[i];
    }
    std::byte* out = dst + static_cast<size_t>(row * inner) * elementSize;
    if (innerStep == 1) {
      std::memcpy(out, src + static_cast<size_t>(offset) * elementSize, static_cast<size_t>(inner) * elementSize);
    } else {
      for (int64_t j = 0; j < inner; ++j)
        std::memcpy(out + static_cast<size_t>(j) * elementSize, src + static_cast<size_t>(offset + j * innerStep) * elementSize, elementSize);
    }
  }
}

namespace {
template <BinaryOp op, class T>
inline T apply(T x, T y) {
  if constexpr (op == BinaryOp::Add) return x + y;
  if constexpr (op == BinaryOp::Sub) return x - y;
  if constexpr (op == BinaryOp::Mul) return x * y;
  return x / y;
}

template <BinaryOp op, class T>
__attribute__((target_clones("avx512f", "avx2", "default"))) void sameShapeLoop(const T* a, const T* b, T* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = apply<op, T>(a[i], b[i]);
}

template <BinaryOp op, class T>
void binaryTyped(const T* a, std::span<const int64_t> aShape, const T* b, std::span<const int64_t> bShape, T* out,
                 std::span<const int64_t> outShape) {
  const size_t rank = outShape.size();
  const int64_t total = product(outShape);
  if constexpr (op == BinaryOp::Div && std::is_integral_v<T>)
    for (int64_t i = 0; i < product(bShape); ++i)
      if (b[i] == 0) fail("integer division by zero");
  if (std::ranges::equal(aShape, outShape) && std::ranges::equal(bShape, outShape)) {
    constexpr int64_t kChunk = 8192;
#pragma omp parallel for schedule(static) if (total * 4 >= kParallelBytes)
    for (int64_t c = 0; c < (total + kChunk - 1) / kChunk; ++c)
      sameShapeLoop<op, T>(a + c * kChunk, b + c * kChunk, out + c * kChunk, std::min(kChunk, total - c * kChunk));
    return;
  }
  // General broadcasting: strides of 0 on broadcast axes, rows along the last output axis.
  std::array<int64_t, kMaxRank> aStrides{}, bStrides{};
  auto fill = [&](std::span<const int64_t> shape, std::array<int64_t, kMaxRank>& strides) {
    int64_t stride = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      const size_t axis = shape.size() - 1 - i, outAxis = rank - 1 - i;
      strides[outAxis] = shape[axis] == 1 ? 0 : stride;
      stride *= shape[axis];
    }
  };
  fill(aShape, aStrides);
  fill(bShape, bStrides);
  const int64_t inner = rank == 0 ? 1 : outShape[rank - 1];
  const int64_t rows = inner == 0 ? 0 : total / inner;
#pragma omp parallel for schedule(static) if (total * 4 >= kParallelBytes)
  for (int64_t row = 0; row < rows; ++row) {
    int64_t aOffset = 0, bOffset = 0, rest = row;
    for (size_t i = rank - 1; i-- > 0;) {
      const int64_t index = rest % outShape[i];
      rest /= outShape[i];
      aOffset += index * aStrides[i];
      bOffset += index * bStrides[i];
    }
    const int64_t as = rank ? aStrides[rank - 1] : 0, bs = rank ? bStrides[rank - 1] : 0;
    T* o = out + row * inner;
    for (int64_t j = 0; j < inner; ++j) o[j] = apply<op, T>(a[aOffset + j * as], b[bOffset + j * bs]);
  }
}

template <class T>
void binaryOf(BinaryOp op, const T* a, std::span<const int64_t> aShape, const T* b, std::span<const int64_t> bShape, T* out,
              std::span<const int64_t> outShape) {
  switch (op) {
    case BinaryOp::Add: return binaryTyped<BinaryOp::Add, T>(a, aShape, b, bShape, out, outShape);
    case BinaryOp::Sub: return binaryTyped<BinaryOp::Sub, T>(a, aShape, b, bShape, out, outShape);
    case BinaryOp::Mul: return binaryTyped<BinaryOp::Mul, T>(a, aShape, b, bShape, out, outShape);
    case BinaryOp::Div: return binaryTyped<BinaryOp::Div, T>(a, aShape, b, bShape, out, outShape);
  }
}
}  // namespace

void binary(BinaryOp op, DType type, const void* a, std::span<const int64_t> aShape, const void* b, std::span<const int64_t> bShape, void* out,
            std::span<const int64_t> outShape) {
  if (outShape.size() > kMaxRank || aShape.size() > outShape.size() || bShape.size() > outShape.size())
    fail("binary: ranks ", aShape.size(), " and ", bShape.size(), " do not broadcast to rank ", outShape.size());
  if (type == DType::F32)
    return binaryOf(op, static_cast<const float*>(a), aShape, static_cast<const float*>(b), bShape, static_cast<float*>(out), outShape);
  if (type == DType::I64)
    return binaryOf(op, static_cast<const int64_t*>(a), aShape, static_cast<const int64_t*>(b), bShape, static_cast<int64_t*>(out), outShape);
  fail("binary: ", dtypeName(type), " is not supported (f32 or i64)");
}

}  // namespace pagedc::cpu
