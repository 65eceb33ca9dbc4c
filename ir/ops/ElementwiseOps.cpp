// Element-wise ops (ONNX opset 23 semantics): broadcasting math, comparison, logic, unary math, Clip, Where, Dropout, Cast.
#include <cmath>
#include <limits>
#include <numbers>

#include "ir/HalfFloat.h"
#include "ir/Interpreter.h"
#include "ir/OpDef.h"
#include "ir/ops/KernelUtil.h"
#include "ir/ops/OpRegistration.h"
#include "ir/ops/OperandChecks.h"

namespace pagedc {

namespace {

// Bool tensors store one byte per element.
using BoolStorage = uint8_t;

// ---------------------------------------------------------------------------------------------
// Reference loops.

template <class InA, class InB, class Out, class Fn>
Tensor mapBinary(const Tensor& a, const Tensor& b, DType outDType, const EvalContext& ctx, Fn fn) {
  std::vector<int64_t> shape = broadcastConcrete({a.shape(), b.shape()}, ctx);
  Tensor out = Tensor::zeros(outDType, shape);
  const InA* pa = a.data<InA>();
  const InB* pb = b.data<InB>();
  Out* po = out.mutableData<Out>();
  forEachIndex(shape, {broadcastStrides(a.shape(), shape), broadcastStrides(b.shape(), shape)},
               [&](int64_t i, const int64_t* offsets) { po[i] = fn(pa[offsets[0]], pb[offsets[1]]); });
  return out;
}

template <class In, class Out, class Fn>
Tensor mapUnary(const Tensor& x, DType outDType, Fn fn) {
  Tensor out = Tensor::zeros(outDType, x.shape());
  const In* px = x.data<In>();
  Out* po = out.mutableData<Out>();
  for (int64_t i = 0, n = x.numElements(); i < n; ++i) po[i] = fn(px[i]);
  return out;
}

// Integer results are computed in i64 and wrapped to the declared width, as the real type would.
void wrapIntegers(Tensor& tensor, DType declared) {
  if (declared == DType::I64 || declared == DType::U64) return;
  int64_t* p = tensor.mutableData<int64_t>();
  for (int64_t i = 0, n = tensor.numElements(); i < n; ++i) p[i] = wrapToDType(p[i], declared);
}

// ---------------------------------------------------------------------------------------------
// knownInts: element-wise arithmetic over operands' symbolic contents (shape arithmetic).

bool isSmallIntegerResult(const TensorType& type) {
  return isInteger(type.dtype) && (!type.hasRank() || type.rank() <= 1);
}

template <class Fn>
std::optional<std::vector<Dim>> combineKnownInts(const InferContext& ctx, const TensorType& result, Fn fn) {
  if (!isSmallIntegerResult(result)) return std::nullopt;
  auto a = ctx.operandInts(0);
  auto b = ctx.operandInts(1);
  if (!a || !b) return std::nullopt;
  size_t n;
  if (a->size() == b->size()) n = a->size();
  else if (a->size() == 1) n = b->size();
  else if (b->size() == 1) n = a->size();
  else return std::nullopt;
  std::vector<Dim> values;
  for (size_t i = 0; i < n; ++i) {
    std::optional<Dim> r = fn((*a)[a->size() == 1 ? 0 : i], (*b)[b->size() == 1 ? 0 : i]);
    if (!r) return std::nullopt;
    values.push_back(*r);
  }
  return values;
}

std::optional<int64_t> truncatingDivide(int64_t a, int64_t b) {
  if (b == 0 || (a == std::numeric_limits<int64_t>::min() && b == -1)) return std::nullopt;
  return a / b;
}

// Mod with the sign of the divisor (fmod = 0) or of the dividend (fmod = 1, C semantics).
std::optional<int64_t> integerMod(int64_t a, int64_t b, bool fmod) {
  if (b == 0) return std::nullopt;
  if (b == -1) return 0;  // avoids the INT64_MIN % -1 trap
  int64_t r = a % b;
  if (!fmod && r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

// ---------------------------------------------------------------------------------------------
// Binary broadcasting ops.

enum class OperandClass { Numeric, Float, Bool, Any };

void requireClass(const InferContext& ctx, size_t operand, OperandClass cls) {
  switch (cls) {
    case OperandClass::Numeric: requireNumeric(ctx, operand); break;
    case OperandClass::Float: requireFloat(ctx, operand); break;
    case OperandClass::Bool: requireBool(ctx, operand); break;
    case OperandClass::Any: break;
  }
}

// Shape rule of a same-typed broadcasting binary op; returns the result type.
TensorType inferBinary(InferContext& ctx, OperandClass cls, std::optional<DType> resultDType) {
  requireClass(ctx, 0, cls);
  requireSameDType(ctx, 0, 2);
  auto shape = broadcastShapes(ctx.operandType(0).shape, ctx.operandType(1).shape, ctx);
  return {resultDType.value_or(ctx.operandType(0).dtype), shape};
}

using DimFold = std::optional<Dim> (*)(const Dim&, const Dim&);

// Arithmetic on two operands of one numeric type T. FloatFn: double(double, double);
// IntFn: int64_t(int64_t, int64_t, const EvalContext&).
template <class FloatFn, class IntFn>
void addArithmetic(OpRegistry& registry, std::string name, std::string summary, FloatFn floatFn, IntFn intFn,
                   DimFold fold, std::vector<AttrSpec> attrs = {}, std::function<void(InferContext&)> check = nullptr) {
  registry.add({
      .name = std::move(name),
      .minOperands = 2,
      .maxOperands = 2,
      .attrs = std::move(attrs),
      .infer =
          [fold, check](InferContext& ctx) {
            TensorType type = inferBinary(ctx, OperandClass::Numeric, std::nullopt);
            if (check) check(ctx);
            auto known = fold ? combineKnownInts(ctx, type, fold) : std::nullopt;
            ctx.setResult(0, type, std::move(known));
          },
      .evaluate =
          [floatFn, intFn](EvalContext& ctx) {
            const Tensor& a = ctx.input(0);
            const Tensor& b = ctx.input(1);
            if (a.dtype() == DType::F32) {
              ctx.setOutput(0, mapBinary<float, float, float>(a, b, DType::F32, ctx, [&](float x, float y) {
                              return static_cast<float>(floatFn(x, y));
                            }));
            } else {
              Tensor out = mapBinary<int64_t, int64_t, int64_t>(a, b, DType::I64, ctx,
                                                                 [&](int64_t x, int64_t y) { return intFn(x, y, ctx); });
              wrapIntegers(out, ctx.resultDType(0));
              ctx.setOutput(0, std::move(out));
            }
          },
      .summary = std::move(summary),
  });
}

// Comparison on two operands of one type, giving bool.
template <class Compare>
void addComparison(OpRegistry& registry, std::string name, std::string summary, OperandClass cls, Compare compare) {
  registry.add({
      .name = std::move(name),
      .minOperands = 2,
      .maxOperands = 2,
      .infer = [cls](InferContext& ctx) { ctx.setResult(0, inferBinary(ctx, cls, DType::Bool)); },
      .evaluate =
          [compare](EvalContext& ctx) {
            const Tensor& a = ctx.input(0);
            const Tensor& b = ctx.input(1);
            auto fn = [&](auto x, auto y) -> BoolStorage { return compare(x, y) ? 1 : 0; };
            Tensor out;
            if (a.dtype() == DType::F32) out = mapBinary<float, float, BoolStorage>(a, b, DType::Bool, ctx, fn);
            else if (a.dtype() == DType::I64) out = mapBinary<int64_t, int64_t, BoolStorage>(a, b, DType::Bool, ctx, fn);
            else out = mapBinary<BoolStorage, BoolStorage, BoolStorage>(a, b, DType::Bool, ctx, fn);
            ctx.setOutput(0, std::move(out));
          },
      .summary = std::move(summary),
  });
}

template <class Logic>
void addLogic(OpRegistry& registry, std::string name, std::string summary, Logic logic) {
  registry.add({
      .name = std::move(name),
      .minOperands = 2,
      .maxOperands = 2,
      .infer =
          [](InferContext& ctx) {
            requireBool(ctx, 1);
            ctx.setResult(0, inferBinary(ctx, OperandClass::Bool, DType::Bool));
          },
      .evaluate =
          [logic](EvalContext& ctx) {
            ctx.setOutput(0, mapBinary<BoolStorage, BoolStorage, BoolStorage>(
                                 ctx.input(0), ctx.input(1), DType::Bool, ctx,
                                 [&](BoolStorage x, BoolStorage y) -> BoolStorage { return logic(x != 0, y != 0) ? 1 : 0; }));
          },
      .summary = std::move(summary),
  });
}

int64_t integerPow(int64_t base, int64_t exponent) {
  if (exponent < 0) {
    // The exact result truncated toward zero: only |base| = 1 gives a non-zero value.
    if (base == 1) return 1;
    if (base == -1) return (exponent % 2 == 0) ? 1 : -1;
    return 0;
  }
  uint64_t result = 1;
  auto square = static_cast<uint64_t>(base);
  while (exponent > 0) {  // wrapping multiplication, as fixed-width integers do
    if (exponent & 1) result *= square;
    square *= square;
    exponent >>= 1;
  }
  return static_cast<int64_t>(result);
}

void registerBinaryOps(OpRegistry& registry) {
  addArithmetic(
      registry, "Add", "A + B with numpy broadcasting", [](double a, double b) { return a + b; },
      [](int64_t a, int64_t b, const EvalContext&) { return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b)); },
      [](const Dim& a, const Dim& b) -> std::optional<Dim> { return a + b; });
  addArithmetic(
      registry, "Sub", "A - B with numpy broadcasting", [](double a, double b) { return a - b; },
      [](int64_t a, int64_t b, const EvalContext&) { return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b)); },
      [](const Dim& a, const Dim& b) -> std::optional<Dim> { return a - b; });
  addArithmetic(
      registry, "Mul", "A * B with numpy broadcasting", [](double a, double b) { return a * b; },
      [](int64_t a, int64_t b, const EvalContext&) { return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b)); },
      [](const Dim& a, const Dim& b) -> std::optional<Dim> { return a * b; });
  addArithmetic(
      registry, "Div", "A / B with numpy broadcasting; integer division truncates toward zero",
      [](double a, double b) { return a / b; },
      [](int64_t a, int64_t b, const EvalContext& ctx) {
        if (b == 0) ctx.error("integer division by zero");
        // INT64_MIN / -1 overflows; the wrapped result is INT64_MIN.
        if (b == -1) return static_cast<int64_t>(0 - static_cast<uint64_t>(a));
        return a / b;
      },
      [](const Dim& a, const Dim& b) -> std::optional<Dim> {
        if (a.isConstant() && b.isConstant()) {
          auto q = truncatingDivide(*a.constant(), *b.constant());
          return q ? std::optional<Dim>(*q) : std::nullopt;
        }
        return a.divideExactly(b);
      });
  addArithmetic(
      registry, "Mod", "remainder of A / B: sign of the divisor, or of the dividend (C fmod) when fmod = 1",
      [](double a, double b) { return std::fmod(a, b); },
      [](int64_t a, int64_t b, const EvalContext& ctx) {
        auto r = integerMod(a, b, ctx.op().intAttr("fmod", 0) != 0);
        if (!r) ctx.error("integer modulo by zero");
        return *r;
      },
      nullptr, {{"fmod", AttrKind::Int}}, [](InferContext& ctx) {
        // The spec defines floating-point Mod only with C fmod semantics.
        if (isFloatingPoint(ctx.operandType(0).dtype) && ctx.op().intAttr("fmod", 0) != 1)
          ctx.error("floating-point Mod requires fmod = 1");
      });

  registry.add({
      .name = "Pow",
      .minOperands = 2,
      .maxOperands = 2,
      .infer =
          [](InferContext& ctx) {
            requireNumeric(ctx, 0);
            requireNumeric(ctx, 1);
            auto shape = broadcastShapes(ctx.operandType(0).shape, ctx.operandType(1).shape, ctx);
            ctx.setResult(0, {ctx.operandType(0).dtype, shape});
          },
      .evaluate =
          [](EvalContext& ctx) {
            const Tensor& base = ctx.input(0);
            const Tensor& exponent = ctx.input(1);
            if (base.dtype() == DType::F32) {
              Tensor e = exponent.convertTo(DType::F64);
              ctx.setOutput(0, mapBinary<float, double, float>(base, e, DType::F32, ctx, [](float x, double y) {
                              return static_cast<float>(std::pow(static_cast<double>(x), y));
                            }));
              return;
            }
            Tensor out;
            if (exponent.dtype() == DType::I64) {
              out = mapBinary<int64_t, int64_t, int64_t>(base, exponent, DType::I64, ctx, integerPow);
            } else {
              out = mapBinary<int64_t, float, int64_t>(base, exponent, DType::I64, ctx, [](int64_t x, float y) {
                double r = std::pow(static_cast<double>(x), static_cast<double>(y));
                return std::isfinite(r) ? static_cast<int64_t>(std::clamp(r, -9.2e18, 9.2e18)) : int64_t{0};
              });
            }
            wrapIntegers(out, ctx.resultDType(0));
            ctx.setOutput(0, std::move(out));
          },
      .summary = "A raised to B, broadcasting; the result has A's type",
  });

  addComparison(registry, "Equal", "A == B, broadcasting, giving bool", OperandClass::Any, [](auto a, auto b) { return a == b; });
  addComparison(registry, "Less", "A < B, broadcasting, giving bool", OperandClass::Numeric, [](auto a, auto b) { return a < b; });
  addComparison(registry, "LessOrEqual", "A <= B, broadcasting, giving bool", OperandClass::Numeric,
                [](auto a, auto b) { return a <= b; });
  addComparison(registry, "Greater", "A > B, broadcasting, giving bool", OperandClass::Numeric, [](auto a, auto b) { return a > b; });
  addComparison(registry, "GreaterOrEqual", "A >= B, broadcasting, giving bool", OperandClass::Numeric,
                [](auto a, auto b) { return a >= b; });

  addLogic(registry, "And", "logical and of two bool tensors, broadcasting", [](bool a, bool b) { return a && b; });
  addLogic(registry, "Or", "logical or of two bool tensors, broadcasting", [](bool a, bool b) { return a || b; });
  addLogic(registry, "Xor", "logical xor of two bool tensors, broadcasting", [](bool a, bool b) { return a != b; });
}

