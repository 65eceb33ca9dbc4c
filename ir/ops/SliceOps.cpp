// Ops that cut tensors apart or join them: Slice, Concat, Split, Pad. Slice's rule reasons about
// clamping symbolically and gives a symbolic size only where it is provably exact.
#include <algorithm>
#include <cstring>
#include <limits>

#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/KnownInts.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {

// Slice bounds at least this large (INT64_MAX, INT64_MIN from exporters) exceed any real size, so
// they clamp to the end of a symbolic dimension. Smaller constants are not assumed to.
constexpr int64_t kUnbounded = int64_t{1} << 62;

struct SliceParams {
  std::vector<int64_t> axes;  // normalised, one per sliced axis
  std::vector<Dim> starts, ends;
  std::vector<int64_t> steps;
};

// Reads and validates starts/ends/axes/steps; nullopt when some are not known at compile time.
template <class Context>
std::optional<SliceParams> sliceParams(Context& ctx, size_t rank, std::optional<std::vector<Dim>> starts,
                                       std::optional<std::vector<Dim>> ends, std::optional<std::vector<int64_t>> axes,
                                       std::optional<std::vector<int64_t>> steps, bool hasAxes, bool hasSteps) {
  if (!starts || !ends || (hasAxes && !axes) || (hasSteps && !steps)) return std::nullopt;
  if (starts->size() != ends->size())
    ctx.error("starts has ", starts->size(), " entries but ends has ", ends->size());
  SliceParams params{{}, *starts, *ends, {}};
  if (axes) {
    if (axes->size() != starts->size()) ctx.error("axes has ", axes->size(), " entries but starts has ", starts->size());
  } else {
    axes.emplace();
    for (size_t i = 0; i < starts->size(); ++i) axes->push_back(static_cast<int64_t>(i));
  }
  std::vector<bool> seen(rank, false);
  for (int64_t axis : *axes) {
    int64_t a = normalizeAxis(axis, static_cast<int64_t>(rank), ctx.op(), "axes entry");
    if (seen[static_cast<size_t>(a)]) ctx.error("axes ", shapeStr(toShape(*axes)), " name dimension ", a, " twice");
    seen[static_cast<size_t>(a)] = true;
    params.axes.push_back(a);
  }
  if (steps) {
    if (steps->size() != starts->size()) ctx.error("steps has ", steps->size(), " entries but starts has ", starts->size());
    for (int64_t s : *steps)
      if (s == 0) ctx.error("steps ", shapeStr(toShape(*steps)), " contain 0");
    params.steps = *steps;
  } else {
    params.steps.assign(starts->size(), 1);
  }
  return params;
}

// The spec's clamping on concrete sizes: the first index and the element count along one axis.
std::pair<int64_t, int64_t> sliceAxis(int64_t start, int64_t end, int64_t step, int64_t dim) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    int64_t count = end > start ? (end - start + step - 1) / step : 0;
    return {start, count};
  }
  start = std::clamp<int64_t>(start, 0, std::max<int64_t>(dim - 1, 0));
  if (dim == 0) start = -1;
  end = std::clamp<int64_t>(end, -1, dim - 1);
  int64_t count = start > end ? (start - end + (-step) - 1) / (-step) : 0;
  return {start, count};
}

// clamp(raw (+ dim when negative), lo, hi) for a symbolic dim, or nullopt when the result
// depends on sizes unknown here.
std::optional<Dim> clampIndex(const Dim& raw, const Dim& dim, const Dim& lo, const Dim& hi) {
  Dim value = raw;
  if (auto c = raw.constant()) {
    if (*c >= kUnbounded) return hi;
    if (*c <= -kUnbounded) return lo;
    if (*c < 0) value = raw + dim;
  } else if (!raw.isKnownNonNegative()) {
    return std::nullopt;  // might be negative at run time, which would wrap
  }
  if ((value - lo).isKnownNonNegative() && (hi - value).isKnownNonNegative()) return value;
  if ((value - hi).isKnownNonNegative()) return hi;
  if ((lo - value).isKnownNonNegative()) return lo;
  return std::nullopt;
}

