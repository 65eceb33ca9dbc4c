// The CPU executor: planning (kernel choice, weight packing, arena layout) and the step loop.
#include "runtime/cpu/CpuExecutor.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <cmath>
#include <unordered_map>

#include "ir/Error.h"
#include "ir/HalfFloat.h"
#include "ir/Interpreter.h"
#include "ir/OpDef.h"
#include "runtime/CompiledDim.h"
#include "runtime/cpu/Gemm.h"
#include "runtime/cpu/KvCacheWriteKernel.h"
#include "runtime/cpu/PagedAttentionKernel.h"
#include "runtime/cpu/RowKernels.h"
#include "runtime/cpu/TensorKernels.h"

namespace pagedc::cpu {

namespace {

constexpr size_t kAlignment = 64;

size_t alignUp(size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

enum class SlotKind {
  Unused,   // not needed for the outputs
  Input,    // caller memory
  Static,   // computed at load
  Arena,    // a region of the arena, written by its op each step
  View,     // another slot's memory under this slot's shape (reshapes, in-place cache writes)
  Scratch,  // produced by the reference implementation each step (fallback ops)
};

struct Slot {
  const Value* value = nullptr;
  SlotKind kind = SlotKind::Unused;
  DType storage = DType::F32;
  std::vector<CompiledDim> dims;
  size_t offset = 0, capacity = 0;
  int viewOf = -1;           // View: the slot whose memory this one shares
  Tensor staticTensor;       // Static: canonical contents; Scratch: this step's result
  // Per step.
  std::byte* data = nullptr;
  std::array<int64_t, kMaxRank> shape{};
  size_t rank = 0;

  std::span<const int64_t> shapeSpan() const { return {shape.data(), rank}; }
  int64_t numElements() const {
    int64_t n = 1;
    for (size_t i = 0; i < rank; ++i) n *= shape[i];
    return n;
  }
  template <class T>
  T* as() const { return reinterpret_cast<T*>(data); }
};

enum class Kernel {
  Gemm, Embedding, Gather, Norm, Activation, GatedActivation, Rope, OnnxRotary, Binary, Permute, Slice, View, Concat, Split, KvCacheWrite,
  PagedAttention, Fallback,
};

struct Step {
  Kernel kernel = Kernel::Fallback;
  const Op* op = nullptr;
  std::vector<int> operands;  // slot per operand, -1 when omitted
  std::vector<int> results;
  std::unique_ptr<PackedWeight> weight;  // Gemm
  int bias = -1;                         // Gemm: static bias slot
  float alpha = 1, beta = 1;             // Gemm
  const Tensor* rawTable = nullptr;      // Embedding: the weight in its stored dtype
  Activation activation = Activation::Silu;
  BinaryOp binaryOp = BinaryOp::Add;
  std::vector<int64_t> perm;
  int64_t axis = 0;
  bool subtractMean = false;
  int residualOperand = -1, biasOperand = -1;
  std::vector<int64_t> sliceStarts, sliceEnds, sliceAxes, sliceSteps;  // Slice: static operands, per listed axis
  std::vector<int64_t> starts, steps;                                  // Slice: per input axis, this step
};

// Operands [0, count) are floating point (f32 storage).
bool allFloatData(const Op& op, size_t count) {
  for (size_t i = 0; i < count; ++i)
    if (!op.operand(i) || !isFloatingPoint(op.operand(i)->type.dtype)) return false;
  return true;
}

bool isViewOp(const std::string& name) {
  return name == "Reshape" || name == "Squeeze" || name == "Unsqueeze" || name == "Flatten" || name == "Identity";
}

int64_t product(std::span<const int64_t> shape, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end; ++i) n *= shape[i];
  return n;
}

}  // namespace

struct CpuExecutor::Plan {
  const Graph& graph;
  GemmContext gemm;
  std::vector<Slot> slots;
  std::unordered_map<const Value*, int> slotOf;
  std::vector<std::string> symbols;
  std::vector<int64_t> symbolBounds, symbolValues;
  std::vector<char> bound;  // per symbol, while binding
  std::vector<Step> steps;
  std::vector<int> inputSlots, outputSlots;
  // Binding each input symbol from an input's shape: (input, axis, symbol).
  struct SymbolSource {
    size_t input;
    size_t axis;
    int symbol;
  };
  std::vector<SymbolSource> symbolSources;
  std::vector<std::byte, std::allocator<std::byte>> arenaStorage;
  std::byte* arena = nullptr;
  ExecutorPlanSummary summary;
  bool profiling = false;
  std::map<std::string, double> profile;

  explicit Plan(const Graph& g) : graph(g) {}

  Slot& slot(const Value* v) { return slots[static_cast<size_t>(slotOf.at(v))]; }
  int slotIndex(const Value* v) const { return v ? slotOf.at(v) : -1; }

  int symbolIndex(const std::string& name) { return pagedc::symbolIndex(symbols, name); }

  std::optional<CompiledDim> compileDim(const Dim& dim) const { return pagedc::compileDim(dim, symbols); }

  // --- Static values ---------------------------------------------------------------------------