// ---------------------------------------------------------------------------------------------
// Variadic Min, Max, Sum, Mean.

// Folds every operand into an output of the broadcast shape; the first operand initialises it.
template <class T, class Combine>
Tensor foldVariadic(const EvalContext& ctx, DType storage, Combine combine) {
  std::vector<std::vector<int64_t>> shapes;
  for (size_t i = 0; i < ctx.numInputs(); ++i) shapes.push_back(ctx.input(i).shape());
  std::vector<int64_t> shape = broadcastConcrete(shapes, ctx);
  Tensor out = Tensor::zeros(storage, shape);
  T* po = out.mutableData<T>();
  std::vector<int64_t> outStrides = contiguousStrides(shape);
  for (size_t k = 0; k < ctx.numInputs(); ++k) {
    const T* pin = ctx.input(k).data<T>();
    forEachIndex(shape, {broadcastStrides(ctx.input(k).shape(), shape)}, [&](int64_t i, const int64_t* offsets) {
      po[i] = k == 0 ? pin[offsets[0]] : combine(po[i], pin[offsets[0]]);
    });
  }
  return out;
}

template <class FloatFn, class IntFn>
void addVariadic(OpRegistry& registry, std::string name, std::string summary, bool floatOnly, FloatFn floatFn, IntFn intFn,
                 DimFold fold) {
  registry.add({
      .name = name,
      .minOperands = 1,
      .maxOperands = -1,
      .infer =
          [floatOnly, fold](InferContext& ctx) {
            if (floatOnly) requireFloat(ctx, 0);
            else requireNumeric(ctx, 0);
            requireSameDType(ctx, 0, ctx.numOperands());
            std::optional<Shape> shape = ctx.operandType(0).shape;
            for (size_t i = 1; i < ctx.numOperands(); ++i) shape = broadcastShapes(shape, ctx.operandType(i).shape, ctx);
            TensorType type{ctx.operandType(0).dtype, shape};
            std::optional<std::vector<Dim>> known;
            if (fold && ctx.numOperands() == 1) known = isSmallIntegerResult(type) ? ctx.operandInts(0) : std::nullopt;
            else if (fold && ctx.numOperands() == 2) known = combineKnownInts(ctx, type, fold);
            ctx.setResult(0, type, std::move(known));
          },
      .evaluate =
          [name, floatFn, intFn](EvalContext& ctx) {
            if (ctx.input(0).dtype() == DType::F32) {
              Tensor out = foldVariadic<float>(ctx, DType::F32, floatFn);
              if (name == "Mean") {
                float* p = out.mutableData<float>();
                auto count = static_cast<float>(ctx.numInputs());
                for (int64_t i = 0, n = out.numElements(); i < n; ++i) p[i] /= count;
              }
              ctx.setOutput(0, std::move(out));
            } else {
              ctx.setOutput(0, foldVariadic<int64_t>(ctx, DType::I64, intFn));
            }
          },
      .summary = std::move(summary),
  });
}

