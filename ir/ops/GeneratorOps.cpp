// Ops whose values come from positions rather than from input elements: ConstantOfShape, Range,
// EyeLike, and Trilu (which keeps or zeroes elements by position).
#include <cmath>
#include <cstring>

#include "ir/Interpreter.h"
#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/KnownInts.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {

Tensor constantOfShapeValue(const Op& op) {
  const Attribute* value = op.attr("value");
  if (!value) return Tensor::fromValues(DType::F32, {1}, std::vector<float>{0.0f});
  const Tensor& tensor = value->asTensor();
  if (tensor.numElements() != 1) fail(op.describe(), ": value must hold exactly one element, got shape ", tensor.shapeStr());
  return tensor;
}

void inferConstantOfShape(InferContext& ctx) {
  Tensor value = constantOfShapeValue(ctx.op());
  if (ctx.operandType(0).dtype != DType::I64) ctx.error("the shape operand must be i64, got ", ctx.operandType(0).str());
  auto dims = ctx.operandInts(0);
  if (!dims) {
    auto length = vectorLength(ctx, 0, "the shape operand");
    ctx.setResult(0, {value.dtype(), length ? std::optional<Shape>(ctx.unknownShape(static_cast<size_t>(*length))) : std::nullopt});
    return;
  }
  for (const Dim& d : *dims)
    if (auto c = d.constant(); c && *c < 0) ctx.error("shape ", shapeStr(*dims), " has a negative dimension");
  // An integer fill of a small constant vector is known, like a Constant.
  std::optional<std::vector<Dim>> known;
  auto sizes = allConstant(*dims);
  if (isInteger(value.dtype()) && sizes && sizes->size() <= 1) {
    int64_t count = sizes->empty() ? 1 : (*sizes)[0];
    if (static_cast<size_t>(count) <= kMaxKnownInts) known.emplace(static_cast<size_t>(count), Dim(value.elementAsInt(0)));
  }
  ctx.setResult(0, {value.dtype(), *dims}, known);
}

void evaluateConstantOfShape(EvalContext& ctx) {
  Tensor value = toCanonical(constantOfShapeValue(ctx.op()));
  std::vector<int64_t> shape = ctx.input(0).toInt64Vector();
  for (int64_t d : shape)
    if (d < 0) ctx.error("shape ", shapeStr(toShape(shape)), " has a negative dimension");
  Tensor out = Tensor::zeros(value.dtype(), shape);
  size_t size = dtypeSize(value.dtype());
  std::byte* dst = out.mutableBytes();
  for (int64_t i = 0; i < out.numElements(); ++i) std::memcpy(dst + static_cast<size_t>(i) * size, value.bytes(), size);
  ctx.setOutput(0, out);
}

// Range's length, max(ceil((limit - start) / delta), 0), on concrete values.
int64_t rangeLength(double start, double limit, double delta) {
  return std::max<int64_t>(static_cast<int64_t>(std::ceil((limit - start) / delta)), 0);
}
int64_t rangeLength(int64_t start, int64_t limit, int64_t delta) {
  int64_t span = limit - start;
  if ((span > 0) != (delta > 0) || span == 0) return 0;
  int64_t magnitude = delta > 0 ? delta : -delta;
  return ((span > 0 ? span : -span) + magnitude - 1) / magnitude;
}

// The symbolic length when the operands are known integers; nullopt when not provable.
std::optional<Dim> symbolicRangeLength(const Dim& start, const Dim& limit, int64_t delta) {
  Dim span = delta > 0 ? limit - start : start - limit;
  int64_t magnitude = delta > 0 ? delta : -delta;
  if (auto c = span.constant()) return Dim(*c > 0 ? (*c + magnitude - 1) / magnitude : 0);
  if ((-span).isKnownNonNegative()) return Dim(0);
  if (!span.isKnownNonNegative()) return std::nullopt;
  return span.divideExactly(Dim(magnitude));
}

void inferRange(InferContext& ctx) {
  DType dtype = ctx.operandType(0).dtype;
  for (size_t i = 0; i < 3; ++i) {
    const TensorType& type = ctx.operandType(i);
    if (type.dtype != dtype) ctx.error("start, limit and delta must have one element type; operand ", i, " is ", type.str());
    if (type.hasRank() && type.rank() != 0) ctx.error("operand ", i, " must be a scalar, got ", type.str());
  }
  std::optional<Dim> length;
  std::optional<std::vector<Dim>> known;
  if (isInteger(dtype)) {
    auto start = ctx.operandInts(0), limit = ctx.operandInts(1);
    auto delta = ctx.operandConstInts(2);
    if (delta && delta->size() == 1 && (*delta)[0] == 0) ctx.error("delta is 0");
    if (start && limit && delta && start->size() == 1 && limit->size() == 1 && delta->size() == 1) {
      length = symbolicRangeLength((*start)[0], (*limit)[0], (*delta)[0]);
      auto count = length ? length->constant() : std::nullopt;
      if (count && static_cast<size_t>(*count) <= kMaxKnownInts) {
        known.emplace();
        for (int64_t i = 0; i < *count; ++i) known->push_back((*start)[0] + Dim(i * (*delta)[0]));
      }
    }
  } else {
    const Tensor* start = ctx.constantOperand(0);
    const Tensor* limit = ctx.constantOperand(1);
    const Tensor* delta = ctx.constantOperand(2);
    if (start && limit && delta) {
      if (delta->elementAsDouble(0) == 0.0) ctx.error("delta is 0");
      length = Dim(rangeLength(start->elementAsDouble(0), limit->elementAsDouble(0), delta->elementAsDouble(0)));
    }
  }
  ctx.setResult(0, {dtype, Shape{length ? *length : ctx.unknownDim()}}, known);
}