  // The canonical contents of a static value, computed on first request.
  const Tensor& staticValue(int index) {
    Slot& s = slots[static_cast<size_t>(index)];
    if (!s.staticTensor.isNull()) return s.staticTensor;
    const Op* op = s.value->producer;
    if (op->opName() == "weight") {
      std::string name = op->stringAttr("name", "");
      const Tensor* data = graph.weights ? graph.weights->find(name) : nullptr;
      if (!data) fail(op->describe(), ": weight '", name, "' has no data in the weight store");
      s.staticTensor = toCanonical(*data);
      return s.staticTensor;
    }
    std::vector<Tensor> operands;
    for (const Value* operand : op->operands) operands.push_back(operand ? staticValue(slotOf.at(operand)) : Tensor());
    EvalContext ctx(*op, std::move(operands));
    if (!op->def().evaluate) fail(op->describe(), ": op has no reference implementation");
    op->def().evaluate(ctx);
    for (size_t r = 0; r < op->results.size(); ++r) slots[static_cast<size_t>(slotOf.at(op->results[r]))].staticTensor = ctx.outputs()[r];
    return s.staticTensor;
  }

  // The stored tensor behind a GEMM or embedding weight, looking through the Cast to f32 that
  // 16-bit artifacts put after each weight and a 2-D Transpose: packing reads the stored bytes.
  const Tensor* storedWeight(const Value* v, bool& transposed) {
    transposed = false;
    for (int hops = 0; hops < 4 && v && v->producer; ++hops) {
      const Op* op = v->producer;
      const std::string& name = op->opName();
      if (name == "weight") {
        const Tensor* data = graph.weights ? graph.weights->find(op->stringAttr("name", "")) : nullptr;
        return data;
      }
      if (name == "Cast" && isFloatingPoint(v->type.dtype) && isFloatingPoint(op->operand(0)->type.dtype)) {
        v = op->operand(0);
      } else if (name == "Transpose" && v->type.rank() == 2 && op->intsAttr("perm", {1, 0}) == std::vector<int64_t>{1, 0}) {
        transposed = !transposed;
        v = op->operand(0);
      } else if (name == "Identity") {
        v = op->operand(0);
      } else {
        return nullptr;
      }
    }
    return nullptr;
  }

  bool isStatic(const Value* v) const { return v && slots[static_cast<size_t>(slotOf.at(v))].kind == SlotKind::Static; }

  // --- Planning --------------------------------------------------------------------------------