std::optional<Dim> symbolicSliceSize(const Dim& start, const Dim& end, int64_t step, const Dim& dim) {
  if (auto d = dim.constant(); d && start.isConstant() && end.isConstant())
    return Dim(sliceAxis(*start.constant(), *end.constant(), step, *d).second);
  std::optional<Dim> first, last;
  if (step > 0) {
    first = clampIndex(start, dim, Dim(0), dim);
    last = clampIndex(end, dim, Dim(0), dim);
  } else {
    // Both ends clamp below the dimension; with an empty dim the count is 0 either way.
    first = clampIndex(start, dim, Dim(0), dim - Dim(1));
    last = clampIndex(end, dim, Dim(-1), dim - Dim(1));
  }
  if (!first || !last) return std::nullopt;
  Dim span = step > 0 ? *last - *first : *first - *last;
  int64_t stride = step > 0 ? step : -step;
  if (!span.isKnownNonNegative()) {
    if ((-span).isKnownNonNegative()) return Dim(0);
    return std::nullopt;
  }
  if (auto c = span.constant()) return Dim((*c + stride - 1) / stride);
  return span.divideExactly(Dim(stride));  // an exact quotient is the ceiling
}

void inferSlice(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  for (size_t i = 1; i < ctx.numOperands(); ++i)
    if (ctx.hasOperand(i)) requireIndexInteger(ctx, i, i == 1 ? "starts" : i == 2 ? "ends" : i == 3 ? "axes" : "steps");
  if (!data.hasRank()) {
    ctx.setResult(0, {data.dtype, std::nullopt});
    return;
  }
  auto params = sliceParams(ctx, data.rank(), ctx.operandInts(1), ctx.operandInts(2), ctx.operandConstInts(3),
                            ctx.operandConstInts(4), ctx.hasOperand(3), ctx.hasOperand(4));
  Shape dims = *data.shape;
  if (!params) {
    // Without axes every dimension may be sliced; with known axes only those.
    auto axes = ctx.operandConstInts(3);
    if (ctx.hasOperand(3) && !axes) return ctx.setResult(0, {data.dtype, ctx.unknownShape(data.rank())});
    auto length = vectorLength(ctx, 1, "starts");
    if (!axes && !length) return ctx.setResult(0, {data.dtype, ctx.unknownShape(data.rank())});
    if (!axes) {
      axes.emplace();
      for (int64_t i = 0; i < *length; ++i) axes->push_back(i);
    }
    for (int64_t axis : *axes) dims[static_cast<size_t>(normalizeAxis(axis, static_cast<int64_t>(data.rank()), ctx.op(), "axes entry"))] = ctx.unknownDim();
    ctx.setResult(0, {data.dtype, dims});
    return;
  }
  for (size_t i = 0; i < params->axes.size(); ++i) {
    auto axis = static_cast<size_t>(params->axes[i]);
    auto size = symbolicSliceSize(params->starts[i], params->ends[i], params->steps[i], data.dim(axis));
    dims[axis] = size ? *size : ctx.unknownDim();
  }
  // Known vectors stay known: slicing Shape(x) is how exporters pick dims.
  std::optional<std::vector<Dim>> known;
  auto values = ctx.operandInts(0);
  if (values && data.rank() == 1 && !params->axes.empty()) {
    auto starts = allConstant(params->starts), ends = allConstant(params->ends);
    if (starts && ends) {
      auto [first, count] = sliceAxis((*starts)[0], (*ends)[0], params->steps[0], static_cast<int64_t>(values->size()));
      known.emplace();
      for (int64_t k = 0; k < count; ++k) known->push_back((*values)[static_cast<size_t>(first + k * params->steps[0])]);
    }
  }
  ctx.setResult(0, {data.dtype, dims}, known);
}