void evaluateRange(EvalContext& ctx) {
  const Tensor& start = ctx.input(0);
  if (start.dtype() == DType::I64) {
    int64_t first = start.data<int64_t>()[0], limit = ctx.input(1).data<int64_t>()[0], delta = ctx.input(2).data<int64_t>()[0];
    if (delta == 0) ctx.error("delta is 0");
    int64_t count = rangeLength(first, limit, delta);
    std::vector<int64_t> values;
    for (int64_t i = 0; i < count; ++i) values.push_back(first + i * delta);
    ctx.setOutput(0, Tensor::fromValues(DType::I64, {count}, values));
    return;
  }
  float first = start.data<float>()[0], limit = ctx.input(1).data<float>()[0], delta = ctx.input(2).data<float>()[0];
  if (delta == 0.0f) ctx.error("delta is 0");
  int64_t count = rangeLength(static_cast<double>(first), static_cast<double>(limit), static_cast<double>(delta));
  std::vector<float> values;
  for (int64_t i = 0; i < count; ++i) values.push_back(first + static_cast<float>(i) * delta);
  ctx.setOutput(0, Tensor::fromValues(DType::F32, {count}, values));
}

DType eyeLikeDType(const Op& op, DType input) {
  const Attribute* dtype = op.attr("dtype");
  return dtype ? dtype->asType() : input;
}

void inferEyeLike(InferContext& ctx) {
  const TensorType& input = ctx.operandType(0);
  if (input.hasRank() && input.rank() != 2) ctx.error("the input must be 2-D, got ", input.str());
  ctx.setResult(0, {eyeLikeDType(ctx.op(), input.dtype), input.hasRank() ? input.shape : std::optional<Shape>(ctx.unknownShape(2))});
}

void evaluateEyeLike(EvalContext& ctx) {
  const Tensor& input = ctx.input(0);
  if (input.rank() != 2) ctx.error("the input must be 2-D, got shape ", input.shapeStr());
  DType dtype = canonicalDType(ctx.resultDType(0));
  int64_t k = ctx.op().intAttr("k", 0);
  Tensor out = Tensor::zeros(dtype, input.shape());
  std::byte* dst = out.mutableBytes();
  size_t size = dtypeSize(dtype);
  for (int64_t i = 0; i < input.shape()[0]; ++i) {
    int64_t j = i + k;
    if (j >= 0 && j < input.shape()[1]) storeFromDouble(dtype, dst + static_cast<size_t>(i * input.shape()[1] + j) * size, 1.0);
  }
  ctx.setOutput(0, out);
}

void inferTrilu(InferContext& ctx) {
  const TensorType& input = ctx.operandType(0);
  if (input.hasRank() && input.rank() < 2) ctx.error("the input must have rank >= 2, got ", input.str());
  if (ctx.hasOperand(1)) {
    const TensorType& k = ctx.operandType(1);
    if (k.dtype != DType::I64 || (k.hasRank() && k.rank() != 0)) ctx.error("k must be an i64 scalar, got ", k.str());
  }
  ctx.setResult(0, input);
}

void evaluateTrilu(EvalContext& ctx) {
  Tensor out = ctx.input(0);
  if (out.rank() < 2) ctx.error("the input must have rank >= 2, got shape ", out.shapeStr());
  int64_t k = ctx.hasInput(1) ? ctx.input(1).data<int64_t>()[0] : 0;
  bool upper = ctx.op().intAttr("upper", 1) != 0;
  int64_t rows = out.shape()[out.rank() - 2], cols = out.shape()[out.rank() - 1];
  int64_t matrices = rows * cols == 0 ? 0 : out.numElements() / (rows * cols);
  size_t size = dtypeSize(out.dtype());
  std::byte* dst = out.mutableBytes();
  for (int64_t m = 0; m < matrices; ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        // The upper triangle keeps j - i >= k, the lower one j - i <= k.
        bool keep = upper ? j - i >= k : j - i <= k;
        if (!keep) std::memset(dst + static_cast<size_t>((m * rows + i) * cols + j) * size, 0, size);
      }
  ctx.setOutput(0, out);
}

}  // namespace

void registerGeneratorOps(OpRegistry& registry) {
  registry.add({
      .name = "ConstantOfShape",
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = {{"value", AttrKind::Tensor}},
      .infer = inferConstantOfShape,
      .evaluate = evaluateConstantOfShape,
      .summary = "a tensor of the given shape filled with one value (default f32 0)",
  });
  registry.add({
      .name = "Range",
      .minOperands = 3,
      .maxOperands = 3,
      .infer = inferRange,
      .evaluate = evaluateRange,
      .summary = "start, start + delta, ... up to (not including) limit",
  });
  registry.add({
      .name = "EyeLike",
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = {{"dtype", AttrKind::Type}, {"k", AttrKind::Int}},
      .infer = inferEyeLike,
      .evaluate = evaluateEyeLike,
      .summary = "ones on the k-th diagonal of a matrix shaped like the operand",
  });
  registry.add({
      .name = "Trilu",
      .minOperands = 1,
      .maxOperands = 2,
      .attrs = {{"upper", AttrKind::Int}},
      .infer = inferTrilu,
      .evaluate = evaluateTrilu,
      .summary = "keeps the upper (or lower) triangle above the k-th diagonal of the last two dims, zeroes the rest",
  });
}

}  // namespace pagedc