  void choose(Step& step) {
    const Op& op = *step.op;
    const std::string& name = op.opName();
    auto operandType = [&](size_t i) -> const TensorType& { return op.operand(i)->type; };
    auto allFloat = [&] {
      for (const Value* v : op.operands)
        if (v && !isFloatingPoint(v->type.dtype)) return false;
      for (const Value* v : op.results)
        if (!isFloatingPoint(v->type.dtype)) return false;
      return true;
    };
    if ((name == "MatMul" || name == "Gemm") && allFloat() && !isStatic(op.operand(0)) && isStatic(op.operand(1)) &&
        operandType(1).rank() == 2 && operandType(0).hasRank() && operandType(0).rank() >= 1 &&
        (name == "MatMul" || (op.intAttr("transA", 0) == 0 && (!op.hasOperand(2) || isStatic(op.operand(2)))))) {
      bool transposed = false;
      const Tensor* stored = storedWeight(op.operand(1), transposed);
      bool transB = name == "Gemm" && op.intAttr("transB", 0) != 0;
      Tensor canonical;
      if (!stored || (stored->dtype() != DType::F32 && stored->dtype() != DType::BF16)) {
        canonical = staticValue(slotOf.at(op.operand(1)));
        stored = &canonical;
        transposed = false;
      }
      transposed = transposed != transB;
      const int64_t rows = stored->shape()[0], cols = stored->shape()[1];
      const int64_t k = transposed ? cols : rows, n = transposed ? rows : cols;
      if (operandType(0).dim(operandType(0).rank() - 1).constant() == k) {
        step.kernel = Kernel::Gemm;
        step.weight = std::make_unique<PackedWeight>(gemm, stored->bytes(), stored->dtype(), k, n, transposed);
        summary.packedWeightBytes += static_cast<int64_t>(step.weight->byteSize());
        if (name == "Gemm") {
          step.alpha = static_cast<float>(op.floatAttr("alpha", 1.0));
          step.beta = static_cast<float>(op.floatAttr("beta", 1.0));
          if (op.hasOperand(2)) {
            const Tensor& bias = staticValue(slotOf.at(op.operand(2)));
            if (bias.numElements() != n && bias.numElements() != 1) {
              step.kernel = Kernel::Fallback;
              step.weight.reset();
              return;
            }
            step.bias = slotOf.at(op.operand(2));
          }
        }
        step.operands = {slotIndex(op.operand(0))};
        return;
      }
    }
    if (name == "Gather" && op.operands.size() == 2 && !isStatic(op.operand(1)) && isStatic(op.operand(0)) &&
        isFloatingPoint(op.result(0)->type.dtype)) {
      bool transposed = false;
      const Tensor* stored = storedWeight(op.operand(0), transposed);
      if (stored && !transposed && (stored->dtype() == DType::F32 || stored->dtype() == DType::BF16 || stored->dtype() == DType::F16)) {
        step.kernel = Kernel::Embedding;
        step.rawTable = stored;
        step.axis = normalizeAxis(op.intAttr("axis", 0), static_cast<int64_t>(stored->rank()), op);
        step.operands = {-1, slotIndex(op.operand(1))};
        return;
      }
    }
    if (name == "Gather" && operandType(0).hasRank()) {
      step.kernel = Kernel::Gather;
      step.axis = normalizeAxis(op.intAttr("axis", 0), static_cast<int64_t>(operandType(0).rank()), op);
      return;
    }
    if ((name == "rms_norm" || name == "layer_norm") && allFloat()) {
      step.subtractMean = name == "layer_norm";
      step.biasOperand = name == "layer_norm" && op.hasOperand(2) ? 2 : -1;
      step.residualOperand = name == "layer_norm" ? (op.hasOperand(3) ? 3 : -1) : (op.hasOperand(2) ? 2 : -1);
      if (isStatic(op.operand(1)) && (step.biasOperand < 0 || isStatic(op.operand(2)))) step.kernel = Kernel::Norm;
      return;
    }
    if ((name == "silu" || name == "gelu" || name == "Relu") && allFloat()) {
      std::string approximate = op.stringAttr("approximate", "none");
      step.activation = name == "silu" ? Activation::Silu : name == "Relu" ? Activation::Relu : approximate == "tanh" ? Activation::GeluTanh : Activation::GeluErf;
      if (name != "gelu" || approximate == "none" || approximate == "tanh") step.kernel = Kernel::Activation;
      return;
    }
    if (name == "gated_act" && allFloat() && operandType(0) == operandType(1)) {
      std::string act = op.stringAttr("activation", "");
      step.activation = act == "silu" ? Activation::Silu : act == "gelu_tanh" ? Activation::GeluTanh : Activation::GeluErf;
      step.kernel = Kernel::GatedActivation;
      return;
    }
    if (name == "rope" && isStatic(op.operand(2)) && isStatic(op.operand(3))) {
      step.kernel = Kernel::Rope;
      return;
    }
    auto sameStorageEverywhere = [&] {
      DType storage = canonicalDType(op.result(0)->type.dtype);
      for (const Value* v : op.operands)
        if (!v || canonicalDType(v->type.dtype) != storage) return false;
      return storage == DType::F32 || storage == DType::I64;
    };
    if ((name == "Add" || name == "Sub" || name == "Mul" || name == "Div") && sameStorageEverywhere()) {
      step.binaryOp = name == "Add" ? BinaryOp::Add : name == "Sub" ? BinaryOp::Sub : name == "Mul" ? BinaryOp::Mul : BinaryOp::Div;
      step.kernel = Kernel::Binary;
      return;
    }
    if (name == "RotaryEmbedding" && op.hasOperand(3) && isStatic(op.operand(1)) && isStatic(op.operand(2)) && !isStatic(op.operand(0)) &&
        operandType(0).hasRank() && (operandType(0).rank() == 4 || op.intAttr("num_heads", 0) > 0) && allFloatData(op, 3)) {
      step.kernel = Kernel::OnnxRotary;
      return;
    }
    if (name == "Slice" && operandType(0).hasRank() && !isStatic(op.operand(0))) {
      bool constant = true;
      for (size_t i = 1; i < op.operands.size(); ++i) constant = constant && (!op.operand(i) || isStatic(op.operand(i)));
      if (constant) {
        auto ints = [&](size_t i) { return op.hasOperand(i) ? staticValue(slotOf.at(op.operand(i))).toInt64Vector() : std::vector<int64_t>{}; };
        step.sliceStarts = ints(1);
        step.sliceEnds = ints(2);
        step.sliceAxes = ints(3);
        step.sliceSteps = ints(4);
        const auto rank = static_cast<int64_t>(operandType(0).rank());
        if (step.sliceAxes.empty())
          for (int64_t i = 0; i < static_cast<int64_t>(step.sliceStarts.size()); ++i) step.sliceAxes.push_back(i);
        if (step.sliceSteps.empty()) step.sliceSteps.assign(step.sliceStarts.size(), 1);
        bool valid = step.sliceStarts.size() == step.sliceAxes.size() && step.sliceSteps.size() == step.sliceAxes.size();
        for (int64_t& axis : step.sliceAxes) axis = valid ? normalizeAxis(axis, rank, op, "axes") : axis;
        for (int64_t stepSize : step.sliceSteps) valid = valid && stepSize != 0;
        if (valid) {
          step.kernel = Kernel::Slice;
          step.operands = {slotIndex(op.operand(0))};
          step.starts.assign(static_cast<size_t>(rank), 0);
          step.steps.assign(static_cast<size_t>(rank), 1);
          return;
        }
      }
    }
    if (name == "Transpose" && operandType(0).hasRank()) {
      const auto rank = static_cast<int64_t>(operandType(0).rank());
      std::vector<int64_t> reversed;
      for (int64_t i = rank - 1; i >= 0; --i) reversed.push_back(i);
      step.perm = op.intsAttr("perm", reversed);
      step.kernel = Kernel::Permute;
      return;
    }
    const bool sameStorage = op.hasOperand(0) && canonicalDType(operandType(0).dtype) == canonicalDType(op.result(0)->type.dtype);
    if ((isViewOp(name) || (name == "Cast" && sameStorage)) && op.results.size() == 1) {
      step.kernel = Kernel::View;
      step.operands = {slotIndex(op.operand(0))};  // the shape operand is never read
      return;
    }
    if (name == "Concat" && op.result(0)->type.hasRank()) {
      step.axis = normalizeAxis(op.intAttr("axis", 0), static_cast<int64_t>(op.result(0)->type.rank()), op);
      step.kernel = Kernel::Concat;
      return;
    }
    if (name == "Split" && operandType(0).hasRank()) {
      step.axis = normalizeAxis(op.intAttr("axis", 0), static_cast<int64_t>(operandType(0).rank()), op);
      step.kernel = Kernel::Split;
      step.operands = {slotIndex(op.operand(0))};  // sizes come from the results' planned shapes
      return;
    }
    if (name == "kv_cache_write") {
      step.kernel = Kernel::KvCacheWrite;
      return;
    }
    if (name == "paged_attention") {
      step.kernel = Kernel::PagedAttention;
      return;
    }
  }

