// Reductions and ops along one axis (ONNX opset 23 semantics): Reduce*, ArgMax/ArgMin, Softmax, LogSoftmax, Hardmax, CumSum, TopK.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "ir/Interpreter.h"
#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {

using BoolStorage = uint8_t;

enum class ReduceKind { Sum, Mean, Max, Min, Prod, L1, L2, SumSquare, LogSum, LogSumExp };

// Which axes a Reduce* op reduces, once the axes operand (if any) has been read.
struct ReduceAxes {
  bool identity = false;       // noop_with_empty_axes with no axes: the op passes data through
  std::vector<int64_t> axes;   // normalised, sorted
};

ReduceAxes resolveAxes(const Op& op, const std::vector<int64_t>& given, int64_t rank) {
  ReduceAxes result;
  if (given.empty()) {
    if (op.intAttr("noop_with_empty_axes", 0) != 0) {
      result.identity = true;
      return result;
    }
    result.axes.resize(static_cast<size_t>(rank));
    std::iota(result.axes.begin(), result.axes.end(), 0);
    return result;
  }
  result.axes = normalizeAxes(given, rank, op);
  return result;
}

Shape reducedShape(const Shape& in, const std::vector<int64_t>& axes, bool keepdims) {
  Shape out;
  for (size_t d = 0; d < in.size(); ++d) {
    bool reduced = std::binary_search(axes.begin(), axes.end(), static_cast<int64_t>(d));
    if (!reduced) out.push_back(in[d]);
    else if (keepdims) out.emplace_back(1);
  }
  return out;
}

// ReduceSum/ReduceProd of a small known integer vector stay known (ReduceProd(Shape(x)) is a
// common way of computing a flattened size).
std::optional<std::vector<Dim>> reduceKnownInts(const InferContext& ctx, ReduceKind kind, const TensorType& result,
                                                const ReduceAxes& axes) {
  if (!isInteger(result.dtype) || !result.hasRank() || result.rank() > 1) return std::nullopt;
  if (kind != ReduceKind::Sum && kind != ReduceKind::Prod) return std::nullopt;
  auto in = ctx.operandInts(0);
  if (!in) return std::nullopt;
  if (axes.identity) return in;
  Dim acc = kind == ReduceKind::Sum ? Dim(0) : Dim(1);
  for (const Dim& d : *in) acc = kind == ReduceKind::Sum ? acc + d : acc * d;
  return std::vector<Dim>{acc};
}

void inferReduce(InferContext& ctx, ReduceKind kind) {
  DType type = ctx.operandType(0).dtype;
  bool boolAllowed = kind == ReduceKind::Max || kind == ReduceKind::Min;
  if (type == DType::Bool && !boolAllowed) ctx.error("operand 0 must be numeric, got bool");
  if (ctx.hasOperand(1)) requireInteger(ctx, 1);
  bool keepdims = ctx.op().intAttr("keepdims", 1) != 0;
  const std::optional<Shape>& inShape = ctx.operandType(0).shape;
  if (!inShape) {
    ctx.setResult(0, {type, std::nullopt});
    return;
  }
  auto rank = static_cast<int64_t>(inShape->size());
  std::optional<std::vector<int64_t>> given = ctx.hasOperand(1) ? ctx.operandConstInts(1) : std::vector<int64_t>{};
  if (given) {
    ReduceAxes axes = resolveAxes(ctx.op(), *given, rank);
    TensorType result{type, axes.identity ? *inShape : reducedShape(*inShape, axes.axes, keepdims)};
    ctx.setResult(0, result, reduceKnownInts(ctx, kind, result, axes));
    return;
  }
  // Axes known only at run time: each dim is either kept or reduced.
  if (keepdims) {
    ctx.setResult(0, {type, ctx.unknownShape(inShape->size())});
    return;
  }
  const TensorType& axesType = ctx.operandType(1);
  std::optional<Dim> count = axesType.numElements();
  if (count && count->isConstant()) {
    int64_t k = *count->constant();
    if (k == 0 && ctx.op().intAttr("noop_with_empty_axes", 0) != 0) ctx.setResult(0, {type, *inShape});
    else if (k == 0) ctx.setResult(0, {type, Shape{}});
    else if (k > rank) ctx.error("reduces ", k, " axes of a rank-", rank, " operand");
    else ctx.setResult(0, {type, ctx.unknownShape(static_cast<size_t>(rank - k))});
    return;
  }
  ctx.setResult(0, {type, std::nullopt});
}

