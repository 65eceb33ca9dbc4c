// Matrix products (ONNX opset 23 semantics): MatMul (numpy rules, batch broadcasting) and Gemm.
#include <algorithm>

#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {

// The contraction dims must agree; only two different constants prove they cannot.
void checkInnerDims(InferContext& ctx, const Dim& left, const Dim& right, std::string_view what) {
  if (left.isConstant() && right.isConstant() && left != right)
    ctx.error(what, ": inner dimensions differ (", left.str(), " vs ", right.str(), ")");
}

void inferMatMul(InferContext& ctx) {
  requireNumeric(ctx, 0);
  requireSameDType(ctx, 0, 2);
  DType type = ctx.operandType(0).dtype;
  const std::optional<Shape>& a = ctx.operandType(0).shape;
  const std::optional<Shape>& b = ctx.operandType(1).shape;
  if ((a && a->empty()) || (b && b->empty())) ctx.error("operands must have rank 1 or more");
  if (!a || !b) {
    ctx.setResult(0, {type, std::nullopt});
    return;
  }
  // numpy: a 1-D left operand is a row vector, a 1-D right operand a column vector; the added
  // dims are dropped from the result.
  Shape left = a->size() == 1 ? Shape{Dim(1), (*a)[0]} : *a;
  Shape right = b->size() == 1 ? Shape{(*b)[0], Dim(1)} : *b;
  checkInnerDims(ctx, left.back(), right[right.size() - 2], "MatMul " + shapeStr(*a) + " x " + shapeStr(*b));
  Shape leftBatch(left.begin(), left.end() - 2);
  Shape rightBatch(right.begin(), right.end() - 2);
  Shape out = *broadcastShapes(leftBatch, rightBatch, ctx);
  if (a->size() > 1) out.push_back(left[left.size() - 2]);
  if (b->size() > 1) out.push_back(right.back());
  ctx.setResult(0, {type, out});
}

// One [m, k] x [k, n] product in i-k-j order, accumulating a row in `Acc`.
template <class T, class Acc>
void matmulBlock(const T* a, const T* b, T* out, int64_t m, int64_t k, int64_t n, std::vector<Acc>& row) {
  for (int64_t i = 0; i < m; ++i) {
    std::fill(row.begin(), row.end(), Acc{});
    for (int64_t p = 0; p < k; ++p) {
      Acc av = static_cast<Acc>(a[i * k + p]);
      const T* brow = b + p * n;
      for (int64_t j = 0; j < n; ++j) row[static_cast<size_t>(j)] += av * static_cast<Acc>(brow[j]);
    }
    for (int64_t j = 0; j < n; ++j) out[i * n + j] = static_cast<T>(row[static_cast<size_t>(j)]);
  }
}

template <class T, class Acc>
Tensor matmul(const Tensor& a, const Tensor& b, const EvalContext& ctx) {
  std::vector<int64_t> left = a.rank() == 1 ? std::vector<int64_t>{1, a.shape()[0]} : a.shape();
  std::vector<int64_t> right = b.rank() == 1 ? std::vector<int64_t>{b.shape()[0], 1} : b.shape();
  int64_t m = left[left.size() - 2], k = left.back();
  int64_t n = right.back();
  if (right[right.size() - 2] != k) ctx.error("inner dimensions differ: ", a.shapeStr(), " x ", b.shapeStr());
  std::vector<int64_t> leftBatch(left.begin(), left.end() - 2);
  std::vector<int64_t> rightBatch(right.begin(), right.end() - 2);
  std::vector<int64_t> batch = broadcastConcrete({leftBatch, rightBatch}, ctx);
  std::vector<int64_t> outShape = batch;
  if (a.rank() > 1) outShape.push_back(m);
  if (b.rank() > 1) outShape.push_back(n);
  Tensor out = Tensor::zeros(a.dtype(), outShape);
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.mutableData<T>();
  std::vector<Acc> row(static_cast<size_t>(n));
  // Batch offsets count whole matrices (a rank-0 batch visits the single matrix once).
  forEachIndex(batch, {broadcastStrides(leftBatch, batch), broadcastStrides(rightBatch, batch)},
               [&](int64_t index, const int64_t* offsets) {
                 matmulBlock<T, Acc>(pa + offsets[0] * m * k, pb + offsets[1] * k * n, po + index * m * n, m, k, n, row);
               });
  return out;
}

// Gemm's operands after transA/transB: a is [M, K], b is [K, N].
struct GemmDims {
  Dim m, k, n;
};

GemmDims inferGemmDims(InferContext& ctx) {
  const TensorType& a = ctx.operandType(0);
  const TensorType& b = ctx.operandType(1);
  for (size_t i = 0; i < 2; ++i)
    if (ctx.operandRank(i) != 2) ctx.error("operand ", i, " must have rank 2, got ", ctx.operandType(i).str());
  bool transA = ctx.op().intAttr("transA", 0) != 0;
  bool transB = ctx.op().intAttr("transB", 0) != 0;
  GemmDims dims{transA ? a.dim(1) : a.dim(0), transA ? a.dim(0) : a.dim(1), transB ? b.dim(0) : b.dim(1)};
  checkInnerDims(ctx, dims.k, transB ? b.dim(1) : b.dim(0), "Gemm " + a.str() + " x " + b.str());
  return dims;
}

}  // namespace