std::optional<Dim> constantFold(const Dim& a, const Dim& b, bool max) {
  if (!a.isConstant() || !b.isConstant()) return std::nullopt;
  return max ? std::max(*a.constant(), *b.constant()) : std::min(*a.constant(), *b.constant());
}

void registerVariadicOps(OpRegistry& registry) {
  // Min and Max propagate NaN, as numpy's minimum/maximum do.
  addVariadic(
      registry, "Max", "element-wise maximum of one or more tensors, broadcasting", false,
      [](float a, float b) { return std::isnan(a) || std::isnan(b) ? std::numeric_limits<float>::quiet_NaN() : std::max(a, b); },
      [](int64_t a, int64_t b) { return std::max(a, b); },
      [](const Dim& a, const Dim& b) { return constantFold(a, b, true); });
  addVariadic(
      registry, "Min", "element-wise minimum of one or more tensors, broadcasting", false,
      [](float a, float b) { return std::isnan(a) || std::isnan(b) ? std::numeric_limits<float>::quiet_NaN() : std::min(a, b); },
      [](int64_t a, int64_t b) { return std::min(a, b); },
      [](const Dim& a, const Dim& b) { return constantFold(a, b, false); });
  addVariadic(
      registry, "Sum", "element-wise sum of one or more tensors, broadcasting", true, [](float a, float b) { return a + b; },
      [](int64_t a, int64_t b) { return a + b; }, nullptr);
  addVariadic(
      registry, "Mean", "element-wise mean of one or more tensors, broadcasting", true, [](float a, float b) { return a + b; },
      [](int64_t a, int64_t b) { return a + b; }, nullptr);
}