// The reference reduction: every input element is folded into its output slot, found through
// strides that are zero on the reduced axes.
template <class Acc, class Load, class Fold>
std::vector<Acc> foldInto(const std::vector<int64_t>& inShape, const std::vector<int64_t>& keptShape, Acc init, Load load, Fold fold) {
  std::vector<Acc> acc(static_cast<size_t>(shapeProduct(keptShape)), init);
  std::vector<int64_t> outStrides = broadcastStrides(keptShape, inShape);
  forEachIndex(inShape, {outStrides}, [&](int64_t i, const int64_t* offsets) {
    Acc& slot = acc[static_cast<size_t>(offsets[0])];
    slot = fold(slot, load(i));
  });
  return acc;
}

Tensor reduceFloat(const Tensor& x, const std::vector<int64_t>& keptShape, ReduceKind kind) {
  const float* p = x.data<float>();
  auto load = [p](int64_t i) { return static_cast<double>(p[i]); };
  double count = static_cast<double>(x.numElements()) / static_cast<double>(std::max<int64_t>(1, shapeProduct(keptShape)));
  if (x.numElements() == 0) count = 0;
  std::vector<double> acc;
  const double inf = std::numeric_limits<double>::infinity();
  switch (kind) {
    case ReduceKind::Sum:
    case ReduceKind::Mean:
    case ReduceKind::LogSum:
      acc = foldInto<double>(x.shape(), keptShape, 0.0, load, [](double a, double v) { return a + v; });
      break;
    case ReduceKind::Max:
      acc = foldInto<double>(x.shape(), keptShape, -inf, load, [](double a, double v) { return std::isnan(v) || v > a ? v : a; });
      break;
    case ReduceKind::Min:
      acc = foldInto<double>(x.shape(), keptShape, inf, load, [](double a, double v) { return std::isnan(v) || v < a ? v : a; });
      break;
    case ReduceKind::Prod: acc = foldInto<double>(x.shape(), keptShape, 1.0, load, [](double a, double v) { return a * v; }); break;
    case ReduceKind::L1:
      acc = foldInto<double>(x.shape(), keptShape, 0.0, load, [](double a, double v) { return a + std::fabs(v); });
      break;
    case ReduceKind::L2:
    case ReduceKind::SumSquare:
      acc = foldInto<double>(x.shape(), keptShape, 0.0, load, [](double a, double v) { return a + v * v; });
      break;
    case ReduceKind::LogSumExp: {
      // Subtract each slot's maximum so exp never overflows.
      std::vector<double> maxima =
          foldInto<double>(x.shape(), keptShape, -inf, load, [](double a, double v) { return std::isnan(v) || v > a ? v : a; });
      std::vector<double> sums(maxima.size(), 0.0);
      forEachIndex(x.shape(), {broadcastStrides(keptShape, x.shape())}, [&](int64_t i, const int64_t* offsets) {
        double m = maxima[static_cast<size_t>(offsets[0])];
        if (std::isfinite(m)) sums[static_cast<size_t>(offsets[0])] += std::exp(load(i) - m);
      });
      acc.resize(maxima.size());
      for (size_t i = 0; i < acc.size(); ++i) acc[i] = std::isfinite(maxima[i]) ? maxima[i] + std::log(sums[i]) : maxima[i];
      break;
    }
  }
  Tensor out = Tensor::zeros(DType::F32, keptShape);
  float* po = out.mutableData<float>();
  for (size_t i = 0; i < acc.size(); ++i) {
    double v = acc[i];
    if (kind == ReduceKind::Mean) v /= count;
    else if (kind == ReduceKind::L2) v = std::sqrt(v);
    else if (kind == ReduceKind::LogSum) v = std::log(v);
    po[i] = static_cast<float>(v);
  }
  return out;
}

