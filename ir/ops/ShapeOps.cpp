// Ops that query or rearrange a tensor's shape: Shape, Size, Reshape, Flatten, Unsqueeze, Squeeze,
// Transpose, Expand, Tile. Their shape rules carry symbolic sizes through exporter shape arithmetic.
#include <algorithm>
#include <cstring>
#include <set>

#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/KnownInts.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {

// Shape's start/end attributes clamp like Python slicing, per the spec.
std::pair<int64_t, int64_t> shapeRange(const Op& op, int64_t rank) {
  auto clampIndex = [rank](int64_t i) { return std::clamp(i < 0 ? i + rank : i, int64_t{0}, rank); };
  int64_t start = clampIndex(op.intAttr("start", 0));
  int64_t end = op.hasAttr("end") ? clampIndex(op.intAttr("end", rank)) : rank;
  return {start, std::max(start, end)};
}

void inferShape(InferContext& ctx) {
  auto rank = rankOf(ctx, 0);
  if (!rank) {
    ctx.setResult(0, {DType::I64, Shape{ctx.unknownDim()}});
    return;
  }
  auto [start, end] = shapeRange(ctx.op(), static_cast<int64_t>(*rank));
  const Shape& dims = *ctx.operandType(0).shape;
  std::vector<Dim> contents(dims.begin() + start, dims.begin() + end);
  ctx.setResult(0, {DType::I64, Shape{Dim(end - start)}}, smallKnownInts(contents));
}

void evaluateShape(EvalContext& ctx) {
  const auto& dims = ctx.input(0).shape();
  auto [start, end] = shapeRange(ctx.op(), static_cast<int64_t>(dims.size()));
  std::vector<int64_t> contents(dims.begin() + start, dims.begin() + end);
  ctx.setOutput(0, Tensor::fromValues(DType::I64, {end - start}, contents));
}

void inferSize(InferContext& ctx) {
  auto count = ctx.operandType(0).numElements();
  ctx.setResult(0, {DType::I64, Shape{}}, count ? std::optional<std::vector<Dim>>({*count}) : std::nullopt);
}

// Reshape's target shape with 0 (copy) resolved and the position of -1, shared by rule and evaluator.
struct ReshapeTarget {
  Shape dims;
  std::optional<size_t> inferred;  // index of the -1 entry
  std::vector<size_t> uncopied;    // 0 entries left unresolved because the input rank is unknown
};

template <class Context>
ReshapeTarget resolveReshapeTarget(Context& ctx, const std::vector<Dim>& requested, const std::optional<Shape>& input) {
  bool allowZero = ctx.op().intAttr("allowzero", 0) != 0;
  ReshapeTarget target;
  bool anyZero = false;
  for (size_t i = 0; i < requested.size(); ++i) {
    Dim d = requested[i];
    auto c = d.constant();
    if (c == 0) {
      anyZero = true;
      if (!allowZero) {
        if (input && i >= input->size())
          ctx.error("shape entry ", i, " is 0 (copy the input dimension) but the input ", shapeStr(*input), " has rank ", input->size());
        if (input) d = (*input)[i];
        else target.uncopied.push_back(i);
      }
    } else if (c == -1) {
      if (target.inferred) ctx.error("shape ", shapeStr(requested), " has more than one -1");
      target.inferred = i;
    } else if (c && *c < 0) {
      ctx.error("shape entry ", i, " is ", *c, "; only -1 (infer) may be negative");
    }
    target.dims.push_back(d);
  }
  if (allowZero && anyZero && target.inferred) ctx.error("shape ", shapeStr(requested), " has both 0 and -1 with allowzero = 1");
  return target;
}