// ---------------------------------------------------------------------------------------------
// Unary ops.

// A floating-point unary op; `make(op)` returns the per-element function double(double), so
// attributes are read once per evaluation.
template <class Make>
void addFloatUnary(OpRegistry& registry, std::string name, std::string summary, std::vector<AttrSpec> attrs, Make make,
                   std::function<void(InferContext&)> checkAttrs = nullptr) {
  registry.add({
      .name = std::move(name),
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = std::move(attrs),
      .infer =
          [checkAttrs](InferContext& ctx) {
            requireFloat(ctx, 0);
            if (checkAttrs) checkAttrs(ctx);
            ctx.setResult(0, ctx.operandType(0));
          },
      .evaluate =
          [make](EvalContext& ctx) {
            auto fn = make(ctx.op());
            ctx.setOutput(0, mapUnary<float, float>(ctx.input(0), DType::F32,
                                                    [&](float x) { return static_cast<float>(fn(static_cast<double>(x))); }));
          },
      .summary = std::move(summary),
  });
}

template <class Fn>
auto plain(Fn fn) {
  return [fn](const Op&) { return fn; };
}

// A unary op over any numeric type, keeping the type.
template <class FloatFn, class IntFn>
void addNumericUnary(OpRegistry& registry, std::string name, std::string summary, bool signedOnly, FloatFn floatFn, IntFn intFn,
                     std::optional<Dim> (*fold)(const Dim&) = nullptr) {
  registry.add({
      .name = std::move(name),
      .minOperands = 1,
      .maxOperands = 1,
      .infer =
          [signedOnly, fold](InferContext& ctx) {
            requireNumeric(ctx, 0);
            DType type = ctx.operandType(0).dtype;
            if (signedOnly && (type == DType::U8 || type == DType::U16 || type == DType::U32 || type == DType::U64))
              ctx.error("operand 0 must be signed, got ", dtypeName(type));
            std::optional<std::vector<Dim>> known;
            if (fold && isSmallIntegerResult(ctx.operandType(0))) {
              if (auto in = ctx.operandInts(0)) {
                known.emplace();
                for (const Dim& d : *in) {
                  auto r = fold(d);
                  if (!r) { known.reset(); break; }
                  known->push_back(*r);
                }
              }
            }
            ctx.setResult(0, ctx.operandType(0), std::move(known));
          },
      .evaluate =
          [floatFn, intFn](EvalContext& ctx) {
            const Tensor& x = ctx.input(0);
            if (x.dtype() == DType::F32) {
              ctx.setOutput(0, mapUnary<float, float>(x, DType::F32, [&](float v) { return static_cast<float>(floatFn(v)); }));
            } else {
              Tensor out = mapUnary<int64_t, int64_t>(x, DType::I64, intFn);
              wrapIntegers(out, ctx.resultDType(0));
              ctx.setOutput(0, std::move(out));
            }
          },
      .summary = std::move(summary),
  });
}

double stableSigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  double e = std::exp(x);
  return e / (1.0 + e);
}

void registerUnaryOps(OpRegistry& registry) {
  addFloatUnary(registry, "Sqrt", "square root", {}, plain([](double x) { return std::sqrt(x); }));
  addFloatUnary(registry, "Reciprocal", "1 / x", {}, plain([](double x) { return 1.0 / x; }));
  addFloatUnary(registry, "Exp", "e to the x", {}, plain([](double x) { return std::exp(x); }));
  addFloatUnary(registry, "Log", "natural logarithm", {}, plain([](double x) { return std::log(x); }));
  addFloatUnary(registry, "Erf", "the error function", {}, plain([](double x) { return std::erf(x); }));
  addFloatUnary(registry, "Tanh", "hyperbolic tangent", {}, plain([](double x) { return std::tanh(x); }));
  addFloatUnary(registry, "Sigmoid", "1 / (1 + exp(-x))", {}, plain(stableSigmoid));
  addFloatUnary(registry, "Cos", "cosine", {}, plain([](double x) { return std::cos(x); }));
  addFloatUnary(registry, "Sin", "sine", {}, plain([](double x) { return std::sin(x); }));
  addFloatUnary(registry, "Floor", "round toward negative infinity", {}, plain([](double x) { return std::floor(x); }));
  addFloatUnary(registry, "Ceil", "round toward positive infinity", {}, plain([](double x) { return std::ceil(x); }));
  // nearbyint under the default rounding mode rounds halves to even, as ONNX Round requires.
  addFloatUnary(registry, "Round", "round to nearest, halves to even", {}, plain([](double x) { return std::nearbyint(x); }));
  addFloatUnary(registry, "Softplus", "log(exp(x) + 1)", {},
                plain([](double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }));
  addFloatUnary(registry, "HardSigmoid", "max(0, min(1, alpha * x + beta))",
                {{"alpha", AttrKind::Float}, {"beta", AttrKind::Float}}, [](const Op& op) {
                  double alpha = static_cast<float>(op.floatAttr("alpha", 0.2));
                  double beta = static_cast<float>(op.floatAttr("beta", 0.5));
                  return [alpha, beta](double x) { return std::max(0.0, std::min(1.0, alpha * x + beta)); };
                });
  addFloatUnary(registry, "LeakyRelu", "x, or alpha * x for negative x", {{"alpha", AttrKind::Float}}, [](const Op& op) {
    double alpha = static_cast<float>(op.floatAttr("alpha", 0.01));
    return [alpha](double x) { return x < 0 ? alpha * x : x; };
  });
  addFloatUnary(
      registry, "Gelu", "Gaussian error linear unit, exact (erf) or tanh approximation", {{"approximate", AttrKind::String}},
      [](const Op& op) {
        bool tanhForm = op.stringAttr("approximate", "none") == "tanh";
        return [tanhForm](double x) {
          if (tanhForm) {
            double inner = std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x);
            return 0.5 * x * (1.0 + std::tanh(inner));
          }
          return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2));
        };
      },
      [](InferContext& ctx) {
        std::string mode = ctx.op().stringAttr("approximate", "none");
        if (mode != "none" && mode != "tanh") ctx.error("attribute 'approximate' must be \"none\" or \"tanh\", got \"", mode, "\"");
      });

  addNumericUnary(
      registry, "Neg", "-x", true, [](float x) { return -x; },
      [](int64_t x) { return static_cast<int64_t>(0 - static_cast<uint64_t>(x)); },
      [](const Dim& d) -> std::optional<Dim> { return -d; });
  addNumericUnary(
      registry, "Abs", "|x|", false, [](float x) { return std::fabs(x); },
      [](int64_t x) { return x < 0 ? static_cast<int64_t>(0 - static_cast<uint64_t>(x)) : x; });
  addNumericUnary(
      registry, "Sign", "-1, 0 or 1 by the sign of x (NaN stays NaN)", false,
      [](float x) { return std::isnan(x) ? x : static_cast<float>((x > 0) - (x < 0)); },
      [](int64_t x) { return static_cast<int64_t>((x > 0) - (x < 0)); });
  addNumericUnary(
      registry, "Relu", "max(0, x)", false, [](float x) { return x < 0 ? 0.0f : x; }, [](int64_t x) { return x < 0 ? 0 : x; });

  registry.add({
      .name = "Not",
      .minOperands = 1,
      .maxOperands = 1,
      .infer =
          [](InferContext& ctx) {
            requireBool(ctx, 0);
            ctx.setResult(0, ctx.operandType(0));
          },
      .evaluate =
          [](EvalContext& ctx) {
            ctx.setOutput(0, mapUnary<BoolStorage, BoolStorage>(ctx.input(0), DType::Bool,
                                                                [](BoolStorage x) -> BoolStorage { return x ? 0 : 1; }));
          },
      .summary = "logical not",
  });
  registry.add({
      .name = "IsNaN",
      .minOperands = 1,
      .maxOperands = 1,
      .infer =
          [](InferContext& ctx) {
            requireFloat(ctx, 0);
            ctx.setResult(0, {DType::Bool, ctx.operandType(0).shape});
          },
      .evaluate =
          [](EvalContext& ctx) {
            ctx.setOutput(0, mapUnary<float, BoolStorage>(ctx.input(0), DType::Bool,
                                                          [](float x) -> BoolStorage { return std::isnan(x) ? 1 : 0; }));
          },
      .summary = "true where x is NaN",
  });
  registry.add({
      .name = "IsInf",
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = {{"detect_negative", AttrKind::Int}, {"detect_positive", AttrKind::Int}},
      .infer =
          [](InferContext& ctx) {
            requireFloat(ctx, 0);
            ctx.setResult(0, {DType::Bool, ctx.operandType(0).shape});
          },
      .evaluate =
          [](EvalContext& ctx) {
            bool negative = ctx.op().intAttr("detect_negative", 1) != 0;
            bool positive = ctx.op().intAttr("detect_positive", 1) != 0;
            ctx.setOutput(0, mapUnary<float, BoolStorage>(ctx.input(0), DType::Bool, [&](float x) -> BoolStorage {
                            return std::isinf(x) && ((x > 0 && positive) || (x < 0 && negative)) ? 1 : 0;
                          }));
          },
      .summary = "true where x is infinite (of the signs selected by detect_negative/detect_positive)",
  });
}