Tensor reduceInteger(const Tensor& x, const std::vector<int64_t>& keptShape, ReduceKind kind, DType declared) {
  const int64_t* p = x.data<int64_t>();
  auto load = [p](int64_t i) { return p[i]; };
  std::vector<int64_t> acc;
  switch (kind) {
    case ReduceKind::Sum:
    case ReduceKind::Mean:
      acc = foldInto<int64_t>(x.shape(), keptShape, 0, load, [](int64_t a, int64_t v) { return a + v; });
      break;
    case ReduceKind::Max:
      acc = foldInto<int64_t>(x.shape(), keptShape, std::numeric_limits<int64_t>::min(), load,
                              [](int64_t a, int64_t v) { return std::max(a, v); });
      break;
    case ReduceKind::Min:
      acc = foldInto<int64_t>(x.shape(), keptShape, std::numeric_limits<int64_t>::max(), load,
                              [](int64_t a, int64_t v) { return std::min(a, v); });
      break;
    case ReduceKind::Prod: acc = foldInto<int64_t>(x.shape(), keptShape, 1, load, [](int64_t a, int64_t v) { return a * v; }); break;
    case ReduceKind::L1:
      acc = foldInto<int64_t>(x.shape(), keptShape, 0, load, [](int64_t a, int64_t v) { return a + (v < 0 ? -v : v); });
      break;
    case ReduceKind::SumSquare:
      acc = foldInto<int64_t>(x.shape(), keptShape, 0, load, [](int64_t a, int64_t v) { return a + v * v; });
      break;
    case ReduceKind::L2:
    case ReduceKind::LogSum:
    case ReduceKind::LogSumExp: {
      // Transcendental reductions of integers: computed in floating point, truncated.
      Tensor f = reduceFloat(x.convertTo(DType::F32), keptShape, kind);
      acc.resize(static_cast<size_t>(f.numElements()));
      for (size_t i = 0; i < acc.size(); ++i) {
        float v = f.data<float>()[i];
        acc[i] = std::isfinite(v) ? static_cast<int64_t>(v) : 0;
      }
      break;
    }
  }
  if (kind == ReduceKind::Mean) {
    int64_t count = x.numElements() / std::max<int64_t>(1, shapeProduct(keptShape));
    for (int64_t& v : acc) v = count ? v / count : 0;
  }
  Tensor out = Tensor::zeros(DType::I64, keptShape);
  int64_t* po = out.mutableData<int64_t>();
  for (size_t i = 0; i < acc.size(); ++i) po[i] = wrapToDType(acc[i], declared);
  return out;
}

void evaluateReduce(EvalContext& ctx, ReduceKind kind) {
  const Tensor& x = ctx.input(0);
  std::vector<int64_t> given = ctx.hasInput(1) ? ctx.input(1).toInt64Vector() : std::vector<int64_t>{};
  ReduceAxes axes = resolveAxes(ctx.op(), given, static_cast<int64_t>(x.rank()));
  if (axes.identity) {
    ctx.setOutput(0, x);
    return;
  }
  std::vector<int64_t> keptShape = x.shape();
  for (int64_t axis : axes.axes) keptShape[static_cast<size_t>(axis)] = 1;
  Tensor out;
  if (x.dtype() == DType::F32) {
    out = reduceFloat(x, keptShape, kind);
  } else if (x.dtype() == DType::I64) {
    out = reduceInteger(x, keptShape, kind, ctx.resultDType(0));
  } else {
    out = reduceInteger(x.convertTo(DType::I64), keptShape, kind, DType::I64).convertTo(DType::Bool);
  }
  if (ctx.op().intAttr("keepdims", 1) == 0) {
    std::vector<int64_t> squeezed;
    for (size_t d = 0; d < keptShape.size(); ++d)
      if (!std::binary_search(axes.axes.begin(), axes.axes.end(), static_cast<int64_t>(d))) squeezed.push_back(keptShape[d]);
    out = out.reshaped(squeezed);
  }
  ctx.setOutput(0, std::move(out));
}