  void build(const std::map<std::string, int64_t>& bounds) {
    // Symbols: every symbol in the inputs' declared shapes, bound from the inputs each step.
    for (size_t i = 0; i < graph.inputs.size(); ++i) {
      const Value* input = graph.inputs[i];
      if (!input->type.shape) fail("graph input '", input->name, "' has no declared shape; the CPU backend needs one");
      for (size_t axis = 0; axis < input->type.rank(); ++axis)
        if (auto symbol = input->type.dim(axis).singleSymbol()) symbolSources.push_back({i, axis, symbolIndex(*symbol)});
    }
    symbolBounds.assign(symbols.size(), 0);
    symbolValues.assign(symbols.size(), 0);
    bound.assign(symbols.size(), false);
    for (size_t i = 0; i < symbols.size(); ++i) {
      auto it = bounds.find(symbols[i]);
      if (it == bounds.end()) fail("the CPU backend needs a bound for input symbol '", symbols[i], "'");
      symbolBounds[i] = it->second;
    }

    auto addSlot = [&](const Value* v) {
      slotOf[v] = static_cast<int>(slots.size());
      Slot s;
      s.value = v;
      s.storage = canonicalDType(v->type.dtype);
      slots.push_back(std::move(s));
    };
    for (const Value* input : graph.inputs) {
      addSlot(input);
      Slot& s = slots.back();
      s.kind = SlotKind::Input;
      if (isFloatingPoint(input->type.dtype) && input->type.rank() == 4) s.storage = input->type.dtype;  // a KV cache keeps its dtype
      inputSlots.push_back(static_cast<int>(slots.size() - 1));
    }
    for (const auto& op : graph.ops())
      for (const Value* r : op->results) addSlot(r);

    // Static: weights, constants, and ops whose operands are all static (folded at load on demand).
    for (const auto& op : graph.ops()) {
      bool allStatic = op->opName() != "kv_cache_write" && op->opName() != "paged_attention";
      for (const Value* v : op->operands) allStatic = allStatic && (!v || isStatic(v));
      if (allStatic)
        for (const Value* r : op->results) slot(r).kind = SlotKind::Static;
    }

    // Kernel choice for the rest, then the ops the outputs need (backwards).
    std::vector<Step> chosen;
    for (const auto& op : graph.ops()) {
      if (isStatic(op->result(0))) continue;
      Step step;
      step.op = op.get();
      choose(step);
      if (step.operands.empty())
        for (const Value* v : op->operands) step.operands.push_back(slotIndex(v));
      for (const Value* r : op->results) step.results.push_back(slotOf.at(r));
      chosen.push_back(std::move(step));
    }
    std::vector<bool> needed(slots.size(), false);
    for (const Value* output : graph.outputs) {
      needed[static_cast<size_t>(slotOf.at(output))] = true;
      outputSlots.push_back(slotOf.at(output));
    }
    for (auto it = chosen.rbegin(); it != chosen.rend(); ++it) {
      bool any = false;
      for (int r : it->results) any = any || needed[static_cast<size_t>(r)];
      if (!any) continue;
      for (int operand : it->operands)
        if (operand >= 0) needed[static_cast<size_t>(operand)] = true;
      if (it->bias >= 0) needed[static_cast<size_t>(it->bias)] = true;
      steps.push_back(std::move(*it));
    }
    std::ranges::reverse(steps);

    // Static slots the kernels read are materialised now, so no step computes them.
    for (size_t i = 0; i < slots.size(); ++i)
      if (slots[i].kind == SlotKind::Static && needed[i]) {
        Slot& s = slots[i];
        const Tensor& t = staticValue(static_cast<int>(i));
        s.data = const_cast<std::byte*>(t.bytes());
        s.rank = t.rank();
        if (s.rank > kMaxRank) fail("value %", s.value->name, " has rank ", s.rank, ", more than the CPU backend's ", kMaxRank);
        std::copy(t.shape().begin(), t.shape().end(), s.shape.begin());
        ++summary.numStatic;
      }

    // Result kinds, shapes and the arena layout by liveness.
    std::vector<size_t> lastUse(slots.size(), 0);
    for (size_t i = 0; i < steps.size(); ++i)
      for (int operand : steps[i].operands)
        if (operand >= 0) lastUse[static_cast<size_t>(operand)] = i;
    for (int output : outputSlots) lastUse[static_cast<size_t>(output)] = steps.size();
    for (Step& step : steps) {
      for (size_t r = 0; r < step.results.size(); ++r) {
        Slot& s = slots[static_cast<size_t>(step.results[r])];
        if (!s.value->type.shape) fail(step.op->describe(), ": result ", r, " has no inferred shape; the CPU backend needs one");
        for (const Dim& dim : *s.value->type.shape) {
          auto compiled = compileDim(dim);
          if (!compiled)
            fail(step.op->describe(), ": result %", s.value->name, " has shape ", s.value->type.str(),
                 ", which the graph inputs do not determine; the CPU backend needs shapes known from the inputs");
          s.dims.push_back(std::move(*compiled));
        }
        if (s.dims.size() > kMaxRank) fail(step.op->describe(), ": rank ", s.dims.size(), " exceeds the CPU backend's ", kMaxRank);
        if (step.kernel == Kernel::View) {
          s.kind = SlotKind::View;
          s.viewOf = step.operands[0];
        } else if (step.kernel == Kernel::KvCacheWrite) {
          s.kind = SlotKind::View;
          s.viewOf = step.operands[2 + r];
          s.storage = slots[static_cast<size_t>(s.viewOf)].storage;
        } else {
          s.kind = SlotKind::Arena;
        }
      }
      if (step.kernel == Kernel::Fallback) summary.fallbackOps.push_back(step.op->opName());
      else if (step.kernel == Kernel::View) ++summary.numViews;
      else ++summary.numKernels;
    }
    // A view keeps its base alive as long as the view itself.
    for (size_t i = slots.size(); i-- > 0;) {
      if (slots[i].kind != SlotKind::View) continue;
      int base = slots[i].viewOf;
      while (slots[static_cast<size_t>(base)].kind == SlotKind::View) base = slots[static_cast<size_t>(base)].viewOf;
      lastUse[static_cast<size_t>(base)] = std::max(lastUse[static_cast<size_t>(base)], lastUse[i]);
    }
    // First-fit placement: a region is free after the step of its last use.
    struct Region {
      size_t offset, size, freeAfter;
    };
    std::vector<Region> live;
    size_t arenaSize = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
      std::erase_if(live, [&](const Region& r) { return r.freeAfter < i; });
      for (int result : steps[i].results) {
        Slot& s = slots[static_cast<size_t>(result)];
        if (s.kind != SlotKind::Arena) continue;
        int64_t elements = 1;
        for (const CompiledDim& dim : s.dims) elements *= dim.upperBound(symbolBounds);
        s.capacity = alignUp(static_cast<size_t>(elements) * dtypeSize(s.storage));
        std::ranges::sort(live, {}, &Region::offset);
        size_t offset = 0;
        for (const Region& r : live) {
          if (r.offset >= offset + s.capacity) break;
          offset = std::max(offset, r.offset + r.size);
        }
        s.offset = offset;
        live.push_back({offset, s.capacity, std::max(lastUse[static_cast<size_t>(result)], i)});
        arenaSize = std::max(arenaSize, offset + s.capacity);
      }
    }
    arenaStorage.resize(arenaSize + kAlignment);
    auto address = reinterpret_cast<uintptr_t>(arenaStorage.data());
    arena = arenaStorage.data() + (alignUp(address) - address);
    summary.arenaBytes = static_cast<int64_t>(arenaSize);
  }

