// Ops that read or write elements at positions given by an index tensor: Gather, GatherElements,
// GatherND, ScatterND, ScatterElements, NonZero.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {

// Indices may be negative (counted from the end); anything outside [-dim, dim) is an error.
template <class Context>
int64_t wrapIndex(Context& ctx, int64_t index, int64_t dim, size_t axis) {
  if (index < -dim || index >= dim) ctx.error("index ", index, " is out of range for dimension ", axis, " of size ", dim);
  return index < 0 ? index + dim : index;
}

void requireIndices(InferContext& ctx, size_t i) { requireIndexInteger(ctx, i, "indices"); }

void inferGather(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  const TensorType& indices = ctx.operandType(1);
  requireIndices(ctx, 1);
  if (!data.hasRank() || !indices.hasRank()) return ctx.setResult(0, {data.dtype, std::nullopt});
  if (data.rank() == 0) ctx.error("cannot gather from a scalar");
  auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", 0), static_cast<int64_t>(data.rank()), ctx.op()));
  Shape dims(data.shape->begin(), data.shape->begin() + static_cast<std::ptrdiff_t>(axis));
  dims.insert(dims.end(), indices.shape->begin(), indices.shape->end());
  dims.insert(dims.end(), data.shape->begin() + static_cast<std::ptrdiff_t>(axis) + 1, data.shape->end());

  auto constIndices = ctx.operandConstInts(1);
  auto dim = data.dim(axis).constant();
  std::vector<int64_t> wrapped;
  if (constIndices && dim)
    for (int64_t index : *constIndices) wrapped.push_back(wrapIndex(ctx, index, *dim, axis));
  // Gathering constant positions of a known vector (Shape(x)[1]) keeps the contents known.
  std::optional<std::vector<Dim>> known;
  auto values = ctx.operandInts(0);
  if (values && data.rank() == 1 && indices.rank() <= 1 && constIndices && dim) {
    known.emplace();
    for (int64_t index : wrapped) known->push_back((*values)[static_cast<size_t>(index)]);
  }
  ctx.setResult(0, {data.dtype, dims}, known);
}

void evaluateGather(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", 0), static_cast<int64_t>(data.rank()), ctx.op()));
  std::vector<int64_t> shape(data.shape().begin(), data.shape().begin() + static_cast<std::ptrdiff_t>(axis));
  shape.insert(shape.end(), indices.shape().begin(), indices.shape().end());
  shape.insert(shape.end(), data.shape().begin() + static_cast<std::ptrdiff_t>(axis) + 1, data.shape().end());
  int64_t outer = 1, inner = 1, dim = data.shape()[axis];
  for (size_t d = 0; d < axis; ++d) outer *= data.shape()[d];
  for (size_t d = axis + 1; d < data.rank(); ++d) inner *= data.shape()[d];
  std::vector<int64_t> positions = indices.toInt64Vector();
  for (int64_t& p : positions) p = wrapIndex(ctx, p, dim, axis);
  Tensor out = Tensor::zeros(data.dtype(), shape);
  size_t size = dtypeSize(data.dtype());
  std::byte* dst = out.mutableBytes();
  auto count = static_cast<int64_t>(positions.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < count; ++j)
      std::memcpy(dst + static_cast<size_t>((o * count + j) * inner) * size,
                  data.bytes() + static_cast<size_t>((o * dim + positions[static_cast<size_t>(j)]) * inner) * size,
                  static_cast<size_t>(inner) * size);
  ctx.setOutput(0, out);
}

// GatherElements and ScatterElements: data and indices have the same rank; dims may differ.
size_t elementsAxis(InferContext& ctx, const TensorType& data, const TensorType& indices) {
  if (data.rank() != indices.rank()) ctx.error("indices ", indices.str(), " must have the rank of the data ", data.str());
  if (data.rank() == 0) ctx.error("the data must have rank >= 1");
  return static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", 0), static_cast<int64_t>(data.rank()), ctx.op()));
}

void inferGatherElements(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  const TensorType& indices = ctx.operandType(1);
  requireIndices(ctx, 1);
  if (data.hasRank() && indices.hasRank()) elementsAxis(ctx, data, indices);
  ctx.setResult(0, {data.dtype, indices.shape});
}

// Input offset of `index` with the coordinate along `axis` replaced by `position`.
int64_t offsetWith(const std::vector<int64_t>& index, const std::vector<int64_t>& strides, size_t axis, int64_t position) {
  int64_t offset = 0;
  for (size_t k = 0; k < index.size(); ++k) offset += (k == axis ? position : index[k]) * strides[k];
  return offset;
}