void addReduce(OpRegistry& registry, std::string name, ReduceKind kind, std::string summary) {
  registry.add({
      .name = std::move(name),
      .minOperands = 1,
      .maxOperands = 2,
      .attrs = {{"keepdims", AttrKind::Int}, {"noop_with_empty_axes", AttrKind::Int}},
      .infer = [kind](InferContext& ctx) { inferReduce(ctx, kind); },
      .evaluate = [kind](EvalContext& ctx) { evaluateReduce(ctx, kind); },
      .summary = std::move(summary),
  });
}

// ---------------------------------------------------------------------------------------------
// Ops along one axis.

void inferArgReduce(InferContext& ctx) {
  requireNumeric(ctx, 0);
  const std::optional<Shape>& in = ctx.operandType(0).shape;
  if (!in) {
    ctx.setResult(0, {DType::I64, std::nullopt});
    return;
  }
  int64_t axis = normalizeAxis(ctx.op().intAttr("axis", 0), static_cast<int64_t>(in->size()), ctx.op());
  Shape out = reducedShape(*in, {axis}, ctx.op().intAttr("keepdims", 1) != 0);
  ctx.setResult(0, {DType::I64, out});
}

template <class T>
Tensor argReduce(const Tensor& x, size_t axis, bool max, bool last) {
  AxisSplit split = splitAtAxis(x.shape(), axis);
  std::vector<int64_t> keptShape = x.shape();
  keptShape[axis] = 1;
  Tensor out = Tensor::zeros(DType::I64, keptShape);
  const T* p = x.data<T>();
  int64_t* po = out.mutableData<int64_t>();
  for (int64_t o = 0; o < split.outer; ++o) {
    for (int64_t i = 0; i < split.inner; ++i) {
      const T* row = p + o * split.axis * split.inner + i;
      int64_t best = 0;
      for (int64_t k = 1; k < split.axis; ++k) {
        T v = row[k * split.inner];
        T b = row[best * split.inner];
        bool better = max ? (v > b || (last && v == b)) : (v < b || (last && v == b));
        if (better) best = k;
      }
      po[o * split.inner + i] = best;
    }
  }
  return out;
}

void addArgReduce(OpRegistry& registry, std::string name, bool max) {
  registry.add({
      .name = name,
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = {{"axis", AttrKind::Int}, {"keepdims", AttrKind::Int}, {"select_last_index", AttrKind::Int}},
      .infer = inferArgReduce,
      .evaluate =
          [max](EvalContext& ctx) {
            const Tensor& x = ctx.input(0);
            auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", 0), static_cast<int64_t>(x.rank()), ctx.op()));
            if (x.shape()[axis] == 0) ctx.error("cannot take the index of an extreme value along an empty axis");
            bool last = ctx.op().intAttr("select_last_index", 0) != 0;
            Tensor out = x.dtype() == DType::F32 ? argReduce<float>(x, axis, max, last) : argReduce<int64_t>(x, axis, max, last);
            if (ctx.op().intAttr("keepdims", 1) == 0) {
              std::vector<int64_t> squeezed = x.shape();
              squeezed.erase(squeezed.begin() + static_cast<std::ptrdiff_t>(axis));
              out = out.reshaped(squeezed);
            }
            ctx.setOutput(0, std::move(out));
          },
      .summary = std::string("index of the ") + (max ? "largest" : "smallest") + " element along `axis` (first, or last with select_last_index)",
  });
}