  // --- Running ---------------------------------------------------------------------------------

  void bindSymbols() {
    std::ranges::fill(bound, false);
    for (const SymbolSource& source : symbolSources) {
      const Slot& s = slots[static_cast<size_t>(inputSlots[source.input])];
      if (!s.data && s.rank == 0) fail("graph input '", s.value->name, "' is not bound");
      const int64_t value = s.shape[source.axis];
      const size_t symbol = static_cast<size_t>(source.symbol);
      if (bound[symbol] && symbolValues[symbol] != value)
        fail("graph input '", s.value->name, "': dimension ", source.axis, " is ", value, " but '", symbols[symbol], "' is ",
             symbolValues[symbol], " from another input");
      if (value > symbolBounds[symbol])
        fail("graph input '", s.value->name, "': '", symbols[symbol], "' = ", value, " exceeds the bound of ", symbolBounds[symbol],
             " the executor was planned for");
      symbolValues[symbol] = value;
      bound[symbol] = true;
    }
  }

  void shapeResults(const Step& step) {
    for (int result : step.results) {
      Slot& s = slots[static_cast<size_t>(result)];
      s.rank = s.dims.size();
      size_t elements = 1;
      for (size_t i = 0; i < s.rank; ++i) {
        s.shape[i] = s.dims[i].evaluate(symbolValues);
        if (s.shape[i] < 0) fail(step.op->describe(), ": dimension ", i, " evaluates to ", s.shape[i]);
        elements *= static_cast<size_t>(s.shape[i]);
      }
      if (s.kind == SlotKind::Arena) {
        if (elements * dtypeSize(s.storage) > s.capacity)
          fail(step.op->describe(), ": result needs ", elements * dtypeSize(s.storage), " bytes, more than the ", s.capacity, " planned");
        s.data = arena + s.offset;
      } else if (s.kind == SlotKind::View) {
        const Slot& base = slots[static_cast<size_t>(s.viewOf)];
        if (static_cast<int64_t>(elements) != base.numElements())
          fail(step.op->describe(), ": the planned shape has ", elements, " elements but its input has ", base.numElements());
        s.data = base.data;
      }
    }
  }