void evaluateSlice(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  auto toDims = [](const Tensor& t) {
    std::vector<Dim> dims;
    for (int64_t v : t.toInt64Vector()) dims.emplace_back(v);
    return dims;
  };
  auto axes = ctx.hasInput(3) ? std::optional(ctx.input(3).toInt64Vector()) : std::nullopt;
  auto steps = ctx.hasInput(4) ? std::optional(ctx.input(4).toInt64Vector()) : std::nullopt;
  SliceParams params = *sliceParams(ctx, data.rank(), toDims(ctx.input(1)), toDims(ctx.input(2)), axes, steps, ctx.hasInput(3), ctx.hasInput(4));
  std::vector<int64_t> first(data.rank(), 0), step(data.rank(), 1), shape = data.shape();
  for (size_t i = 0; i < params.axes.size(); ++i) {
    auto axis = static_cast<size_t>(params.axes[i]);
    auto [start, count] = sliceAxis(*params.starts[i].constant(), *params.ends[i].constant(), params.steps[i], shape[axis]);
    first[axis] = start;
    step[axis] = params.steps[i];
    shape[axis] = count;
  }
  std::vector<int64_t> inStrides = contiguousStrides(data.shape());
  Tensor out = Tensor::zeros(data.dtype(), shape);
  size_t size = dtypeSize(data.dtype());
  const std::byte* in = data.bytes();
  std::byte* dst = out.mutableBytes();
  forEachIndex(shape, [&](const std::vector<int64_t>& index, int64_t linear) {
    int64_t from = 0;
    for (size_t k = 0; k < index.size(); ++k) from += (first[k] + index[k] * step[k]) * inStrides[k];
    std::memcpy(dst + linear * size, in + from * size, size);
  });
  ctx.setOutput(0, out);
}

// Two sizes that must be equal; a mismatch is an error only when both are constants.
Dim unifyDims(const Dim& a, const Dim& b) {
  if (a == b || b.isConstant()) return a.isConstant() ? a : b;
  return a;
}

void inferConcat(InferContext& ctx) {
  DType dtype = ctx.operandType(0).dtype;
  std::optional<Shape> result;
  for (size_t i = 0; i < ctx.numOperands(); ++i) {
    const TensorType& type = ctx.operandType(i);
    if (type.dtype != dtype) ctx.error("operand ", i, " is ", type.str(), " but operand 0 is ", dtypeName(dtype));
    if (type.hasRank() && !result) result = type.shape;
  }
  if (!result) return ctx.setResult(0, {dtype, std::nullopt});
  size_t rank = result->size();
  auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", 0), static_cast<int64_t>(rank), ctx.op()));
  Dim total(0);
  bool totalKnown = true;
  for (size_t i = 0; i < ctx.numOperands(); ++i) {
    const TensorType& type = ctx.operandType(i);
    if (!type.hasRank()) {
      totalKnown = false;
      continue;
    }
    if (type.rank() != rank) ctx.error("operand ", i, " is ", type.str(), " but operand 0 has rank ", rank);
    for (size_t d = 0; d < rank; ++d) {
      if (d == axis) continue;
      const Dim& a = (*result)[d];
      const Dim& b = type.dim(d);
      if (a.isConstant() && b.isConstant() && a != b)
        ctx.error("operand ", i, " is ", type.str(), ": dimension ", d, " is ", b.str(), " but another operand has ", a.str());
      (*result)[d] = unifyDims(a, b);
    }
    total = total + type.dim(axis);
  }
  (*result)[axis] = totalKnown ? total : ctx.unknownDim();
  std::optional<std::vector<Dim>> known;
  if (rank == 1) {
    known.emplace();
    for (size_t i = 0; i < ctx.numOperands() && known; ++i) {
      auto values = ctx.operandInts(i);
      if (!values) known.reset();
      else known->insert(known->end(), values->begin(), values->end());
    }
    if (known) known = smallKnownInts(*known);
  }
  ctx.setResult(0, {dtype, result}, known);
}