enum class SoftmaxKind { Softmax, LogSoftmax, Hardmax };

void evaluateSoftmax(EvalContext& ctx, SoftmaxKind kind) {
  const Tensor& x = ctx.input(0);
  auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", -1), static_cast<int64_t>(x.rank()), ctx.op()));
  AxisSplit split = splitAtAxis(x.shape(), axis);
  Tensor out = Tensor::zeros(DType::F32, x.shape());
  const float* p = x.data<float>();
  float* po = out.mutableData<float>();
  for (int64_t o = 0; o < split.outer; ++o) {
    for (int64_t i = 0; i < split.inner; ++i) {
      int64_t base = o * split.axis * split.inner + i;
      auto at = [&](int64_t k) { return base + k * split.inner; };
      // Subtracting the maximum keeps exp in range without changing the result.
      double maximum = -std::numeric_limits<double>::infinity();
      int64_t argmax = 0;
      for (int64_t k = 0; k < split.axis; ++k) {
        if (p[at(k)] > maximum) {
          maximum = p[at(k)];
          argmax = k;
        }
      }
      if (kind == SoftmaxKind::Hardmax) {
        for (int64_t k = 0; k < split.axis; ++k) po[at(k)] = k == argmax ? 1.0f : 0.0f;
        continue;
      }
      double sum = 0;
      for (int64_t k = 0; k < split.axis; ++k) sum += std::exp(static_cast<double>(p[at(k)]) - maximum);
      for (int64_t k = 0; k < split.axis; ++k) {
        double shifted = static_cast<double>(p[at(k)]) - maximum;
        po[at(k)] = static_cast<float>(kind == SoftmaxKind::Softmax ? std::exp(shifted) / sum : shifted - std::log(sum));
      }
    }
  }
  ctx.setOutput(0, std::move(out));
}

void addSoftmax(OpRegistry& registry, std::string name, SoftmaxKind kind, std::string summary) {
  registry.add({
      .name = std::move(name),
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = {{"axis", AttrKind::Int}},
      .infer =
          [](InferContext& ctx) {
            requireFloat(ctx, 0);
            if (ctx.operandType(0).hasRank())
              normalizeAxis(ctx.op().intAttr("axis", -1), static_cast<int64_t>(ctx.operandRank(0)), ctx.op());
            ctx.setResult(0, ctx.operandType(0));
          },
      .evaluate = [kind](EvalContext& ctx) { evaluateSoftmax(ctx, kind); },
      .summary = std::move(summary),
  });
}

template <class T, class Acc>
void cumulativeSum(const T* in, T* out, const AxisSplit& split, bool exclusive, bool reverse) {
  for (int64_t o = 0; o < split.outer; ++o) {
    for (int64_t i = 0; i < split.inner; ++i) {
      int64_t base = o * split.axis * split.inner + i;
      Acc running = 0;
      for (int64_t step = 0; step < split.axis; ++step) {
        int64_t k = reverse ? split.axis - 1 - step : step;
        int64_t at = base + k * split.inner;
        if (exclusive) {
          out[at] = static_cast<T>(running);
          running += in[at];
        } else {
          running += in[at];
          out[at] = static_cast<T>(running);
        }
      }
    }
  }
}