// ---------------------------------------------------------------------------------------------
// Clip, Where, Dropout.

template <class T>
Tensor selectWhere(const Tensor& condition, const Tensor& x, const Tensor& y, const EvalContext& ctx) {
  std::vector<int64_t> shape = broadcastConcrete({condition.shape(), x.shape(), y.shape()}, ctx);
  Tensor out = Tensor::zeros(x.dtype(), shape);
  const auto* pc = condition.data<BoolStorage>();
  const T* px = x.data<T>();
  const T* py = y.data<T>();
  T* po = out.mutableData<T>();
  forEachIndex(shape, {broadcastStrides(condition.shape(), shape), broadcastStrides(x.shape(), shape), broadcastStrides(y.shape(), shape)},
               [&](int64_t i, const int64_t* o) { po[i] = pc[o[0]] ? px[o[1]] : py[o[2]]; });
  return out;
}

// Where's contents are known when the condition is a constant and both branches are known.
std::optional<std::vector<Dim>> whereKnownInts(const InferContext& ctx, const TensorType& result) {
  if (!isSmallIntegerResult(result)) return std::nullopt;
  const Tensor* condition = ctx.constantOperand(0);
  auto x = ctx.operandInts(1);
  auto y = ctx.operandInts(2);
  if (!condition || condition->rank() > 1 || !x || !y) return std::nullopt;
  std::vector<size_t> sizes = {static_cast<size_t>(condition->numElements()), x->size(), y->size()};
  size_t n = 1;
  for (size_t s : sizes) {
    if (s == n || s == 1) continue;
    if (n != 1) return std::nullopt;
    n = s;
  }
  std::vector<Dim> values;
  for (size_t i = 0; i < n; ++i) {
    bool c = condition->elementAsDouble(sizes[0] == 1 ? 0 : static_cast<int64_t>(i)) != 0.0;
    values.push_back(c ? (*x)[x->size() == 1 ? 0 : i] : (*y)[y->size() == 1 ? 0 : i]);
  }
  return values;
}

// Dropout is inference-only here: training_mode must be false (or the ratio zero).
void checkDropoutInference(const InferContext& ctx) {
  if (!ctx.hasOperand(2)) return;
  const Tensor* training = ctx.constantOperand(2);
  if (!training) return;  // a run-time flag: the reference checks it
  if (training->numElements() == 1 && training->elementAsDouble(0) != 0.0) {
    const Tensor* ratio = ctx.hasOperand(1) ? ctx.constantOperand(1) : nullptr;
    if (ctx.hasOperand(1) && (!ratio || ratio->numElements() != 1)) return;  // a run-time ratio: checked then
    double value = ratio ? ratio->elementAsDouble(0) : 0.5;  // the spec's default ratio
    if (value != 0.0) ctx.error("training_mode is true: only inference (training_mode false or ratio 0) is supported");
  }
}