void evaluateConcat(EvalContext& ctx) {
  const Tensor& first = ctx.input(0);
  auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", 0), static_cast<int64_t>(first.rank()), ctx.op()));
  std::vector<int64_t> shape = first.shape();
  shape[axis] = 0;
  for (size_t i = 0; i < ctx.numInputs(); ++i) {
    const Tensor& t = ctx.input(i);
    for (size_t d = 0; d < shape.size(); ++d)
      if (t.rank() != shape.size() || (d != axis && t.shape()[d] != shape[d]))
        ctx.error("operand ", i, " has shape ", t.shapeStr(), ", incompatible with operand 0's ", first.shapeStr());
    shape[axis] += t.shape()[axis];
  }
  Tensor out = Tensor::zeros(first.dtype(), shape);
  size_t size = dtypeSize(first.dtype());
  int64_t outer = 1;
  for (size_t d = 0; d < axis; ++d) outer *= shape[d];
  int64_t outRow = out.numElements() / std::max<int64_t>(outer, 1);
  std::byte* dst = out.mutableBytes();
  int64_t offset = 0;  // elements of each output row already filled
  for (size_t i = 0; i < ctx.numInputs(); ++i) {
    const Tensor& t = ctx.input(i);
    int64_t row = outer == 0 ? 0 : t.numElements() / outer;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + static_cast<size_t>(o * outRow + offset) * size, t.bytes() + static_cast<size_t>(o * row) * size, static_cast<size_t>(row) * size);
    offset += row;
  }
  ctx.setOutput(0, out);
}

// Split sizes for a concrete or symbolic dimension; entries are nullopt where unknowable.
std::vector<std::optional<Dim>> splitSizes(InferContext& ctx, const Dim& dim) {
  size_t n = ctx.numResults();
  std::vector<std::optional<Dim>> sizes(n);
  if (ctx.hasOperand(1)) {
    requireIndexInteger(ctx, 1, "split");
    if (ctx.op().hasAttr("num_outputs")) ctx.error("give either the split operand or num_outputs, not both");
    auto split = ctx.operandInts(1);
    if (auto length = vectorLength(ctx, 1, "split"); length && *length != static_cast<int64_t>(n))
      ctx.error("split has ", *length, " entries but the op has ", n, " results");
    if (!split) return sizes;
    if (split->size() != n) ctx.error("split ", shapeStr(*split), " has ", split->size(), " entries but the op has ", n, " results");
    Dim total(0);
    for (size_t i = 0; i < n; ++i) {
      if (auto c = (*split)[i].constant(); c && *c < 0) ctx.error("split ", shapeStr(*split), " has a negative entry");
      sizes[i] = (*split)[i];
      total = total + (*split)[i];
    }
    if (total.isConstant() && dim.isConstant() && total != dim)
      ctx.error("split ", shapeStr(*split), " sums to ", total.str(), " but the dimension is ", dim.str());
    return sizes;
  }
  int64_t parts = ctx.op().intAttr("num_outputs", static_cast<int64_t>(n));
  if (parts != static_cast<int64_t>(n)) ctx.error("num_outputs is ", parts, " but the op has ", n, " results");
  if (auto d = dim.constant()) {
    // Opset 18: chunks of ceil(dim / n), the last one smaller.
    int64_t chunk = (*d + parts - 1) / parts;
    if (chunk * (parts - 1) > *d) ctx.error("cannot split dimension ", *d, " into ", parts, " outputs of size ", chunk);
    for (size_t i = 0; i < n; ++i) sizes[i] = Dim(i + 1 < n ? chunk : *d - chunk * (parts - 1));
  } else if (auto chunk = dim.divideExactly(Dim(parts))) {
    for (size_t i = 0; i < n; ++i) sizes[i] = *chunk;
  }
  return sizes;
}

void inferSplit(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  if (!data.hasRank()) {
    for (size_t i = 0; i < ctx.numResults(); ++i) ctx.setResult(i, {data.dtype, std::nullopt});
    return;
  }
  auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", 0), static_cast<int64_t>(data.rank()), ctx.op()));
  auto sizes = splitSizes(ctx, data.dim(axis));
  auto values = data.rank() == 1 ? ctx.operandInts(0) : std::nullopt;
  int64_t offset = 0;
  for (size_t i = 0; i < ctx.numResults(); ++i) {
    Shape dims = *data.shape;
    dims[axis] = sizes[i] ? *sizes[i] : ctx.unknownDim();
    std::optional<std::vector<Dim>> known;
    auto count = dims[axis].constant();
    if (values && count && offset >= 0 && offset + *count <= static_cast<int64_t>(values->size()))
      known.emplace(values->begin() + offset, values->begin() + offset + *count);
    offset = count && offset >= 0 ? offset + *count : -1;
    ctx.setResult(i, {data.dtype, dims}, known);
  }
}