void evaluateGatherElements(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  if (data.rank() != indices.rank()) ctx.error("indices ", indices.shapeStr(), " must have the rank of the data ", data.shapeStr());
  auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", 0), static_cast<int64_t>(data.rank()), ctx.op()));
  std::vector<int64_t> strides = contiguousStrides(data.shape());
  const int64_t* positions = indices.data<int64_t>();
  Tensor out = Tensor::zeros(data.dtype(), indices.shape());
  size_t size = dtypeSize(data.dtype());
  std::byte* dst = out.mutableBytes();
  forEachIndex(indices.shape(), [&](const std::vector<int64_t>& index, int64_t linear) {
    int64_t position = wrapIndex(ctx, positions[linear], data.shape()[axis], axis);
    std::memcpy(dst + linear * size, data.bytes() + offsetWith(index, strides, axis, position) * size, size);
  });
  ctx.setOutput(0, out);
}

void inferGatherND(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  const TensorType& indices = ctx.operandType(1);
  requireIndices(ctx, 1);
  if (!data.hasRank() || !indices.hasRank()) return ctx.setResult(0, {data.dtype, std::nullopt});
  int64_t batchDims = ctx.op().intAttr("batch_dims", 0);
  auto r = static_cast<int64_t>(data.rank()), q = static_cast<int64_t>(indices.rank());
  if (batchDims < 0 || batchDims >= std::min(r, q)) ctx.error("batch_dims ", batchDims, " must be less than both ranks (", r, ", ", q, ")");
  auto last = indices.dim(indices.rank() - 1).constant();
  if (!last) ctx.error("the last dimension of indices ", indices.str(), " must be a constant");
  if (*last < 1 || *last > r - batchDims) ctx.error("indices ", indices.str(), " index ", *last, " dimensions of data ", data.str(), " after ", batchDims, " batch dims");
  for (int64_t b = 0; b < batchDims; ++b) {
    const Dim& a = data.dim(static_cast<size_t>(b));
    const Dim& i = indices.dim(static_cast<size_t>(b));
    if (a.isConstant() && i.isConstant() && a != i) ctx.error("batch dimension ", b, " differs: data ", data.str(), ", indices ", indices.str());
  }
  Shape dims(indices.shape->begin(), indices.shape->end() - 1);
  dims.insert(dims.end(), data.shape->begin() + batchDims + *last, data.shape->end());
  ctx.setResult(0, {data.dtype, dims});
}

void evaluateGatherND(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  auto batchDims = static_cast<size_t>(ctx.op().intAttr("batch_dims", 0));
  auto last = static_cast<size_t>(indices.shape().back());
  std::vector<int64_t> shape(indices.shape().begin(), indices.shape().end() - 1);
  shape.insert(shape.end(), data.shape().begin() + static_cast<std::ptrdiff_t>(batchDims + last), data.shape().end());
  int64_t batches = 1, tuplesPerBatch = 1, slice = 1;
  for (size_t d = 0; d < batchDims; ++d) batches *= data.shape()[d];
  for (size_t d = batchDims; d + 1 < indices.rank(); ++d) tuplesPerBatch *= indices.shape()[d];
  for (size_t d = batchDims + last; d < data.rank(); ++d) slice *= data.shape()[d];
  std::vector<int64_t> strides = contiguousStrides(data.shape());
  int64_t batchStride = batchDims == 0 ? data.numElements() : strides[batchDims - 1];
  Tensor out = Tensor::zeros(data.dtype(), shape);
  size_t size = dtypeSize(data.dtype());
  std::byte* dst = out.mutableBytes();
  const int64_t* tuples = indices.data<int64_t>();
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t t = 0; t < tuplesPerBatch; ++t) {
      const int64_t* tuple = tuples + (b * tuplesPerBatch + t) * static_cast<int64_t>(last);
      int64_t from = b * batchStride;
      for (size_t k = 0; k < last; ++k) from += wrapIndex(ctx, tuple[k], data.shape()[batchDims + k], batchDims + k) * strides[batchDims + k];
      std::memcpy(dst + static_cast<size_t>((b * tuplesPerBatch + t) * slice) * size, data.bytes() + static_cast<size_t>(from) * size,
                  static_cast<size_t>(slice) * size);
    }
  }
  ctx.setOutput(0, out);
}