void registerSelectionOps(OpRegistry& registry) {
  registry.add({
      .name = "Clip",
      .minOperands = 1,
      .maxOperands = 3,
      .infer =
          [](InferContext& ctx) {
            requireNumeric(ctx, 0);
            requireSameDType(ctx, 0, 3);
            for (size_t i = 1; i < 3; ++i) {
              if (!ctx.hasOperand(i) || !ctx.operandType(i).hasRank()) continue;
              auto count = ctx.operandType(i).numElements();
              if (ctx.operandType(i).rank() > 1 || (count && count->isConstant() && count->constant() != 1))
                ctx.error("operand ", i, " (", i == 1 ? "min" : "max", ") must be a scalar, got ", ctx.operandType(i).str());
            }
            ctx.setResult(0, ctx.operandType(0));
          },
      .evaluate =
          [](EvalContext& ctx) {
            const Tensor& x = ctx.input(0);
            // Applying max then min makes min > max give max everywhere, as the spec says.
            if (x.dtype() == DType::F32) {
              float lo = ctx.hasInput(1) ? static_cast<float>(scalarAsDouble(ctx.input(1), ctx, "min")) : -std::numeric_limits<float>::infinity();
              float hi = ctx.hasInput(2) ? static_cast<float>(scalarAsDouble(ctx.input(2), ctx, "max")) : std::numeric_limits<float>::infinity();
              ctx.setOutput(0, mapUnary<float, float>(x, DType::F32, [&](float v) {
                              return std::isnan(v) ? v : std::min(std::max(v, lo), hi);
                            }));
            } else {
              int64_t lo = ctx.hasInput(1) ? scalarAsInt(ctx.input(1), ctx, "min") : std::numeric_limits<int64_t>::min();
              int64_t hi = ctx.hasInput(2) ? scalarAsInt(ctx.input(2), ctx, "max") : std::numeric_limits<int64_t>::max();
              ctx.setOutput(0, mapUnary<int64_t, int64_t>(x, DType::I64, [&](int64_t v) { return std::min(std::max(v, lo), hi); }));
            }
          },
      .summary = "limits x to [min, max]; omitted bounds are unbounded",
  });
  registry.add({
      .name = "Where",
      .minOperands = 3,
      .maxOperands = 3,
      .infer =
          [](InferContext& ctx) {
            requireBool(ctx, 0);
            requireSameDType(ctx, 1, 3);
            auto shape = broadcastShapes(ctx.operandType(0).shape, ctx.operandType(1).shape, ctx);
            shape = broadcastShapes(shape, ctx.operandType(2).shape, ctx);
            TensorType type{ctx.operandType(1).dtype, shape};
            ctx.setResult(0, type, whereKnownInts(ctx, type));
          },
      .evaluate =
          [](EvalContext& ctx) {
            const Tensor& x = ctx.input(1);
            Tensor out;
            if (x.dtype() == DType::F32) out = selectWhere<float>(ctx.input(0), x, ctx.input(2), ctx);
            else if (x.dtype() == DType::I64) out = selectWhere<int64_t>(ctx.input(0), x, ctx.input(2), ctx);
            else out = selectWhere<BoolStorage>(ctx.input(0), x, ctx.input(2), ctx);
            ctx.setOutput(0, std::move(out));
          },
      .summary = "X where condition is true, else Y, broadcasting all three",
  });
  registry.add({
      .name = "Dropout",
      .minOperands = 1,
      .maxOperands = 3,
      .minResults = 1,
      .maxResults = 2,
      .attrs = {{"seed", AttrKind::Int}},
      .infer =
          [](InferContext& ctx) {
            requireFloat(ctx, 0);
            if (ctx.hasOperand(1)) requireFloat(ctx, 1);
            if (ctx.hasOperand(2)) requireBool(ctx, 2);
            checkDropoutInference(ctx);
            ctx.setResult(0, ctx.operandType(0));
            if (ctx.numResults() > 1) ctx.setResult(1, {DType::Bool, ctx.operandType(0).shape});
          },
      .evaluate =
          [](EvalContext& ctx) {
            if (ctx.hasInput(2) && scalarAsDouble(ctx.input(2), ctx, "training_mode") != 0.0) {
              double ratio = ctx.hasInput(1) ? scalarAsDouble(ctx.input(1), ctx, "ratio") : 0.5;
              if (ratio != 0.0) ctx.error("training_mode is true: only inference (training_mode false or ratio 0) is supported");
            }
            ctx.setOutput(0, ctx.input(0));
            if (ctx.outputs().size() > 1) {
              Tensor mask = Tensor::zeros(DType::Bool, ctx.input(0).shape());
              auto* p = mask.mutableData<BoolStorage>();
              for (int64_t i = 0, n = mask.numElements(); i < n; ++i) p[i] = 1;
              ctx.setOutput(1, std::move(mask));
            }
          },
      .summary = "inference dropout: passes data through; the optional mask is all true",
  });
}