void evaluateSplit(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", 0), static_cast<int64_t>(data.rank()), ctx.op()));
  size_t n = ctx.op().results.size();
  int64_t dim = data.shape()[axis];
  std::vector<int64_t> sizes;
  if (ctx.hasInput(1)) {
    sizes = ctx.input(1).toInt64Vector();
    int64_t total = 0;
    for (int64_t s : sizes) total += s;
    if (sizes.size() != n || total != dim) ctx.error("split ", shapeStr(toShape(sizes)), " does not fit dimension ", dim, " and ", n, " results");
  } else {
    auto parts = static_cast<int64_t>(n);
    int64_t chunk = (dim + parts - 1) / parts;
    if (chunk * (parts - 1) > dim) ctx.error("cannot split dimension ", dim, " into ", parts, " outputs");
    for (size_t i = 0; i < n; ++i) sizes.push_back(i + 1 < n ? chunk : dim - chunk * (parts - 1));
  }
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= data.shape()[d];
  for (size_t d = axis + 1; d < data.rank(); ++d) inner *= data.shape()[d];
  size_t size = dtypeSize(data.dtype());
  int64_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    std::vector<int64_t> shape = data.shape();
    shape[axis] = sizes[i];
    Tensor out = Tensor::zeros(data.dtype(), shape);
    std::byte* dst = out.mutableBytes();
    int64_t row = sizes[i] * inner;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + static_cast<size_t>(o * row) * size, data.bytes() + static_cast<size_t>(o * dim * inner + offset * inner) * size, static_cast<size_t>(row) * size);
    offset += sizes[i];
    ctx.setOutput(i, out);
  }
}

// Pad's axes (normalised) and per-axis begin/end amounts.
template <class Context>
std::vector<int64_t> padAxes(Context& ctx, size_t rank, const std::optional<std::vector<int64_t>>& axes) {
  std::vector<int64_t> result;
  if (!axes) {
    for (size_t i = 0; i < rank; ++i) result.push_back(static_cast<int64_t>(i));
    return result;
  }
  std::vector<bool> seen(rank, false);
  for (int64_t axis : *axes) {
    int64_t a = normalizeAxis(axis, static_cast<int64_t>(rank), ctx.op(), "axes entry");
    if (seen[static_cast<size_t>(a)]) ctx.error("axes name dimension ", a, " twice");
    seen[static_cast<size_t>(a)] = true;
    result.push_back(a);
  }
  return result;
}