  Tensor tensorOf(int index) {
    const Slot& s = slots[static_cast<size_t>(index)];
    if (s.kind == SlotKind::Static) return s.staticTensor;
    return Tensor::view(s.storage, std::vector<int64_t>(s.shape.begin(), s.shape.begin() + static_cast<std::ptrdiff_t>(s.rank)), s.data, nullptr);
  }

  void runFallback(const Step& step) {
    const Op& op = *step.op;
    std::vector<Tensor> operands;
    for (int operand : step.operands) operands.push_back(operand >= 0 ? toCanonical(tensorOf(operand)) : Tensor());
    EvalContext ctx(op, std::move(operands));
    if (!op.def().evaluate) fail(op.describe(), ": op has no reference implementation");
    op.def().evaluate(ctx);
    for (size_t r = 0; r < step.results.size(); ++r) {
      Slot& s = slots[static_cast<size_t>(step.results[r])];
      const Tensor& out = ctx.outputs()[r];
      if (out.isNull() || out.dtype() != s.storage || out.rank() != s.rank ||
          !std::equal(out.shape().begin(), out.shape().end(), s.shape.begin()))
        fail(op.describe(), ": result ", r, " is ", out.isNull() ? "missing" : out.shapeStr(), ", not the planned shape");
      std::memcpy(s.data, out.bytes(), out.byteSize());
    }
  }