void inferReshape(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  if (ctx.operandType(1).dtype != DType::I64) ctx.error("the shape operand must be i64, got ", ctx.operandType(1).str());
  auto requested = ctx.operandInts(1);
  if (!requested) {
    auto length = vectorLength(ctx, 1, "the shape operand");
    ctx.setResult(0, {data.dtype, length ? std::optional<Shape>(ctx.unknownShape(static_cast<size_t>(*length))) : std::nullopt});
    return;
  }
  ReshapeTarget target = resolveReshapeTarget(ctx, *requested, data.shape);
  Shape& dims = target.dims;
  if (!data.hasRank()) {
    for (size_t i : target.uncopied) dims[i] = ctx.unknownDim();
    if (target.inferred) dims[*target.inferred] = ctx.unknownDim();
    ctx.setResult(0, {data.dtype, dims});
    return;
  }
  Dim total = *data.numElements();
  Dim others(1);
  for (size_t i = 0; i < dims.size(); ++i)
    if (i != target.inferred) others = others * dims[i];
  if (target.inferred) {
    Dim& inferred = dims[*target.inferred];
    if (others == Dim(0)) {
      ctx.error("cannot infer the -1 of shape ", shapeStr(*requested), ": the other dimensions multiply to 0");
    } else if (auto quotient = total.divideExactly(others)) {
      inferred = *quotient;
    } else if (total.isConstant() && others.isConstant()) {
      ctx.error("cannot reshape ", data.str(), " (", total.str(), " elements) to ", shapeStr(*requested), ": ",
                total.str(), " is not a multiple of ", others.str());
    } else {
      inferred = ctx.unknownDim();
    }
  } else if (total.isConstant() && others.isConstant() && total != others) {
    ctx.error("cannot reshape ", data.str(), " (", total.str(), " elements) to ", shapeStr(dims), " (", others.str(), " elements)");
  }
  auto known = dims.size() <= 1 ? ctx.operandInts(0) : std::nullopt;
  ctx.setResult(0, {data.dtype, dims}, known);
}

void evaluateReshape(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  std::vector<Dim> requested;
  for (int64_t v : ctx.input(1).toInt64Vector()) requested.emplace_back(v);
  ReshapeTarget target = resolveReshapeTarget(ctx, requested, toShape(data.shape()));
  std::vector<int64_t> shape = *allConstant(target.dims);
  if (target.inferred) {
    int64_t others = 1;
    for (size_t i = 0; i < shape.size(); ++i)
      if (i != *target.inferred) others *= shape[i];
    if (others == 0 || data.numElements() % others != 0)
      ctx.error("cannot reshape ", data.shapeStr(), " to ", shapeStr(requested));
    shape[*target.inferred] = data.numElements() / others;
  }
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  if (count != data.numElements()) ctx.error("cannot reshape ", data.shapeStr(), " to ", shapeStr(requested));
  ctx.setOutput(0, data.reshaped(shape));
}

int64_t flattenAxis(const Op& op, int64_t rank) {
  int64_t axis = op.intAttr("axis", 1);
  // The axis may equal the rank (everything in the first factor), so normalise against rank + 1.
  return normalizeAxis(axis, rank + 1, op);
}

void inferFlatten(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  if (!data.hasRank()) {
    ctx.setResult(0, {data.dtype, ctx.unknownShape(2)});
    return;
  }
  int64_t axis = flattenAxis(ctx.op(), static_cast<int64_t>(data.rank()));
  Dim outer(1), inner(1);
  for (size_t i = 0; i < data.rank(); ++i) {
    Dim& factor = static_cast<int64_t>(i) < axis ? outer : inner;
    factor = factor * data.dim(i);
  }
  ctx.setResult(0, {data.dtype, Shape{outer, inner}});
}

void evaluateFlatten(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  int64_t axis = flattenAxis(ctx.op(), static_cast<int64_t>(data.rank()));
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= data.shape()[static_cast<size_t>(i)];
  ctx.setOutput(0, data.reshaped({outer, outer == 0 ? 0 : data.numElements() / outer}));
}

// Unsqueeze: the output rank's positions that are new unit dims.
template <class Context>
std::vector<bool> unsqueezePositions(Context& ctx, const std::vector<int64_t>& axes, int64_t inputRank) {
  int64_t outRank = inputRank + static_cast<int64_t>(axes.size());
  std::vector<bool> inserted(static_cast<size_t>(outRank), false);
  for (int64_t axis : axes) {
    auto i = static_cast<size_t>(normalizeAxis(axis, outRank, ctx.op(), "axes entry"));
    if (inserted[i]) ctx.error("axes ", shapeStr(toShape(axes)), " name dimension ", i, " twice");
    inserted[i] = true;
  }
  return inserted;
}

void inferUnsqueeze(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  requireIndexInteger(ctx, 1, "axes");
  auto axes = ctx.operandConstInts(1);
  if (!data.hasRank() || !axes) {
    auto length = vectorLength(ctx, 1, "axes");
    bool rankKnown = data.hasRank() && length;
    ctx.setResult(0, {data.dtype, rankKnown ? std::optional<Shape>(ctx.unknownShape(data.rank() + static_cast<size_t>(*length))) : std::nullopt});
    return;
  }
  std::vector<bool> inserted = unsqueezePositions(ctx, *axes, static_cast<int64_t>(data.rank()));
  Shape dims;
  size_t next = 0;
  for (bool unit : inserted) dims.push_back(unit ? Dim(1) : data.dim(next++));
  auto known = dims.size() <= 1 ? ctx.operandInts(0) : std::nullopt;
  ctx.setResult(0, {data.dtype, dims}, known);
}