void checkPadMode(const Op& op) {
  std::string mode = op.stringAttr("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    fail(op.describe(), ": unknown mode '", mode, "' (expected constant, reflect, edge or wrap)");
}

void inferPad(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  checkPadMode(ctx.op());
  requireIndexInteger(ctx, 1, "pads");
  if (ctx.hasOperand(2) && ctx.operandType(2).dtype != data.dtype)
    ctx.error("constant_value is ", ctx.operandType(2).str(), " but the data is ", data.str());
  if (ctx.hasOperand(3)) requireIndexInteger(ctx, 3, "axes");
  if (!data.hasRank()) return ctx.setResult(0, {data.dtype, std::nullopt});
  auto axesValues = ctx.operandConstInts(3);
  if (ctx.hasOperand(3) && !axesValues) return ctx.setResult(0, {data.dtype, ctx.unknownShape(data.rank())});
  std::vector<int64_t> axes = padAxes(ctx, data.rank(), axesValues);
  Shape dims = *data.shape;
  auto pads = ctx.operandInts(1);
  if (auto length = vectorLength(ctx, 1, "pads"); length && *length != 2 * static_cast<int64_t>(axes.size()))
    ctx.error("pads has ", *length, " entries but ", axes.size(), " axes need ", 2 * axes.size());
  for (size_t i = 0; i < axes.size(); ++i) {
    Dim& d = dims[static_cast<size_t>(axes[i])];
    if (!pads) d = ctx.unknownDim();
    else d = d + (*pads)[i] + (*pads)[i + axes.size()];
    if (auto c = d.constant(); c && *c < 0) ctx.error("pads ", shapeStr(*pads), " make dimension ", axes[i], " negative");
  }
  ctx.setResult(0, {data.dtype, dims});
}

// Where output position `i` (already shifted by the begin pad) reads from along an axis of size n.
int64_t padSource(int64_t i, int64_t n, const std::string& mode) {
  if (i >= 0 && i < n) return i;
  if (mode == "constant" || n == 0) return -1;
  if (mode == "edge") return std::clamp<int64_t>(i, 0, n - 1);
  if (mode == "wrap") return ((i % n) + n) % n;
  if (n == 1) return 0;
  int64_t period = 2 * (n - 1);  // reflect without repeating the edge element
  int64_t r = ((i % period) + period) % period;
  return r < n ? r : period - r;
}

void evaluatePad(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  checkPadMode(ctx.op());
  std::string mode = ctx.op().stringAttr("mode", "constant");
  auto axesValues = ctx.hasInput(3) ? std::optional(ctx.input(3).toInt64Vector()) : std::nullopt;
  std::vector<int64_t> axes = padAxes(ctx, data.rank(), axesValues);
  std::vector<int64_t> pads = ctx.input(1).toInt64Vector();
  if (pads.size() != 2 * axes.size()) ctx.error("pads has ", pads.size(), " entries but ", axes.size(), " axes need ", 2 * axes.size());
  std::vector<int64_t> begin(data.rank(), 0), shape = data.shape();
  for (size_t i = 0; i < axes.size(); ++i) {
    auto a = static_cast<size_t>(axes[i]);
    begin[a] = pads[i];
    shape[a] += pads[i] + pads[i + axes.size()];
    if (shape[a] < 0) ctx.error("pads make dimension ", a, " negative");
  }
  for (size_t a = 0; a < data.rank(); ++a)
    if (mode != "constant" && data.shape()[a] == 0 && shape[a] > 0) ctx.error("cannot pad an empty dimension in ", mode, " mode");
  size_t size = dtypeSize(data.dtype());
  std::vector<std::byte> fill(size);
  if (ctx.hasInput(2) && ctx.input(2).numElements() > 0) std::memcpy(fill.data(), ctx.input(2).bytes(), size);
  Tensor out = Tensor::zeros(data.dtype(), shape);
  std::vector<int64_t> inStrides = contiguousStrides(data.shape());
  const std::byte* in = data.bytes();
  std::byte* dst = out.mutableBytes();
  forEachIndex(shape, [&](const std::vector<int64_t>& index, int64_t linear) {
    int64_t from = 0;
    for (size_t k = 0; k < index.size(); ++k) {
      int64_t source = padSource(index[k] - begin[k], data.shape()[k], mode);
      if (source < 0) {
        from = -1;
        break;
      }
      from += source * inStrides[k];
    }
    std::memcpy(dst + linear * size, from < 0 ? fill.data() : in + from * size, size);
  });
  ctx.setOutput(0, out);
}

}  // namespace

void registerSliceOps(OpRegistry& registry) {
  registry.add({
      .name = "Slice",
      .minOperands = 3,
      .maxOperands = 5,
      .infer = inferSlice,
      .evaluate = evaluateSlice,
      .summary = "strided slice along some axes (starts, ends, axes, steps), clamped as in Python",
  });
  registry.add({
      .name = "Concat",
      .minOperands = 1,
      .maxOperands = -1,
      .attrs = {{"axis", AttrKind::Int, true}},
      .infer = inferConcat,
      .evaluate = evaluateConcat,
      .summary = "joins operands along an axis",
  });
  registry.add({
      .name = "Split",
      .minOperands = 1,
      .maxOperands = 2,
      .minResults = 1,
      .maxResults = -1,
      .attrs = {{"axis", AttrKind::Int}, {"num_outputs", AttrKind::Int}},
      .infer = inferSplit,
      .evaluate = evaluateSplit,
      .summary = "cuts the operand along an axis into given sizes or equal chunks (the last smaller)",
  });
  registry.add({
      .name = "Pad",
      .minOperands = 2,
      .maxOperands = 4,
      .attrs = {{"mode", AttrKind::String}},
      .infer = inferPad,
      .evaluate = evaluatePad,
      .summary = "pads (or crops, with negative pads) with a constant, reflection, edge or wrap",
  });
}

}  // namespace pagedc