  void runStep(Step& step) {
    const Op& op = *step.op;
    auto in = [&](size_t i) -> Slot& { return slots[static_cast<size_t>(step.operands.at(i))]; };
    auto out = [&](size_t i) -> Slot& { return slots[static_cast<size_t>(step.results.at(i))]; };
    switch (step.kernel) {
      case Kernel::View:
        return;
      case Kernel::Gemm: {
        const Slot& a = in(0);
        Slot& c = out(0);
        const int64_t m = a.numElements() / step.weight->k();
        gemm.multiply(a.as<float>(), m, *step.weight, c.as<float>());
        if (step.alpha != 1.0f || step.bias >= 0) {
          const float* bias = step.bias >= 0 ? slots[static_cast<size_t>(step.bias)].as<float>() : nullptr;
          const bool scalarBias = step.bias >= 0 && slots[static_cast<size_t>(step.bias)].numElements() == 1;
          const int64_t n = step.weight->n();
          float* data = c.as<float>();
#pragma omp parallel for schedule(static) if (m * n >= (1 << 15))
          for (int64_t row = 0; row < m; ++row)
            for (int64_t j = 0; j < n; ++j) {
              float value = step.alpha * data[row * n + j];
              if (bias) value += step.beta * bias[scalarBias ? 0 : j];
              data[row * n + j] = value;
            }
        }
        return;
      }
      case Kernel::Embedding: {
        const Slot& indices = in(1);
        const Tensor& table = *step.rawTable;
        const auto axis = static_cast<size_t>(step.axis);
        gather({.data = table.bytes(), .dataType = table.dtype(), .indices = indices.as<int64_t>(), .numIndices = indices.numElements(),
                .out = out(0).data, .outType = DType::F32, .outer = product(table.shape(), 0, axis), .axisSize = table.shape()[axis],
                .inner = product(table.shape(), axis + 1, table.rank()), .what = "token id"});
        return;
      }
      case Kernel::Gather: {
        const Slot& data = in(0);
        const Slot& indices = in(1);
        const auto axis = static_cast<size_t>(step.axis);
        gather({.data = data.data, .dataType = data.storage, .indices = indices.as<int64_t>(), .numIndices = indices.numElements(),
                .out = out(0).data, .outType = out(0).storage, .outer = product(data.shapeSpan(), 0, axis), .axisSize = data.shape[axis],
                .inner = product(data.shapeSpan(), axis + 1, data.rank), .what = "index"});
        return;
      }
      case Kernel::Norm: {
        const Slot& x = in(0);
        const int64_t hidden = x.rank ? x.shape[x.rank - 1] : 1;
        normalize({.x = x.as<float>(),
                   .residual = step.residualOperand >= 0 ? in(static_cast<size_t>(step.residualOperand)).as<float>() : nullptr,
                   .weight = in(1).as<float>(),
                   .bias = step.biasOperand >= 0 ? in(static_cast<size_t>(step.biasOperand)).as<float>() : nullptr,
                   .out = out(0).as<float>(),
                   .sumOut = step.results.size() > 1 ? out(1).as<float>() : nullptr,
                   .rows = hidden ? x.numElements() / hidden : 0,
                   .hidden = hidden,
                   .epsilon = op.floatAttr("epsilon", 1e-5),
                   .subtractMean = step.subtractMean});
        return;
      }
      case Kernel::Activation:
        activate(in(0).as<float>(), out(0).as<float>(), out(0).numElements(), step.activation);
        return;
      case Kernel::GatedActivation:
        gatedActivate(in(0).as<float>(), in(1).as<float>(), out(0).as<float>(), out(0).numElements(), step.activation);
        return;
      case Kernel::Rope: {
        const Slot& x = in(0);
        const Slot& positions = in(1);
        const Slot& cos = in(2);
        if (x.rank != 4 || positions.rank != 2 || cos.rank != 2) fail(op.describe(), ": unexpected ranks");
        rope({.x = x.as<float>(), .out = out(0).as<float>(), .positions = positions.as<int64_t>(), .cosTable = cos.as<float>(),
              .sinTable = in(3).as<float>(), .batch = x.shape[0], .heads = x.shape[1], .seq = x.shape[2], .headDim = x.shape[3],
              .positionsBatch = positions.shape[0], .maxPositions = cos.shape[0], .rotaryDim = op.intAttr("rotary_dim", 0),
              .interleaved = op.intAttr("interleaved", 0) != 0});
        return;
      }
      case Kernel::OnnxRotary: {
        const Slot& x = in(0);
        const Slot& cos = in(1);
        const Slot& positions = in(3);
        const bool fourD = x.rank == 4;
        const int64_t heads = fourD ? x.shape[1] : op.intAttr("num_heads", 0);
        const int64_t seq = fourD ? x.shape[2] : x.shape[1];
        const int64_t headDim = fourD ? x.shape[3] : x.shape[2] / heads;
        if (cos.rank != 2 || positions.rank != 2) fail(op.describe(), ": unexpected ranks");
        rope({.x = x.as<float>(), .out = out(0).as<float>(), .positions = positions.as<int64_t>(), .cosTable = cos.as<float>(),
              .sinTable = in(2).as<float>(), .batch = x.shape[0], .heads = heads, .seq = seq, .headDim = headDim,
              .positionsBatch = positions.shape[0], .maxPositions = cos.shape[0], .rotaryDim = op.intAttr("rotary_embedding_dim", 0),
              .interleaved = op.intAttr("interleaved", 0) != 0, .tokenMajor = !fourD});
        return;
      }
      case Kernel::Slice: {
        const Slot& x = in(0);
        for (size_t i = 0; i < x.rank; ++i) {
          step.starts[i] = 0;
          step.steps[i] = 1;
        }
        for (size_t i = 0; i < step.sliceAxes.size(); ++i) {
          const auto axis = static_cast<size_t>(step.sliceAxes[i]);
          const int64_t dim = x.shape[axis], stride = step.sliceSteps[i];
          int64_t start = step.sliceStarts[i];
          if (start < 0) start += dim;
          start = stride > 0 ? std::clamp<int64_t>(start, 0, dim) : std::clamp<int64_t>(start, 0, std::max<int64_t>(dim - 1, 0));
          step.starts[axis] = start;
          step.steps[axis] = stride;
        }
        sliceCopy(x.data, x.shapeSpan(), out(0).data, out(0).shapeSpan(), step.starts, step.steps, dtypeSize(x.storage));
        return;
      }
      case Kernel::Binary:
        binary(step.binaryOp, out(0).storage, in(0).data, in(0).shapeSpan(), in(1).data, in(1).shapeSpan(), out(0).data, out(0).shapeSpan());
        return;
      case Kernel::Permute:
        permute(in(0).data, out(0).data, dtypeSize(in(0).storage), in(0).shapeSpan(), step.perm);
        return;
      case Kernel::Concat: {
        Slot& o = out(0);
        const auto axis = static_cast<size_t>(step.axis);
        const int64_t outer = product(o.shapeSpan(), 0, axis), inner = product(o.shapeSpan(), axis + 1, o.rank);
        int64_t offset = 0;
        for (size_t i = 0; i < step.operands.size(); ++i) {
          const Slot& part = in(i);
          copyAxisBlock(part.data, part.shape[axis], 0, o.data, o.shape[axis], offset, part.shape[axis], outer, inner, dtypeSize(o.storage));
          offset += part.shape[axis];
        }
        return;
      }
      case Kernel::Split: {
        const Slot& x = in(0);
        const auto axis = static_cast<size_t>(step.axis);
        const int64_t outer = product(x.shapeSpan(), 0, axis), inner = product(x.shapeSpan(), axis + 1, x.rank);
        int64_t offset = 0;
        for (size_t r = 0; r < step.results.size(); ++r) {
          Slot& part = out(r);
          if (offset + part.shape[axis] > x.shape[axis]) fail(op.describe(), ": the parts exceed the input's axis ", axis);
          copyAxisBlock(x.data, x.shape[axis], offset, part.data, part.shape[axis], 0, part.shape[axis], outer, inner, dtypeSize(x.storage));
          offset += part.shape[axis];
        }
        return;
      }
      case Kernel::KvCacheWrite: {
        const Slot& keyCache = in(2);
        if (keyCache.rank != 4 || in(0).rank != 3) fail(op.describe(), ": unexpected ranks");
        kvCacheWrite({.key = in(0).as<float>(), .value = in(1).as<float>(), .keyCache = keyCache.data, .valueCache = in(3).data,
                      .cacheType = keyCache.storage, .slots = in(4).as<int64_t>(), .numTokens = in(0).shape[0], .numBlocks = keyCache.shape[0],
                      .kvHeads = keyCache.shape[1], .blockSize = keyCache.shape[2], .headDim = keyCache.shape[3]});
        return;
      }
      case Kernel::PagedAttention: {
        const Slot& query = in(0);
        const Slot& keyCache = in(1);
        const Slot& tables = in(3);
        pagedAttention({.query = query.as<float>(), .output = out(0).as<float>(), .keyCache = keyCache.data, .valueCache = in(2).data,
                        .cacheType = keyCache.storage, .blockTables = tables.as<int64_t>(), .contextLens = in(4).as<int64_t>(),
                        .queryStartLoc = in(5).as<int64_t>(), .numTokens = query.shape[0], .numSeqs = in(4).shape[0],
                        .maxBlocks = tables.shape[1], .numBlocks = keyCache.shape[0], .heads = query.shape[1], .kvHeads = keyCache.shape[1],
                        .blockSize = keyCache.shape[2], .headDim = query.shape[2],
                        .scale = static_cast<float>(op.floatAttr("scale", 1.0 / std::sqrt(static_cast<double>(query.shape[2])))),
                        .softcap = static_cast<float>(op.floatAttr("softcap", 0.0)), .slidingWindow = op.intAttr("sliding_window", -1)});
        return;
      }
      case Kernel::Fallback:
        runFallback(step);
        return;
    }
  }
};