void evaluateUnsqueeze(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  std::vector<bool> inserted = unsqueezePositions(ctx, ctx.input(1).toInt64Vector(), static_cast<int64_t>(data.rank()));
  std::vector<int64_t> shape;
  size_t next = 0;
  for (bool unit : inserted) shape.push_back(unit ? 1 : data.shape()[next++]);
  ctx.setOutput(0, data.reshaped(shape));
}

// Squeeze with explicit axes: the set of removed input dims.
template <class Context>
std::vector<bool> squeezedPositions(Context& ctx, const std::vector<int64_t>& axes, const Shape& input) {
  std::vector<bool> removed(input.size(), false);
  for (int64_t axis : axes) {
    auto i = static_cast<size_t>(normalizeAxis(axis, static_cast<int64_t>(input.size()), ctx.op(), "axes entry"));
    if (removed[i]) ctx.error("axes ", shapeStr(toShape(axes)), " name dimension ", i, " twice");
    auto c = input[i].constant();
    if (c && *c != 1) ctx.error("cannot squeeze dimension ", i, " of ", shapeStr(input), ": its size is ", *c, ", not 1");
    removed[i] = true;
  }
  return removed;
}

void inferSqueeze(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  if (!data.hasRank()) {
    ctx.setResult(0, {data.dtype, std::nullopt});
    return;
  }
  std::vector<bool> removed(data.rank(), false);
  if (ctx.hasOperand(1)) {
    requireIndexInteger(ctx, 1, "axes");
    auto axes = ctx.operandConstInts(1);
    if (!axes) {
      auto length = vectorLength(ctx, 1, "axes");
      ctx.setResult(0, {data.dtype, length ? std::optional<Shape>(ctx.unknownShape(data.rank() - static_cast<size_t>(*length))) : std::nullopt});
      return;
    }
    removed = squeezedPositions(ctx, *axes, *data.shape);
  } else {
    for (size_t i = 0; i < data.rank(); ++i) {
      // A symbolic size may be 1 at run time (seq during decoding), so the rank is unknowable.
      if (!data.dim(i).isConstant()) {
        ctx.setResult(0, {data.dtype, std::nullopt});
        return;
      }
      removed[i] = data.dim(i).constant() == 1;
    }
  }
  Shape dims;
  for (size_t i = 0; i < data.rank(); ++i)
    if (!removed[i]) dims.push_back(data.dim(i));
  auto known = dims.size() <= 1 ? ctx.operandInts(0) : std::nullopt;
  ctx.setResult(0, {data.dtype, dims}, known);
}

void evaluateSqueeze(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  Shape input = toShape(data.shape());
  std::vector<bool> removed(data.rank(), false);
  if (ctx.hasInput(1)) {
    removed = squeezedPositions(ctx, ctx.input(1).toInt64Vector(), input);
  } else {
    for (size_t i = 0; i < data.rank(); ++i) removed[i] = data.shape()[i] == 1;
  }
  std::vector<int64_t> shape;
  for (size_t i = 0; i < data.rank(); ++i)
    if (!removed[i]) shape.push_back(data.shape()[i]);
  ctx.setOutput(0, data.reshaped(shape));
}