void registerAxisOps(OpRegistry& registry) {
  addArgReduce(registry, "ArgMax", true);
  addArgReduce(registry, "ArgMin", false);
  addSoftmax(registry, "Softmax", SoftmaxKind::Softmax, "exp(x) / sum(exp(x)) along `axis` (numerically stable)");
  addSoftmax(registry, "LogSoftmax", SoftmaxKind::LogSoftmax, "x - log(sum(exp(x))) along `axis` (numerically stable)");
  addSoftmax(registry, "Hardmax", SoftmaxKind::Hardmax, "1 at the first maximum along `axis`, 0 elsewhere");

  registry.add({
      .name = "CumSum",
      .minOperands = 2,
      .maxOperands = 2,
      .attrs = {{"exclusive", AttrKind::Int}, {"reverse", AttrKind::Int}},
      .infer =
          [](InferContext& ctx) {
            requireNumeric(ctx, 0);
            requireInteger(ctx, 1);
            const TensorType& axisType = ctx.operandType(1);
            if (axisType.hasRank() && axisType.rank() > 1) ctx.error("operand 1 (axis) must be a scalar, got ", axisType.str());
            auto axis = ctx.operandConstInts(1);
            if (axis && axis->size() == 1 && ctx.operandType(0).hasRank())
              normalizeAxis((*axis)[0], static_cast<int64_t>(ctx.operandRank(0)), ctx.op());
            ctx.setResult(0, ctx.operandType(0));
          },
      .evaluate =
          [](EvalContext& ctx) {
            const Tensor& x = ctx.input(0);
            int64_t axis = normalizeAxis(scalarAsInt(ctx.input(1), ctx, "axis"), static_cast<int64_t>(x.rank()), ctx.op());
            AxisSplit split = splitAtAxis(x.shape(), static_cast<size_t>(axis));
            bool exclusive = ctx.op().intAttr("exclusive", 0) != 0;
            bool reverse = ctx.op().intAttr("reverse", 0) != 0;
            Tensor out = Tensor::zeros(x.dtype(), x.shape());
            if (x.dtype() == DType::F32) {
              cumulativeSum<float, double>(x.data<float>(), out.mutableData<float>(), split, exclusive, reverse);
            } else {
              cumulativeSum<int64_t, int64_t>(x.data<int64_t>(), out.mutableData<int64_t>(), split, exclusive, reverse);
              int64_t* p = out.mutableData<int64_t>();
              for (int64_t i = 0, n = out.numElements(); i < n; ++i) p[i] = wrapToDType(p[i], ctx.resultDType(0));
            }
            ctx.setOutput(0, std::move(out));
          },
      .summary = "cumulative sum along a run-time axis (exclusive, reverse)",
  });
}

// ---------------------------------------------------------------------------------------------
// TopK.

// NaN orders above every number, so the order is strict and weak even with NaN.
template <class T>
bool greaterWithNaN(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return !std::isnan(b);
    if (std::isnan(b)) return false;
  }
  return a > b;
}

template <class T>
void topK(const Tensor& x, size_t axis, int64_t k, bool largest, Tensor& values, Tensor& indices) {
  AxisSplit split = splitAtAxis(x.shape(), axis);
  const T* p = x.data<T>();
  T* pv = values.mutableData<T>();
  int64_t* pi = indices.mutableData<int64_t>();
  std::vector<int64_t> order(static_cast<size_t>(split.axis));
  for (int64_t o = 0; o < split.outer; ++o) {
    for (int64_t i = 0; i < split.inner; ++i) {
      const T* row = p + o * split.axis * split.inner + i;
      std::iota(order.begin(), order.end(), 0);
      // Stable: equal values keep the lower index first, as the spec requires.
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        T va = row[a * split.inner];
        T vb = row[b * split.inner];
        return largest ? greaterWithNaN(va, vb) : greaterWithNaN(vb, va);
      });
      for (int64_t j = 0; j < k; ++j) {
        int64_t at = o * k * split.inner + j * split.inner + i;
        pv[at] = row[order[static_cast<size_t>(j)] * split.inner];
        pi[at] = order[static_cast<size_t>(j)];
      }
    }
  }
}