void registerLinearAlgebraOps(OpRegistry& registry) {
  registry.add({
      .name = "MatMul",
      .minOperands = 2,
      .maxOperands = 2,
      .infer = inferMatMul,
      .evaluate =
          [](EvalContext& ctx) {
            const Tensor& a = ctx.input(0);
            const Tensor& b = ctx.input(1);
            if (a.rank() == 0 || b.rank() == 0) ctx.error("operands must have rank 1 or more");
            Tensor out = a.dtype() == DType::F32 ? matmul<float, double>(a, b, ctx) : matmul<int64_t, int64_t>(a, b, ctx);
            if (out.dtype() == DType::I64) {
              int64_t* p = out.mutableData<int64_t>();
              for (int64_t i = 0, n = out.numElements(); i < n; ++i) p[i] = wrapToDType(p[i], ctx.resultDType(0));
            }
            ctx.setOutput(0, std::move(out));
          },
      .summary = "matrix product with numpy semantics: 1-D promotion and batch broadcasting",
  });
  registry.add({
      .name = "Gemm",
      .minOperands = 2,
      .maxOperands = 3,
      .attrs = {{"alpha", AttrKind::Float}, {"beta", AttrKind::Float}, {"transA", AttrKind::Int}, {"transB", AttrKind::Int}},
      .infer =
          [](InferContext& ctx) {
            requireNumeric(ctx, 0);
            requireSameDType(ctx, 0, 3);
            GemmDims dims = inferGemmDims(ctx);
            Shape out{dims.m, dims.n};
            if (ctx.hasOperand(2) && ctx.operandType(2).hasRank()) {
              // C broadcasts one way only: to [M, N], never the result to C's shape.
              const Shape& c = *ctx.operandType(2).shape;
              if (c.size() > 2) ctx.error("operand 2 (C) must have rank 2 or less, got ", ctx.operandType(2).str());
              Shape merged = *broadcastShapes(c, out, ctx);
              for (size_t d = 0; d < 2; ++d)
                if (merged[d].isConstant() && out[d].isConstant() && merged[d] != out[d])
                  ctx.error("operand 2 (C) of shape ", shapeStr(c), " does not broadcast to ", shapeStr(out));
            }
            ctx.setResult(0, {ctx.operandType(0).dtype, out});
          },
      .evaluate =
          [](EvalContext& ctx) {
            const Tensor& a = ctx.input(0);
            const Tensor& b = ctx.input(1);
            bool transA = ctx.op().intAttr("transA", 0) != 0;
            bool transB = ctx.op().intAttr("transB", 0) != 0;
            auto alpha = static_cast<double>(static_cast<float>(ctx.op().floatAttr("alpha", 1.0)));
            auto beta = static_cast<double>(static_cast<float>(ctx.op().floatAttr("beta", 1.0)));
            if (a.rank() != 2 || b.rank() != 2) ctx.error("operands must have rank 2, got ", a.shapeStr(), " and ", b.shapeStr());
            int64_t m = a.shape()[transA ? 1 : 0], k = a.shape()[transA ? 0 : 1];
            int64_t n = b.shape()[transB ? 0 : 1];
            if (b.shape()[transB ? 1 : 0] != k) ctx.error("inner dimensions differ: ", a.shapeStr(), " x ", b.shapeStr());
            // Element access through strides covers the transposed forms without copies.
            int64_t aRow = transA ? 1 : k, aCol = transA ? m : 1;
            int64_t bRow = transB ? 1 : n, bCol = transB ? k : 1;
            std::vector<double> acc(static_cast<size_t>(m * n), 0.0);
            bool isFloat = a.dtype() == DType::F32;
            auto load = [&](const Tensor& t, int64_t i) {
              return isFloat ? static_cast<double>(t.data<float>()[i]) : static_cast<double>(t.data<int64_t>()[i]);
            };
            for (int64_t i = 0; i < m; ++i)
              for (int64_t p = 0; p < k; ++p) {
                double av = load(a, i * aRow + p * aCol);
                for (int64_t j = 0; j < n; ++j) acc[static_cast<size_t>(i * n + j)] += av * load(b, p * bRow + j * bCol);
              }
            std::vector<int64_t> outShape{m, n};
            std::vector<int64_t> cStrides(2, 0);
            if (ctx.hasInput(2)) {
              const Tensor& c = ctx.input(2);
              if (broadcastConcrete({c.shape(), outShape}, ctx) != outShape)
                ctx.error("C of shape ", c.shapeStr(), " does not broadcast to [", m, ", ", n, "]");
              cStrides = broadcastStrides(c.shape(), outShape);
            }
            Tensor out = Tensor::zeros(a.dtype(), outShape);
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < n; ++j) {
                double v = alpha * acc[static_cast<size_t>(i * n + j)];
                if (ctx.hasInput(2)) v += beta * load(ctx.input(2), i * cStrides[0] + j * cStrides[1]);
                if (isFloat) out.mutableData<float>()[i * n + j] = static_cast<float>(v);
                else out.mutableData<int64_t>()[i * n + j] = wrapToDType(static_cast<int64_t>(v), ctx.resultDType(0));
              }
            ctx.setOutput(0, std::move(out));
          },
      .summary = "alpha * A' * B' + beta * C, A' and B' optionally transposed, C broadcast to [M, N]",
  });
}

}  // namespace pagedc