template <class Context>
std::vector<int64_t> transposePerm(Context& ctx, size_t rank) {
  std::vector<int64_t> perm;
  if (ctx.op().hasAttr("perm")) {
    perm = ctx.op().intsAttr("perm");
  } else {
    for (size_t i = rank; i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  }
  std::vector<bool> seen(rank, false);
  bool valid = perm.size() == rank;
  for (int64_t p : perm) {
    valid = valid && p >= 0 && p < static_cast<int64_t>(rank) && !seen[static_cast<size_t>(p)];
    if (valid) seen[static_cast<size_t>(p)] = true;
  }
  if (!valid) ctx.error("perm ", shapeStr(toShape(perm)), " is not a permutation of ", rank, " dimensions");
  return perm;
}

void inferTranspose(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  if (!data.hasRank()) {
    if (ctx.op().hasAttr("perm")) ctx.setResult(0, {data.dtype, ctx.unknownShape(ctx.op().intsAttr("perm").size())});
    else ctx.setResult(0, {data.dtype, std::nullopt});
    return;
  }
  Shape dims;
  for (int64_t p : transposePerm(ctx, data.rank())) dims.push_back(data.dim(static_cast<size_t>(p)));
  ctx.setResult(0, {data.dtype, dims});
}

void evaluateTranspose(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  std::vector<int64_t> perm = transposePerm(ctx, data.rank());
  std::vector<int64_t> shape, strides;
  std::vector<int64_t> inStrides = contiguousStrides(data.shape());
  for (int64_t p : perm) {
    shape.push_back(data.shape()[static_cast<size_t>(p)]);
    strides.push_back(inStrides[static_cast<size_t>(p)]);
  }
  Tensor out = Tensor::zeros(data.dtype(), shape);
  size_t size = dtypeSize(data.dtype());
  const std::byte* in = data.bytes();
  std::byte* dst = out.mutableBytes();
  forEachIndex(shape, [&](const std::vector<int64_t>& index, int64_t linear) {
    int64_t from = 0;
    for (size_t k = 0; k < index.size(); ++k) from += index[k] * strides[k];
    std::memcpy(dst + linear * size, in + from * size, size);
  });
  ctx.setOutput(0, out);
}

// Copies `data` into a tensor of shape `shape`, reading input element (index[k] mod dim) along
// each axis: broadcasting (dim 1) and tiling (dim divides) are both this loop.
Tensor replicate(const Tensor& data, const std::vector<int64_t>& shape) {
  size_t offset = shape.size() - data.rank();
  std::vector<int64_t> inStrides = contiguousStrides(data.shape());
  Tensor out = Tensor::zeros(data.dtype(), shape);
  size_t size = dtypeSize(data.dtype());
  const std::byte* in = data.bytes();
  std::byte* dst = out.mutableBytes();
  forEachIndex(shape, [&](const std::vector<int64_t>& index, int64_t linear) {
    int64_t from = 0;
    for (size_t k = 0; k < data.rank(); ++k) from += (index[k + offset] % data.shape()[k]) * inStrides[k];
    std::memcpy(dst + linear * size, in + from * size, size);
  });
  return out;
}

void inferExpand(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  if (ctx.operandType(1).dtype != DType::I64) ctx.error("the shape operand must be i64, got ", ctx.operandType(1).str());
  auto target = ctx.operandInts(1);
  if (!target) {
    auto length = vectorLength(ctx, 1, "the shape operand");
    if (!data.hasRank() || !length) {
      ctx.setResult(0, {data.dtype, std::nullopt});
      return;
    }
    ctx.setResult(0, {data.dtype, ctx.unknownShape(std::max(data.rank(), static_cast<size_t>(*length)))});
    return;
  }
  auto shape = broadcastShapes(data.shape, Shape(*target), ctx);
  std::optional<std::vector<Dim>> known;
  auto values = ctx.operandInts(0);
  if (shape && shape->size() <= 1 && values) {
    auto length = shape->empty() ? std::optional<int64_t>(1) : (*shape)[0].constant();
    if (length && static_cast<size_t>(*length) <= kMaxKnownInts && (values->size() == 1 || values->size() == static_cast<size_t>(*length))) {
      known.emplace();
      for (int64_t i = 0; i < *length; ++i) known->push_back(values->size() == 1 ? (*values)[0] : (*values)[static_cast<size_t>(i)]);
    }
  }
  ctx.setResult(0, {data.dtype, shape}, known);
}

void evaluateExpand(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  std::vector<int64_t> target = ctx.input(1).toInt64Vector();
  size_t rank = std::max(data.rank(), target.size());
  std::vector<int64_t> shape(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t a = i + data.rank() >= rank ? data.shape()[i + data.rank() - rank] : 1;
    int64_t b = i + target.size() >= rank ? target[i + target.size() - rank] : 1;
    if (a != b && a != 1 && b != 1)
      ctx.error("cannot expand ", data.shapeStr(), " to ", shapeStr(toShape(target)), " (dimension ", i, ")");
    shape[i] = a == 1 ? b : a;
  }
  ctx.setOutput(0, replicate(data, shape));
}

void inferTile(InferContext& ctx) {
  const TensorType& data = ctx.operandType(0);
  requireIndexInteger(ctx, 1, "repeats");
  if (!data.hasRank()) {
    ctx.setResult(0, {data.dtype, std::nullopt});
    return;
  }
  auto length = vectorLength(ctx, 1, "repeats");
  if (length && *length != static_cast<int64_t>(data.rank()))
    ctx.error("repeats has ", *length, " entries but the input ", data.str(), " has rank ", data.rank());
  auto repeats = ctx.operandInts(1);
  if (!repeats) {
    ctx.setResult(0, {data.dtype, ctx.unknownShape(data.rank())});
    return;
  }
  if (repeats->size() != data.rank())
    ctx.error("repeats ", shapeStr(*repeats), " has ", repeats->size(), " entries but the input ", data.str(), " has rank ", data.rank());
  Shape dims;
  for (size_t i = 0; i < data.rank(); ++i) {
    if (auto c = (*repeats)[i].constant(); c && *c < 0) ctx.error("repeats entry ", i, " is negative (", *c, ")");
    dims.push_back(data.dim(i) * (*repeats)[i]);
  }
  std::optional<std::vector<Dim>> known;
  auto values = ctx.operandInts(0);
  auto count = dims.size() == 1 ? dims[0].constant() : std::nullopt;
  if (values && count && static_cast<size_t>(*count) <= kMaxKnownInts && !values->empty()) {
    known.emplace();
    for (int64_t i = 0; i < *count; ++i) known->push_back((*values)[static_cast<size_t>(i) % values->size()]);
  }
  ctx.setResult(0, {data.dtype, dims}, known);
}

void evaluateTile(EvalContext& ctx) {
  const Tensor& data = ctx.input(0);
  std::vector<int64_t> repeats = ctx.input(1).toInt64Vector();
  if (repeats.size() != data.rank()) ctx.error("repeats has ", repeats.size(), " entries for an input of rank ", data.rank());
  std::vector<int64_t> shape;
  for (size_t i = 0; i < repeats.size(); ++i) {
    if (repeats[i] < 0) ctx.error("repeats entry ", i, " is negative (", repeats[i], ")");
    shape.push_back(data.shape()[i] * repeats[i]);
  }
  ctx.setOutput(0, replicate(data, shape));
}

}  // namespace