void checkReduction(const Op& op) {
  std::string reduction = op.stringAttr("reduction", "none");
  if (reduction != "none" && reduction != "add" && reduction != "mul" && reduction != "max" && reduction != "min")
    fail(op.describe(), ": unknown reduction '", reduction, "' (expected none, add, mul, max or min)");
}

// Combines an update into an element of canonical storage (bool: add is or, mul is and).
template <class T>
void combine(std::byte* element, const std::byte* update, const std::string& reduction) {
  T a, b;
  std::memcpy(&a, element, sizeof(T));
  std::memcpy(&b, update, sizeof(T));
  T r = b;
  if constexpr (std::is_same_v<T, uint8_t>) {
    if (reduction == "add" || reduction == "max") r = a || b;
    else if (reduction == "mul" || reduction == "min") r = a && b;
  } else {
    if (reduction == "add") r = a + b;
    else if (reduction == "mul") r = a * b;
    else if (reduction == "max") r = std::max(a, b);
    else if (reduction == "min") r = std::min(a, b);
  }
  std::memcpy(element, &r, sizeof(T));
}

void combineElement(DType dtype, std::byte* element, const std::byte* update, const std::string& reduction) {
  if (dtype == DType::F32) combine<float>(element, update, reduction);
  else if (dtype == DType::I64) combine<int64_t>(element, update, reduction);
  else combine<uint8_t>(element, update, reduction);
}

void inferScatterND(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  const TensorType& indices = ctx.operandType(1);
  const TensorType& updates = ctx.operandType(2);
  checkReduction(ctx.op());
  requireIndices(ctx, 1);
  if (updates.dtype != data.dtype) ctx.error("updates ", updates.str(), " must have the element type of the data ", data.str());
  if (data.hasRank() && indices.hasRank() && updates.hasRank()) {
    if (indices.rank() == 0) ctx.error("indices must have rank >= 1");
    if (auto last = indices.dim(indices.rank() - 1).constant()) {
      if (*last > static_cast<int64_t>(data.rank())) ctx.error("indices ", indices.str(), " index more dimensions than the data ", data.str(), " has");
      Shape expected(indices.shape->begin(), indices.shape->end() - 1);
      expected.insert(expected.end(), data.shape->begin() + *last, data.shape->end());
      bool fits = expected.size() == updates.rank();
      for (size_t i = 0; fits && i < expected.size(); ++i)
        fits = !(expected[i].isConstant() && updates.dim(i).isConstant() && expected[i] != updates.dim(i));
      if (!fits) ctx.error("updates ", updates.str(), " must have shape ", shapeStr(expected));
    }
  }
  ctx.setResult(0, data);
}

void evaluateScatterND(EvalContext& ctx) {
  Tensor out = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const Tensor& updates = ctx.input(2);
  std::string reduction = ctx.op().stringAttr("reduction", "none");
  auto last = static_cast<size_t>(indices.shape().back());
  int64_t tuples = 1;
  for (size_t d = 0; d + 1 < indices.rank(); ++d) tuples *= indices.shape()[d];
  int64_t slice = 1;
  for (size_t d = last; d < out.rank(); ++d) slice *= out.shape()[d];
  std::vector<int64_t> strides = contiguousStrides(out.shape());
  size_t size = dtypeSize(out.dtype());
  std::byte* dst = out.mutableBytes();
  const int64_t* tupleData = indices.data<int64_t>();
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t to = 0;
    for (size_t k = 0; k < last; ++k) to += wrapIndex(ctx, tupleData[t * static_cast<int64_t>(last) + static_cast<int64_t>(k)], out.shape()[k], k) * strides[k];
    for (int64_t e = 0; e < slice; ++e)
      combineElement(out.dtype(), dst + static_cast<size_t>(to + e) * size, updates.bytes() + static_cast<size_t>(t * slice + e) * size, reduction);
  }
  ctx.setOutput(0, out);
}

void inferScatterElements(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  const TensorType& indices = ctx.operandType(1);
  const TensorType& updates = ctx.operandType(2);
  checkReduction(ctx.op());
  requireIndices(ctx, 1);
  if (updates.dtype != data.dtype) ctx.error("updates ", updates.str(), " must have the element type of the data ", data.str());
  if (data.hasRank() && indices.hasRank()) elementsAxis(ctx, data, indices);
  if (indices.hasRank() && updates.hasRank() && indices.rank() != updates.rank())
    ctx.error("updates ", updates.str(), " must have the shape of indices ", indices.str());
  ctx.setResult(0, data);
}