CpuExecutor::CpuExecutor(const Graph& graph, const std::map<std::string, int64_t>& symbolBounds) : plan_(std::make_unique<Plan>(graph)) {
  plan_->build(symbolBounds);
}

CpuExecutor::~CpuExecutor() = default;

bool CpuExecutor::hasInput(std::string_view name) const {
  return std::ranges::any_of(plan_->graph.inputs, [&](const Value* v) { return v->name == name; });
}

size_t CpuExecutor::inputIndex(std::string_view name) const {
  for (size_t i = 0; i < plan_->graph.inputs.size(); ++i)
    if (plan_->graph.inputs[i]->name == name) return i;
  fail("the compiled graph has no input '", name, "'");
}

size_t CpuExecutor::outputIndex(std::string_view name) const {
  for (size_t i = 0; i < plan_->graph.outputs.size(); ++i)
    if (plan_->graph.outputs[i]->name == name) return i;
  fail("the compiled graph has no output '", name, "'");
}

void CpuExecutor::bindInput(size_t index, void* data, std::span<const int64_t> shape) {
  Slot& s = plan_->slots[static_cast<size_t>(plan_->inputSlots.at(index))];
  const TensorType& declared = s.value->type;
  if (shape.size() != declared.rank())
    fail("graph input '", s.value->name, "': rank ", shape.size(), " but the graph declares ", declared.str());
  for (size_t i = 0; i < shape.size(); ++i)
    if (auto c = declared.dim(i).constant(); c && *c != shape[i])
      fail("graph input '", s.value->name, "': dimension ", i, " must be ", *c, ", got ", shape[i]);
  s.data = static_cast<std::byte*>(data);
  s.rank = shape.size();
  std::copy(shape.begin(), shape.end(), s.shape.begin());
}

void CpuExecutor::run() {
  Plan& p = *plan_;
  p.bindSymbols();
  for (Step& step : p.steps) {
    p.shapeResults(step);
    if (!p.profiling) {
      p.runStep(step);
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    p.runStep(step);
    std::string key = step.op->opName() + (step.kernel == Kernel::Fallback ? " (reference)" : "");
    p.profile[key] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
}

const void* CpuExecutor::outputData(size_t index) const { return plan_->slots[static_cast<size_t>(plan_->outputSlots.at(index))].data; }

std::span<const int64_t> CpuExecutor::outputShape(size_t index) const {
  return plan_->slots[static_cast<size_t>(plan_->outputSlots.at(index))].shapeSpan();
}

const ExecutorPlanSummary& CpuExecutor::planSummary() const { return plan_->summary; }

void CpuExecutor::setProfiling(bool on) { plan_->profiling = on; }

std::map<std::string, double> CpuExecutor::profileSeconds() const { return plan_->profile; }

}  // namespace pagedc::cpu