void registerShapeOps(OpRegistry& registry) {
  registry.add({
      .name = "Shape",
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = {{"start", AttrKind::Int}, {"end", AttrKind::Int}},
      .infer = inferShape,
      .evaluate = evaluateShape,
      .summary = "the operand's dimensions (optionally a start:end range of them) as an i64 vector",
  });
  registry.add({
      .name = "Size",
      .minOperands = 1,
      .maxOperands = 1,
      .infer = inferSize,
      .evaluate = [](EvalContext& ctx) { ctx.setOutput(0, Tensor::fromValues(DType::I64, {}, std::vector<int64_t>{ctx.input(0).numElements()})); },
      .summary = "the operand's element count as an i64 scalar",
  });
  registry.add({
      .name = "Reshape",
      .minOperands = 2,
      .maxOperands = 2,
      .attrs = {{"allowzero", AttrKind::Int}},
      .infer = inferReshape,
      .evaluate = evaluateReshape,
      .summary = "same elements, new shape (0 copies the input dim unless allowzero, -1 is inferred)",
  });
  registry.add({
      .name = "Flatten",
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = {{"axis", AttrKind::Int}},
      .infer = inferFlatten,
      .evaluate = evaluateFlatten,
      .summary = "reshapes to 2-D: dims before axis, dims from axis on",
  });
  registry.add({
      .name = "Unsqueeze",
      .minOperands = 2,
      .maxOperands = 2,
      .infer = inferUnsqueeze,
      .evaluate = evaluateUnsqueeze,
      .summary = "inserts unit dimensions at the given output axes",
  });
  registry.add({
      .name = "Squeeze",
      .minOperands = 1,
      .maxOperands = 2,
      .infer = inferSqueeze,
      .evaluate = evaluateSqueeze,
      .summary = "removes unit dimensions (the given axes, or all of them)",
  });
  registry.add({
      .name = "Transpose",
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = {{"perm", AttrKind::Ints}},
      .infer = inferTranspose,
      .evaluate = evaluateTranspose,
      .summary = "permutes dimensions (default: reverses them)",
  });
  registry.add({
      .name = "Expand",
      .minOperands = 2,
      .maxOperands = 2,
      .infer = inferExpand,
      .evaluate = evaluateExpand,
      .summary = "broadcasts the operand with a shape, both ways (numpy rule)",
  });
  registry.add({
      .name = "Tile",
      .minOperands = 2,
      .maxOperands = 2,
      .infer = inferTile,
      .evaluate = evaluateTile,
      .summary = "repeats the operand along each axis",
  });
}

}  // namespace pagedc