void registerTopK(OpRegistry& registry) {
  registry.add({
      .name = "TopK",
      .minOperands = 2,
      .maxOperands = 2,
      .minResults = 2,
      .maxResults = 2,
      .attrs = {{"axis", AttrKind::Int}, {"largest", AttrKind::Int}, {"sorted", AttrKind::Int}},
      .infer =
          [](InferContext& ctx) {
            requireNumeric(ctx, 0);
            if (ctx.operandType(1).dtype != DType::I64) ctx.error("operand 1 (K) must be i64, got ", dtypeName(ctx.operandType(1).dtype));
            const std::optional<Shape>& in = ctx.operandType(0).shape;
            if (!in) {
              ctx.setResult(0, {ctx.operandType(0).dtype, std::nullopt});
              ctx.setResult(1, {DType::I64, std::nullopt});
              return;
            }
            auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", -1), static_cast<int64_t>(in->size()), ctx.op()));
            Dim k = ctx.unknownDim();
            if (auto known = ctx.operandInts(1)) {
              if (known->size() != 1) ctx.error("operand 1 (K) must have one element, got ", known->size());
              k = (*known)[0];
            }
            if (auto kc = k.constant()) {
              if (*kc < 0) ctx.error("K must be non-negative, got ", *kc);
              if (auto dc = (*in)[axis].constant(); dc && *kc > *dc) ctx.error("K = ", *kc, " exceeds the axis size ", *dc);
            }
            Shape out = *in;
            out[axis] = k;
            ctx.setResult(0, {ctx.operandType(0).dtype, out});
            ctx.setResult(1, {DType::I64, out});
          },
      .evaluate =
          [](EvalContext& ctx) {
            const Tensor& x = ctx.input(0);
            auto axis = static_cast<size_t>(normalizeAxis(ctx.op().intAttr("axis", -1), static_cast<int64_t>(x.rank()), ctx.op()));
            int64_t k = scalarAsInt(ctx.input(1), ctx, "K");
            if (k < 0 || k > x.shape()[axis]) ctx.error("K = ", k, " is out of range for axis size ", x.shape()[axis]);
            bool largest = ctx.op().intAttr("largest", 1) != 0;
            std::vector<int64_t> outShape = x.shape();
            outShape[axis] = k;
            Tensor values = Tensor::zeros(x.dtype(), outShape);
            Tensor indices = Tensor::zeros(DType::I64, outShape);
            // `sorted` = 0 allows any order; the sorted order is one of them.
            if (x.dtype() == DType::F32) topK<float>(x, axis, k, largest, values, indices);
            else topK<int64_t>(x, axis, k, largest, values, indices);
            ctx.setOutput(0, std::move(values));
            ctx.setOutput(1, std::move(indices));
          },
      .summary = "the K largest (or smallest) elements along `axis` and their indices",
  });
}

}  // namespace

void registerReductionOps(OpRegistry& registry) {
  addReduce(registry, "ReduceSum", ReduceKind::Sum, "sum over `axes` (all when omitted)");
  addReduce(registry, "ReduceMean", ReduceKind::Mean, "mean over `axes` (all when omitted)");
  addReduce(registry, "ReduceMax", ReduceKind::Max, "maximum over `axes` (all when omitted)");
  addReduce(registry, "ReduceMin", ReduceKind::Min, "minimum over `axes` (all when omitted)");
  addReduce(registry, "ReduceProd", ReduceKind::Prod, "product over `axes` (all when omitted)");
  addReduce(registry, "ReduceL1", ReduceKind::L1, "sum of absolute values over `axes` (all when omitted)");
  addReduce(registry, "ReduceL2", ReduceKind::L2, "square root of the sum of squares over `axes` (all when omitted)");
  addReduce(registry, "ReduceSumSquare", ReduceKind::SumSquare, "sum of squares over `axes` (all when omitted)");
  addReduce(registry, "ReduceLogSum", ReduceKind::LogSum, "log of the sum over `axes` (all when omitted)");
  addReduce(registry, "ReduceLogSumExp", ReduceKind::LogSumExp, "log(sum(exp(x))) over `axes` (all when omitted), numerically stable");
  registerAxisOps(registry);
  registerTopK(registry);
}

}  // namespace pagedc