// ---------------------------------------------------------------------------------------------
// Cast and CastLike.

// A finite float truncated toward zero into i64 (NaN gives 0, out-of-range values saturate:
// ONNX leaves both undefined), then wrapped to the target width.
int64_t floatToInteger(float value, DType target) {
  if (std::isnan(value)) return 0;
  double t = std::trunc(static_cast<double>(value));
  int64_t v;
  if (t >= 9.223372036854775807e18) v = std::numeric_limits<int64_t>::max();
  else if (t < -9.223372036854775807e18) v = std::numeric_limits<int64_t>::min();
  else v = static_cast<int64_t>(t);
  return wrapToDType(v, target);
}

// Rounds an f32 value to the precision of a 16-bit float target (f32 storage keeps the rounded value).
float roundToFloatType(float value, DType target) {
  if (target == DType::F16) return f16ToFloat(floatToF16(value));
  if (target == DType::BF16) return bf16ToFloat(floatToBf16(value));
  return value;
}

Tensor castCanonical(const Tensor& in, DType target) {
  DType storage = canonicalDType(target);
  Tensor out = Tensor::zeros(storage, in.shape());
  int64_t n = in.numElements();
  auto each = [&](auto&& fn) {
    for (int64_t i = 0; i < n; ++i) fn(i);
  };
  if (in.dtype() == DType::F32) {
    const float* p = in.data<float>();
    if (storage == DType::F32) each([&](int64_t i) { out.mutableData<float>()[i] = roundToFloatType(p[i], target); });
    else if (storage == DType::I64) each([&](int64_t i) { out.mutableData<int64_t>()[i] = floatToInteger(p[i], target); });
    else each([&](int64_t i) { out.mutableData<BoolStorage>()[i] = p[i] != 0.0f; });
  } else if (in.dtype() == DType::I64) {
    const int64_t* p = in.data<int64_t>();
    if (storage == DType::F32) each([&](int64_t i) { out.mutableData<float>()[i] = roundToFloatType(static_cast<float>(p[i]), target); });
    else if (storage == DType::I64) each([&](int64_t i) { out.mutableData<int64_t>()[i] = wrapToDType(p[i], target); });
    else each([&](int64_t i) { out.mutableData<BoolStorage>()[i] = p[i] != 0; });
  } else {
    const BoolStorage* p = in.data<BoolStorage>();
    if (storage == DType::F32) each([&](int64_t i) { out.mutableData<float>()[i] = p[i] ? 1.0f : 0.0f; });
    else if (storage == DType::I64) each([&](int64_t i) { out.mutableData<int64_t>()[i] = p[i] ? 1 : 0; });
    else each([&](int64_t i) { out.mutableData<BoolStorage>()[i] = p[i] ? 1 : 0; });
  }
  return out;
}

// Integer-to-integer casts keep shape arithmetic visible (constants wrap to the target width).
std::optional<std::vector<Dim>> castKnownInts(const InferContext& ctx, DType target) {
  if (!isInteger(ctx.operandType(0).dtype) || !isInteger(target)) return std::nullopt;
  auto in = ctx.operandInts(0);
  if (!in) return std::nullopt;
  std::vector<Dim> values;
  for (const Dim& d : *in) values.push_back(d.isConstant() ? Dim(wrapToDType(*d.constant(), target)) : d);
  return values;
}

void registerCastOps(OpRegistry& registry) {
  registry.add({
      .name = "Cast",
      .minOperands = 1,
      .maxOperands = 1,
      .attrs = {{"to", AttrKind::Type, true}, {"saturate", AttrKind::Int}, {"round_mode", AttrKind::String}},
      .infer =
          [](InferContext& ctx) {
            const Attribute* to = ctx.op().attr("to");
            if (!to || to->kind() != AttrKind::Type) ctx.error("needs attribute 'to' (a type)");
            DType target = to->asType();
            ctx.setResult(0, {target, ctx.operandType(0).shape}, castKnownInts(ctx, target));
          },
      .evaluate = [](EvalContext& ctx) { ctx.setOutput(0, castCanonical(ctx.input(0), ctx.op().attr("to")->asType())); },
      .summary = "converts elements to type `to`: floats to integers truncate, to bool is x != 0, to 16-bit floats rounds to nearest even",
  });
  registry.add({
      .name = "CastLike",
      .minOperands = 2,
      .maxOperands = 2,
      .attrs = {{"saturate", AttrKind::Int}, {"round_mode", AttrKind::String}},
      .infer =
          [](InferContext& ctx) {
            DType target = ctx.operandType(1).dtype;
            ctx.setResult(0, {target, ctx.operandType(0).shape}, castKnownInts(ctx, target));
          },
      .evaluate = [](EvalContext& ctx) { ctx.setOutput(0, castCanonical(ctx.input(0), ctx.resultDType(0))); },
      .summary = "Cast to the element type of the second operand",
  });
}

}  // namespace

void registerElementwiseOps(OpRegistry& registry) {
  registerBinaryOps(registry);
  registerVariadicOps(registry);
  registerUnaryOps(registry);
  registerSelectionOps(registry);
  registerCastOps(registry);
}

}  // namespace pagedc