void evaluateScatterElements(EvalContext& ctx) {
  Tensor out = ctx.input(0);
  const Tensor& indices = ctx.input(1);
  const Tensor& updates = ctx.input(2);
  if (indices.shape() != updates.shape()) ctx.error("updates ", updates.shapeStr(), " must have the shape of indices ", indices.shapeStr());
  std::string reduction = ctx.op().stringAttr("reduction", "none");
  auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", 0), static_cast<int64_t>(out.rank()), ctx.op()));
  std::vector<int64_t> strides = contiguousStrides(out.shape());
  size_t size = dtypeSize(out.dtype());
  std::byte* dst = out.mutableBytes();
  const int64_t* positions = indices.data<int64_t>();
  forEachIndex(indices.shape(), [&](const std::vector<int64_t>& index, int64_t linear) {
    int64_t position = wrapIndex(ctx, positions[linear], out.shape()[axis], axis);
    combineElement(out.dtype(), dst + offsetWith(index, strides, axis, position) * size, updates.bytes() + linear * size, reduction);
  });
  ctx.setOutput(0, out);
}

void inferNonZero(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  // How many elements are nonzero is known only at run time.
  Dim count = ctx.unknownDim();
  ctx.setResult(0, {DType::I64, data.hasRank() ? std::optional<Shape>(Shape{Dim(static_cast<int64_t>(data.rank())), count}) : std::nullopt});
}

void evaluateNonZero(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  std::vector<std::vector<int64_t>> found;
  size_t size = dtypeSize(data.dtype());
  std::vector<std::byte> zero(size);
  forEachIndex(data.shape(), [&](const std::vector<int64_t>& index, int64_t linear) {
    bool nonzero = data.dtype() == DType::F32 ? data.data<float>()[linear] != 0.0f : std::memcmp(data.bytes() + linear * size, zero.data(), size) != 0;
    if (nonzero) found.push_back(index);
  });
  auto count = static_cast<int64_t>(found.size());
  Tensor out = Tensor::zeros(DType::I64, {static_cast<int64_t>(data.rank()), count});
  auto* dst = out.mutableData<int64_t>();
  for (int64_t j = 0; j < count; ++j)
    for (size_t k = 0; k < data.rank(); ++k) dst[static_cast<int64_t>(k) * count + j] = found[static_cast<size_t>(j)][k];
  ctx.setOutput(0, out);
}

}  // namespace

void registerIndexingOps(OpRegistry& registry) {
  registry.add({
      .name = "Gather",
      .minOperands = 2,
      .maxOperands = 2,
      .attrs = {{"axis", AttrKind::Int}},
      .infer = inferGather,
      .evaluate = evaluateGather,
      .summary = "takes slices along an axis at the given (possibly negative) indices",
  });
  registry.add({
      .name = "GatherElements",
      .minOperands = 2,
      .maxOperands = 2,
      .attrs = {{"axis", AttrKind::Int}},
      .infer = inferGatherElements,
      .evaluate = evaluateGatherElements,
      .summary = "takes one element per index, the index replacing the coordinate along an axis",
  });
  registry.add({
      .name = "GatherND",
      .minOperands = 2,
      .maxOperands = 2,
      .attrs = {{"batch_dims", AttrKind::Int}},
      .infer = inferGatherND,
      .evaluate = evaluateGatherND,
      .summary = "takes slices at index tuples (the innermost indices dimension)",
  });
  registry.add({
      .name = "ScatterND",
      .minOperands = 3,
      .maxOperands = 3,
      .attrs = {{"reduction", AttrKind::String}},
      .infer = inferScatterND,
      .evaluate = evaluateScatterND,
      .summary = "a copy of the data with slices at index tuples replaced or combined with updates",
  });
  registry.add({
      .name = "ScatterElements",
      .minOperands = 3,
      .maxOperands = 3,
      .attrs = {{"axis", AttrKind::Int}, {"reduction", AttrKind::String}},
      .infer = inferScatterElements,
      .evaluate = evaluateScatterElements,
      .summary = "a copy of the data with elements at indices along an axis replaced or combined with updates",
  });
  registry.add({
      .name = "NonZero",
      .minOperands = 1,
      .maxOperands = 1,
      .infer = inferNonZero,
      .evaluate = evaluateNonZero,
      .summary = "coordinates of the nonzero elements, i64[rank, count]; the count is data-dependent",
  });
}

}  // namespace pagedc
