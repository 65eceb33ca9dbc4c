// The CUDA executor: planning (kernels, static uploads, arena layout) and the step loop.
#include "runtime/cuda/CudaExecutor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "ir/Error.h"
#include "ir/Interpreter.h"
#include "ir/OpDef.h"
#include "runtime/CompiledDim.h"
#include "templates/kernel_params.h"

namespace pagedc::cuda {

namespace {

constexpr size_t kAlignment = 256;  // cuMemAlloc's alignment; cuBLASLt and the 16-byte vector loads need far less
constexpr size_t kMaxRank = static_cast<size_t>(pagedc::kMaxCopyRank);

size_t alignUp(size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

enum class SlotKind { Unused, Input, Static, Arena, View, Host };  // Host: computed on the host each step, uploaded

struct Slot {
  const Value* value = nullptr;
  SlotKind kind = SlotKind::Unused;
  DType storage = DType::F32;
  std::vector<CompiledDim> dims;
  size_t offset = 0, capacity = 0;
  int viewOf = -1;
  // Per step (inputs: per binding).
  CUdeviceptr data = 0;
  const void* host = nullptr;  // Input: the step's data on the host, when the runner has it
  Tensor hostValue;            // Host: this step's value
  std::array<int64_t, kMaxRank> shape{};
  size_t rank = 0;

  std::span<const int64_t> shapeSpan() const { return {shape.data(), rank}; }
  int64_t numElements() const {
    int64_t n = 1;
    for (size_t i = 0; i < rank; ++i) n *= shape[i];
    return n;
  }
  // Dense row-major strides in elements.
  std::array<int64_t, kMaxRank> strides() const {
    std::array<int64_t, kMaxRank> s{};
    int64_t stride = 1;
    for (size_t i = rank; i-- > 0;) {
      s[i] = stride;
      stride *= shape[i];
    }
    return s;
  }
};

unsigned blocksFor(int64_t count, int64_t threads) {
  // The tensor kernels are grid-stride loops: a capped grid covers any count.
  const int64_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, int64_t{1} << 20));
}

void* ptr(CUdeviceptr p) { return reinterpret_cast<void*>(static_cast<uintptr_t>(p)); }
template <class T>
T* typed(CUdeviceptr p) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(p));
}

// A launchable kernel: the function and its block size.
struct Launchable {
  CUfunction function = nullptr;
  unsigned threads = 0;
  int64_t queryTile = 0;  // prefill
};

}  // namespace

struct CudaExecutor::Plan {
  const Graph& graph;
  const CudaDevice& device;
  CudaKernelCache& kernels;
  GemmLibrary& gemm;
  CudaKernelChoices choices;
  CudaGraphPlan graphPlan;
  DType t = DType::F32;

  struct Step {
    const CudaStep* planned = nullptr;
    const Op* op = nullptr;
    std::vector<int> operands;  // slot per operand (-1: omitted)
    std::vector<int> results;
    Launchable kernel;  // the step's kernel (decode one-pass for attention)
    // Gemm.
    CUdeviceptr weight = 0, bias = 0;
    int64_t k = 0, n = 0;
    bool transB = false;
    // Transpose / Slice / Concat / Split / Expand.
    std::vector<int64_t> perm;
    int64_t axis = 0;
    std::vector<int64_t> sliceStarts, sliceAxes, sliceSteps;
    // Attention.
    Launchable decodeSplit, reduce, prefill;
    int64_t slidingWindow = -1;
    float scale = 1, softcap = 0;
    // Rope / RotaryEmbedding: static tables (f32).
    CUdeviceptr cosTable = 0, sinTable = 0;
    int64_t maxPositions = 0;
  };

  std::vector<Slot> slots;
  std::unordered_map<const Value*, int> slotOf;
  std::vector<std::string> symbols;
  std::vector<int64_t> symbolBounds, symbolValues;
  std::vector<char> bound;
  struct SymbolSource {
    size_t input, axis;
    int symbol;
  };
  std::vector<SymbolSource> symbolSources;
  std::vector<Step> steps;
  std::vector<int> inputSlots, outputSlots;
  DeviceBuffer arena;
  std::vector<DeviceBuffer> staticBuffers;
  std::map<std::pair<const Value*, DType>, CUdeviceptr> staticDevice;
  std::map<const Value*, Tensor> staticHost;  // canonical contents while loading
  std::map<const Value*, Tensor> hostStatics;  // static operands of host steps, kept
  // Host values: computed each step, staged in pinned memory, one upload to fixed device addresses.
  std::vector<size_t> hostSteps;  // indices into steps
  PinnedBuffer hostValuesStaging;
  DeviceBuffer hostValuesDevice;
  size_t hostValuesBytes = 0;
  // Floating outputs cast to f32 when T is not f32: slot -> buffer.
  struct OutputCast {
    int slot;
    DeviceBuffer buffer;
    Launchable kernel;
  };
  std::map<size_t, OutputCast> outputCasts;  // by output index
  // Split-K scratch.
  DeviceBuffer partialOut, partialMax, partialSum;
  int64_t scratchRowsCapacity = 0;  // (seq, head, partition) triples it holds
  CudaExecutorSummary summary;

  Plan(const Graph& g, const CudaDevice& d, CudaKernelCache& k, GemmLibrary& m, const CudaKernelChoices& c)
      : graph(g), device(d), kernels(k), gemm(m), choices(c) {}

  Slot& slot(int index) { return slots[static_cast<size_t>(index)]; }
  int slotIndex(const Value* v) const { return v ? slotOf.at(v) : -1; }

  int symbolIndex(const std::string& name) { return pagedc::symbolIndex(symbols, name); }

  std::optional<CompiledDim> compileDim(const Dim& dim) const { return pagedc::compileDim(dim, symbols); }

  // --- Static values ----------------------------------------------------------------------------

  // Canonical (f32 / i64 / bool) host contents of a static value, evaluated with the reference ops.
  const Tensor& staticValue(const Value* v) {
    if (auto it = staticHost.find(v); it != staticHost.end()) return it->second;
    const Op* op = v->producer;
    if (!op) fail("static value %", v->name, " has no producer");
    if (op->opName() == "weight") {
      const std::string name = op->stringAttr("name", "");
      const Tensor* data = graph.weights ? graph.weights->find(name) : nullptr;
      if (!data) fail(op->describe(), ": weight '", name, "' has no data in the weight store");
      return staticHost[v] = toCanonical(*data);
    }
    std::vector<Tensor> operands;
    for (const Value* operand : op->operands) operands.push_back(operand ? staticValue(operand) : Tensor());
    EvalContext ctx(*op, std::move(operands));
    if (!op->def().evaluate) fail(op->describe(), ": op has no reference implementation to compute it at load");
    op->def().evaluate(ctx);
    for (size_t r = 0; r < op->results.size(); ++r) staticHost[op->results[r]] = ctx.outputs()[r];
    return staticHost.at(v);
  }

  CUdeviceptr upload(const Tensor& tensor, std::string_view what) {
    DeviceBuffer buffer(device, std::max<size_t>(tensor.byteSize(), 1), what);
    const CudaDriver& d = device.driver();
    if (tensor.byteSize() > 0) {
      // Load time only: a synchronous copy keeps the host tensor's lifetime simple.
      d.check(d.cuMemcpyHtoDAsync(buffer.get(), tensor.bytes(), tensor.byteSize(), nullptr), "cuMemcpyHtoDAsync", what);
      d.check(d.cuStreamSynchronize(nullptr), "cuStreamSynchronize", what);
    }
    summary.staticBytes += static_cast<int64_t>(tensor.byteSize());
    const CUdeviceptr p = buffer.get();
    staticBuffers.push_back(std::move(buffer));
    return p;
  }

  // A static value on the device in `dtype` (T for floats a kernel reads, f32 for rope tables,
  // i64 for integers), uploaded once per dtype.
  CUdeviceptr staticOnDevice(const Value* v, DType dtype) {
    if (auto it = staticDevice.find({v, dtype}); it != staticDevice.end()) return it->second;
    const Tensor& canonical = staticValue(v);
    const Tensor converted = canonical.dtype() == dtype ? canonical : canonical.convertTo(dtype);
    const CUdeviceptr p = upload(converted, "static value %" + v->name);
    ++summary.numStatic;
    return staticDevice[{v, dtype}] = p;
  }

  // --- Planning ---------------------------------------------------------------------------------

  Launchable load(const KernelKey& key) {
    Launchable l;
    l.function = kernels.function(key);
    l.threads = static_cast<unsigned>(key.intParam("threads"));
    if (key.kernel == "paged_attention_prefill") l.queryTile = key.intParam("query_tile");
    return l;
  }

  const KernelKey* findKey(const CudaStep& step, std::string_view kernel, std::optional<int64_t> partition = std::nullopt) const {
    for (const KernelKey& key : step.kernels)
      if (key.kernel == kernel && (!partition || key.intParam("partition") == *partition)) return &key;
    return nullptr;
  }

  DType storageOf(const Value* v) const {
    if (isFloatingPoint(v->type.dtype)) return t;
    if (v->type.dtype == DType::Bool) return DType::Bool;
    return DType::I64;
  }

  void build(const std::map<std::string, int64_t>& bounds) {
    graphPlan = planCudaGraph(graph, choices);
    t = graphPlan.activation;

    for (size_t i = 0; i < graph.inputs.size(); ++i) {
      const Value* input = graph.inputs[i];
      if (!input->type.shape) fail("graph input '", input->name, "' has no declared shape; the CUDA backend needs one");
      for (size_t axis = 0; axis < input->type.rank(); ++axis)
        if (auto symbol = input->type.dim(axis).singleSymbol()) symbolSources.push_back({i, axis, symbolIndex(*symbol)});
    }
    symbolBounds.assign(symbols.size(), 0);
    symbolValues.assign(symbols.size(), 0);
    bound.assign(symbols.size(), false);
    for (size_t i = 0; i < symbols.size(); ++i) {
      auto it = bounds.find(symbols[i]);
      if (it == bounds.end()) fail("the CUDA backend needs a bound for input symbol '", symbols[i], "'");
      symbolBounds[i] = it->second;
    }

    auto addSlot = [&](const Value* v) {
      slotOf[v] = static_cast<int>(slots.size());
      Slot s;
      s.value = v;
      s.storage = storageOf(v);
      slots.push_back(std::move(s));
    };
    for (const Value* input : graph.inputs) {
      addSlot(input);
      Slot& s = slots.back();
      s.kind = SlotKind::Input;
      if (isFloatingPoint(input->type.dtype)) {
        if (input->type.rank() != 4) fail("graph input '", input->name, "' is floating point but not a KV cache; the CUDA backend has no use for it");
        s.storage = input->type.dtype;  // a KV cache keeps its dtype (C)
      }
      if (s.rank > kMaxRank) fail("graph input '", input->name, "' has rank above ", kMaxRank);
      for (const Dim& dim : *input->type.shape) {
        auto compiled = compileDim(dim);
        if (!compiled) fail("graph input '", input->name, "' has a dimension the inputs do not determine");
        s.dims.push_back(std::move(*compiled));
      }
      inputSlots.push_back(static_cast<int>(slots.size() - 1));
    }
    for (const auto& op : graph.ops())
      for (const Value* r : op->results) addSlot(r);
    for (const Value* v : graphPlan.staticValues) slot(slotOf.at(v)).kind = SlotKind::Static;

    // Steps: operand and result slots, static uploads, kernels.
    for (const CudaStep& planned : graphPlan.steps) {
      Step step;
      step.planned = &planned;
      step.op = planned.op;
      for (const Value* v : planned.op->operands) step.operands.push_back(slotIndex(v));
      for (const Value* r : planned.op->results) step.results.push_back(slotOf.at(r));
      prepare(step);
      steps.push_back(std::move(step));
    }
    for (const Value* output : graph.outputs) outputSlots.push_back(slotOf.at(output));

    // Result kinds, shapes, and the arena layout by liveness.
    std::vector<size_t> lastUse(slots.size(), 0);
    for (size_t i = 0; i < steps.size(); ++i)
      for (size_t operand : dataOperands(*steps[i].planned))
        if (operand < steps[i].operands.size() && steps[i].operands[operand] >= 0) lastUse[static_cast<size_t>(steps[i].operands[operand])] = i;
    for (int output : outputSlots) lastUse[static_cast<size_t>(output)] = steps.size();
    for (Step& step : steps) {
      for (size_t r = 0; r < step.results.size(); ++r) {
        Slot& s = slot(step.results[r]);
        for (const Dim& dim : *s.value->type.shape) {
          auto compiled = compileDim(dim);
          if (!compiled)
            fail(step.op->describe(), ": result %", s.value->name, " has shape ", s.value->type.str(),
                 ", which the graph inputs do not determine; the CUDA backend needs shapes known from the inputs");
          s.dims.push_back(std::move(*compiled));
        }
        if (step.planned->kind == CudaStepKind::View) {
          s.kind = SlotKind::View;
          s.viewOf = step.operands[0];
          s.storage = slot(s.viewOf).storage;
        } else if (step.planned->kind == CudaStepKind::KvCacheWrite) {
          s.kind = SlotKind::View;
          s.viewOf = step.operands[2 + r];
          s.storage = slot(s.viewOf).storage;
        } else if (step.planned->kind == CudaStepKind::HostCompute) {
          s.kind = SlotKind::Host;
          s.storage = canonicalDType(s.value->type.dtype);
        } else {
          s.kind = SlotKind::Arena;
        }
      }
      if (step.planned->kind == CudaStepKind::View) ++summary.numViews;
      else if (step.planned->kind != CudaStepKind::HostCompute) ++summary.numKernelSteps;
      if (step.planned->kind == CudaStepKind::Gemm) ++summary.numGemms;
    }
    for (size_t i = slots.size(); i-- > 0;) {
      if (slots[i].kind != SlotKind::View) continue;
      int base = slots[i].viewOf;
      while (slot(base).kind == SlotKind::View) base = slot(base).viewOf;
      lastUse[static_cast<size_t>(base)] = std::max(lastUse[static_cast<size_t>(base)], lastUse[i]);
    }
    struct Region {
      size_t offset, size, freeAfter;
    };
    std::vector<Region> live;
    size_t arenaSize = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
      std::erase_if(live, [&](const Region& r) { return r.freeAfter < i; });
      for (int result : steps[i].results) {
        Slot& s = slot(result);
        if (s.kind != SlotKind::Arena) continue;
        int64_t elements = 1;
        for (const CompiledDim& dim : s.dims) elements *= dim.upperBound(symbolBounds);
        s.capacity = alignUp(std::max<size_t>(static_cast<size_t>(elements) * dtypeSize(s.storage), 1));
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
    arena = DeviceBuffer(device, arenaSize, "the activation arena");
    summary.arenaBytes = static_cast<int64_t>(arenaSize);
    for (Slot& s : slots)
      if (s.kind == SlotKind::Arena) s.data = arena.get() + s.offset;

    // Host values: a region each (at the bounds) in one pinned buffer and its device copy.
    for (size_t i = 0; i < steps.size(); ++i) {
      if (steps[i].planned->kind != CudaStepKind::HostCompute) continue;
      hostSteps.push_back(i);
      for (int result : steps[i].results) {
        Slot& s = slot(result);
        int64_t elements = 1;
        for (const CompiledDim& dim : s.dims) elements *= dim.upperBound(symbolBounds);
        s.offset = hostValuesBytes;
        s.capacity = alignUp(std::max<size_t>(static_cast<size_t>(elements) * dtypeSize(s.storage), 1));
        hostValuesBytes += s.capacity;
      }
    }
    if (hostValuesBytes > 0) {
      hostValuesStaging = PinnedBuffer(device, hostValuesBytes, "the host-computed integer values");
      hostValuesDevice = DeviceBuffer(device, hostValuesBytes, "the host-computed integer values");
      for (size_t i : hostSteps)
        for (int result : steps[i].results) slot(result).data = hostValuesDevice.get() + slot(result).offset;
    }

    // Floating outputs come back as f32.
    for (size_t o = 0; o < outputSlots.size(); ++o) {
      Slot& s = slot(outputSlots[o]);
      if (!isFloatingPoint(s.value->type.dtype) || s.storage == DType::F32 || s.value->type.rank() == 4) continue;
      OutputCast cast;
      cast.slot = outputSlots[o];
      int64_t elements = 1;
      for (const CompiledDim& dim : s.dims) elements *= dim.upperBound(symbolBounds);
      cast.buffer = DeviceBuffer(device, alignUp(static_cast<size_t>(elements) * sizeof(float)), "the f32 copy of output " + s.value->name);
      const KernelKey key = makeCastKey(s.storage);
      cast.kernel = load(key);
      outputCasts.emplace(o, std::move(cast));
    }
    for (const KernelKey& key : graphPlan.runnerKernels) (void)kernels.function(key);
    staticHost.clear();  // uploaded; the host copies go
  }

  KernelKey makeCastKey(DType from) const {
    for (const KernelKey& key : graphPlan.runnerKernels)
      if (key.kernel == "cast" && key.param("in") == dtypeName(from) && key.param("out") == "f32") return key;
    fail("no cast kernel from ", dtypeName(from), " to f32 in the plan");
  }

  // Load-time decisions per step: kernels, static operands on the device, op parameters.
  void prepare(Step& step) {
    const CudaStep& planned = *step.planned;
    const Op& op = *step.op;
    for (const KernelKey& key : planned.kernels) (void)kernels.function(key);  // load now: never during a capture
    auto operandType = [&](size_t i) -> const TensorType& { return op.operand(i)->type; };
    // Static data operands read by the kernel go to the device in the storage the kernel reads.
    auto materialise = [&](size_t i, DType dtype) {
      if (i >= step.operands.size() || step.operands[i] < 0) return;
      Slot& s = slot(step.operands[i]);
      if (s.kind != SlotKind::Static) return;
      const Tensor& value = staticValue(s.value);
      s.data = staticOnDevice(s.value, dtype);
      s.rank = value.rank();
      if (s.rank > kMaxRank) fail(op.describe(), ": static operand %", s.value->name, " has rank above ", kMaxRank);
      std::copy(value.shape().begin(), value.shape().end(), s.shape.begin());
    };
    switch (planned.kind) {
      case CudaStepKind::View:
        // A view of a static value (a reshape by a run-time shape) needs the value on the device.
        materialise(0, storageOf(op.operand(0)));
        return;
      case CudaStepKind::ZeroFill:
        return;
      case CudaStepKind::HostCompute:
        for (const Value* v : op.operands)
          if (v && slot(slotOf.at(v)).kind == SlotKind::Static) hostStatics[v] = staticValue(v);
        return;
      case CudaStepKind::Embedding:
      case CudaStepKind::GatherRows:
        step.kernel = load(planned.kernels.at(0));
        step.axis = normalizeAxis(op.intAttr("axis", 0), static_cast<int64_t>(operandType(0).rank()), op);
        materialise(0, t);
        materialise(1, DType::I64);
        return;
      case CudaStepKind::Gemm: {
        const bool isGemm = op.opName() == "Gemm";
        step.transB = isGemm && op.intAttr("transB", 0) != 0;
        Tensor w = staticValue(op.operand(1));
        if (w.rank() != 2) fail(op.describe(), ": the weight is not a matrix");
        const double alpha = isGemm ? op.floatAttr("alpha", 1.0) : 1.0;
        const double beta = isGemm ? op.floatAttr("beta", 1.0) : 1.0;
        step.k = step.transB ? w.shape()[1] : w.shape()[0];
        step.n = step.transB ? w.shape()[0] : w.shape()[1];
        const auto& aType = operandType(0);
        if (auto lastDim = aType.dim(aType.rank() - 1).constant(); !lastDim || *lastDim != step.k)
          fail(op.describe(), ": its input's last dimension is not the weight's ", step.k);
        if (alpha != 1.0) {
          // Folded into the weight at load: alpha * (a x w) == a x (alpha * w).
          Tensor scaled = w.convertTo(DType::F32);
          float* data = scaled.mutableData<float>();
          for (int64_t i = 0; i < scaled.numElements(); ++i) data[i] = static_cast<float>(alpha * data[i]);
          step.weight = upload(scaled.convertTo(t), "the weight of " + op.describe());
        } else {
          step.weight = staticOnDevice(op.operand(1), t);
        }
        if (isGemm && op.hasOperand(2)) {
          const Tensor& bias = staticValue(op.operand(2));
          if (bias.numElements() != step.n && bias.numElements() != 1)
            fail("the CUDA backend cannot run ", op.describe(), ": its bias has ", bias.numElements(), " elements, not ", step.n,
                 " or 1 (run this model with --device cpu)");
          Tensor row = Tensor::zeros(DType::F32, {step.n});
          float* data = row.mutableData<float>();
          for (int64_t j = 0; j < step.n; ++j) data[j] = static_cast<float>(beta * bias.elementAsDouble(bias.numElements() == 1 ? 0 : j));
          step.bias = upload(row.convertTo(t), "the bias of " + op.describe());
        }
        return;
      }
      case CudaStepKind::Norm:
        step.kernel = load(planned.kernels.at(0));
        for (size_t i = 0; i < op.operands.size(); ++i) materialise(i, t);
        return;
      case CudaStepKind::Rope:
      case CudaStepKind::OnnxRotary: {
        step.kernel = load(planned.kernels.at(0));
        const bool onnx = planned.kind == CudaStepKind::OnnxRotary;
        const Value* cos = op.operand(onnx ? 1 : 2);
        const Value* sin = op.operand(onnx ? 2 : 3);
        const Tensor& cosTable = staticValue(cos);
        if (cosTable.rank() != 2 || staticValue(sin).shape() != cosTable.shape())
          fail(op.describe(), ": its cos/sin tables must both be [positions, rotary_dim / 2]");
        step.maxPositions = cosTable.shape()[0];
        step.cosTable = staticOnDevice(cos, DType::F32);
        step.sinTable = staticOnDevice(sin, DType::F32);
        materialise(onnx ? 3 : 1, DType::I64);
        materialise(0, t);
        return;
      }
      case CudaStepKind::Activation:
      case CudaStepKind::Binary:
        step.kernel = load(planned.kernels.at(0));
        for (size_t i = 0; i < op.operands.size(); ++i) materialise(i, t);
        return;
      case CudaStepKind::Transpose: {
        step.kernel = load(planned.kernels.at(0));
        const auto rank = static_cast<int64_t>(operandType(0).rank());
        std::vector<int64_t> reversed;
        for (int64_t i = rank - 1; i >= 0; --i) reversed.push_back(i);
        step.perm = op.intsAttr("perm", reversed);
        if (static_cast<int64_t>(step.perm.size()) != rank) fail(op.describe(), ": perm has ", step.perm.size(), " entries for rank ", rank);
        for (int64_t& p : step.perm) p = normalizeAxis(p, rank, op, "perm");
        materialise(0, t);
        return;
      }
      case CudaStepKind::Slice: {
        step.kernel = load(planned.kernels.at(0));
        auto ints = [&](size_t i) { return op.hasOperand(i) ? staticValue(op.operand(i)).toInt64Vector() : std::vector<int64_t>{}; };
        step.sliceStarts = ints(1);
        std::vector<int64_t> ends = ints(2);
        step.sliceAxes = ints(3);
        step.sliceSteps = ints(4);
        const auto rank = static_cast<int64_t>(operandType(0).rank());
        if (step.sliceAxes.empty())
          for (int64_t i = 0; i < static_cast<int64_t>(step.sliceStarts.size()); ++i) step.sliceAxes.push_back(i);
        if (step.sliceSteps.empty()) step.sliceSteps.assign(step.sliceStarts.size(), 1);
        if (step.sliceStarts.size() != step.sliceAxes.size() || step.sliceSteps.size() != step.sliceAxes.size() || ends.size() != step.sliceAxes.size())
          fail(op.describe(), ": starts, ends, axes and steps differ in length");
        for (int64_t& axis : step.sliceAxes) axis = normalizeAxis(axis, rank, op, "axes");
        for (int64_t s : step.sliceSteps)
          if (s == 0) fail(op.describe(), ": a slice step is 0");
        materialise(0, t);
        return;
      }
      case CudaStepKind::Concat:
      case CudaStepKind::Split:
      case CudaStepKind::Expand: {
        step.kernel = load(planned.kernels.at(0));
        const auto rank = static_cast<int64_t>(op.result(0)->type.rank());
        if (planned.kind != CudaStepKind::Expand) step.axis = normalizeAxis(op.intAttr("axis", 0), rank, op);
        for (size_t i = 0; i < op.operands.size(); ++i)
          if (planned.kind == CudaStepKind::Concat || i == 0) materialise(i, t);
        return;
      }
      case CudaStepKind::KvCacheWrite:
        step.kernel = load(planned.kernels.at(0));
        materialise(0, t);
        materialise(1, t);
        materialise(4, DType::I64);
        return;
      case CudaStepKind::PagedAttention: {
        const KernelKey* onePass = findKey(planned, "paged_attention_decode", 0);
        if (!onePass) fail(op.describe(), ": no one-pass decode kernel in the plan");
        step.kernel = load(*onePass);
        if (choices.partitionSize > 0) {
          step.decodeSplit = load(*findKey(planned, "paged_attention_decode", choices.partitionSize));
          step.reduce = load(*findKey(planned, "paged_attention_reduce"));
        }
        step.prefill = load(*findKey(planned, "paged_attention_prefill"));
        const int64_t headDim = *operandType(0).dim(2).constant();
        step.scale = static_cast<float>(op.floatAttr("scale", 1.0 / std::sqrt(static_cast<double>(headDim))));
        step.softcap = static_cast<float>(op.floatAttr("softcap", 0.0));
        step.slidingWindow = op.intAttr("sliding_window", -1);
        for (size_t i = 3; i < 6; ++i) materialise(i, DType::I64);
        materialise(0, t);
        ensureScratch(op);
        return;
      }
    }
  }

  // The split-K scratch for the largest step: every sequence a decode sequence of the longest context.
  void ensureScratch(const Op& op) {
    if (choices.partitionSize <= 0) return;
    const auto find = [&](const char* name) -> int64_t {
      auto it = std::ranges::find(symbols, name);
      return it == symbols.end() ? 0 : symbolBounds[static_cast<size_t>(it - symbols.begin())];
    };
    const int64_t seqs = find("num_seqs");
    const int64_t blockSize = *op.operand(1)->type.dim(2).constant();
    const int64_t maxContext = find("max_blocks") * blockSize;
    const int64_t heads = *op.operand(0)->type.dim(1).constant();
    const int64_t headDim = *op.operand(0)->type.dim(2).constant();
    const int64_t partitions = std::max<int64_t>(1, (maxContext + choices.partitionSize - 1) / choices.partitionSize);
    const int64_t rows = seqs * heads * partitions;
    if (rows <= scratchRowsCapacity && partialOut.size() >= static_cast<size_t>(rows * headDim) * sizeof(float)) return;
    partialOut = DeviceBuffer(device, static_cast<size_t>(rows * headDim) * sizeof(float), "the split-K attention scratch");
    partialMax = DeviceBuffer(device, static_cast<size_t>(rows) * sizeof(float), "the split-K attention scratch");
    partialSum = DeviceBuffer(device, static_cast<size_t>(rows) * sizeof(float), "the split-K attention scratch");
    scratchRowsCapacity = rows;
    summary.scratchBytes = static_cast<int64_t>(partialOut.size() + partialMax.size() + partialSum.size());
  }

  // --- Running ----------------------------------------------------------------------------------

  void bindSymbols() {
    std::ranges::fill(bound, false);
    for (const SymbolSource& source : symbolSources) {
      const Slot& s = slot(inputSlots[source.input]);
      if (!s.data) fail("graph input '", s.value->name, "' is not bound");
      const int64_t value = s.shape[source.axis];
      const auto symbol = static_cast<size_t>(source.symbol);
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
      Slot& s = slot(result);
      s.rank = s.dims.size();
      size_t elements = 1;
      for (size_t i = 0; i < s.rank; ++i) {
        s.shape[i] = s.dims[i].evaluate(symbolValues);
        if (s.shape[i] < 0) fail(step.op->describe(), ": dimension ", i, " evaluates to ", s.shape[i]);
        elements *= static_cast<size_t>(s.shape[i]);
      }
      if (s.kind == SlotKind::Arena || s.kind == SlotKind::Host) {
        if (elements * dtypeSize(s.storage) > s.capacity)
          fail(step.op->describe(), ": result needs ", elements * dtypeSize(s.storage), " bytes, more than the ", s.capacity, " planned");
      } else if (s.kind == SlotKind::View) {
        const Slot& base = slot(s.viewOf);
        if (static_cast<int64_t>(elements) != base.numElements())
          fail(step.op->describe(), ": the planned shape has ", elements, " elements but its input has ", base.numElements());
        s.data = base.data;
      }
    }
  }

  template <class Params>
  void launch(const Launchable& kernel, LaunchGrid grid, const Params& params, CUstream stream, const Op& op) const {
    kernels.launch(kernel.function, grid, kernel.threads, params, stream, op.describe().c_str());
  }

  void stridedCopy(const Launchable& kernel, CUdeviceptr out, CUdeviceptr in, std::span<const int64_t> shape,
                   const std::array<int64_t, kMaxRank>& inStrides, const std::array<int64_t, kMaxRank>& outStrides, int64_t inOffset,
                   int64_t outOffset, CUstream stream, const Op& op) const {
    StridedCopyParams p{};
    p.out = ptr(out);
    p.in = ptr(in);
    p.rank = static_cast<i64>(shape.size());
    p.count = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
      p.shape[i] = shape[i];
      p.in_strides[i] = inStrides[i];
      p.out_strides[i] = outStrides[i];
      p.count *= shape[i];
    }
    p.in_offset = inOffset;
    p.out_offset = outOffset;
    if (p.count == 0) return;
    launch(kernel, {blocksFor(p.count, kernel.threads)}, p, stream, op);
  }

  // Strides of `in` broadcast to `out`'s rank (numpy rules: right-aligned, 0 on broadcast axes).
  static std::array<int64_t, kMaxRank> broadcastStrides(const Slot& in, const Slot& out, const Op& op) {
    std::array<int64_t, kMaxRank> result{};
    const auto dense = in.strides();
    if (in.rank > out.rank) fail(op.describe(), ": operand rank ", in.rank, " exceeds the result's ", out.rank);
    const size_t lead = out.rank - in.rank;
    for (size_t i = 0; i < out.rank; ++i) {
      if (i < lead) continue;
      const int64_t dim = in.shape[i - lead];
      if (dim == out.shape[i]) result[i] = dense[i - lead];
      else if (dim == 1) result[i] = 0;
      else fail(op.describe(), ": operand dimension ", dim, " does not broadcast to ", out.shape[i]);
    }
    return result;
  }

  void runStep(Step& step, CUstream stream, const StepAttention& attention) {
    const Op& op = *step.op;
    auto in = [&](size_t i) -> Slot& { return slot(step.operands.at(i)); };
    auto out = [&](size_t i) -> Slot& { return slot(step.results.at(i)); };
    const CudaDriver& d = device.driver();
    switch (step.planned->kind) {
      case CudaStepKind::View:
      case CudaStepKind::HostCompute:  // prepareHostValues() did it
        return;
      case CudaStepKind::ZeroFill: {
        Slot& o = out(0);
        const auto bytes = static_cast<size_t>(o.numElements()) * dtypeSize(o.storage);
        if (bytes) d.check(d.cuMemsetD8Async(o.data, 0, bytes, stream), "cuMemsetD8Async", op.describe());
        return;
      }
      case CudaStepKind::Embedding:
      case CudaStepKind::GatherRows: {
        const Slot& table = in(0);
        const Slot& ids = in(1);
        const auto axis = static_cast<size_t>(step.axis);
        EmbeddingParams p{};
        p.out = ptr(out(0).data);
        p.table = ptr(table.data);
        p.ids = typed<const i64>(ids.data);
        p.num_tokens = ids.numElements();
        p.vocab = table.shape[axis];
        p.hidden = 1;
        for (size_t i = axis + 1; i < table.rank; ++i) p.hidden *= table.shape[i];
        if (out(0).numElements() != p.num_tokens * p.hidden)
          fail(op.describe(), ": the result has ", out(0).numElements(), " elements, not ", p.num_tokens, " rows of ", p.hidden);
        launch(step.kernel, {static_cast<unsigned>(p.num_tokens)}, p, stream, op);
        return;
      }
      case CudaStepKind::Gemm: {
        const Slot& a = in(0);
        const int64_t elements = a.numElements();
        if (a.rank == 0 || a.shape[a.rank - 1] != step.k) fail(op.describe(), ": its input's last dimension is not ", step.k);
        GemmCall call;
        call.dtype = t;
        call.m = elements / step.k;
        call.n = step.n;
        call.k = step.k;
        call.a = a.data;
        call.lda = step.k;
        call.b = step.weight;
        call.ldb = step.transB ? step.k : step.n;
        call.transB = step.transB;
        call.out = out(0).data;
        call.ldOut = step.n;
        call.bias = step.bias;
        if (out(0).numElements() != call.m * call.n) fail(op.describe(), ": the result has ", out(0).numElements(), " elements, not ", call.m, " x ", call.n);
        gemm.gemm(call, stream);
        return;
      }
      case CudaStepKind::Norm: {
        const Slot& x = in(0);
        NormParams p{};
        p.hidden = x.rank ? x.shape[x.rank - 1] : 1;
        p.rows = p.hidden ? x.numElements() / p.hidden : 0;
        p.out = ptr(out(0).data);
        p.sum_out = step.results.size() > 1 ? ptr(out(1).data) : nullptr;
        p.x = ptr(x.data);
        p.residual = step.planned->residualOperand >= 0 ? ptr(in(static_cast<size_t>(step.planned->residualOperand)).data) : nullptr;
        p.weight = ptr(in(1).data);
        p.bias = step.planned->biasOperand >= 0 ? ptr(in(static_cast<size_t>(step.planned->biasOperand)).data) : nullptr;
        p.epsilon = static_cast<float>(op.floatAttr("epsilon", 1e-5));
        if (in(1).numElements() != p.hidden) fail(op.describe(), ": the weight has ", in(1).numElements(), " elements, not ", p.hidden);
        if (step.planned->residualOperand >= 0 && in(static_cast<size_t>(step.planned->residualOperand)).numElements() != x.numElements())
          fail(op.describe(), ": the residual's shape differs from the input's");
        if (p.rows == 0) return;
        launch(step.kernel, {static_cast<unsigned>(p.rows)}, p, stream, op);
        return;
      }
      case CudaStepKind::Rope:
      case CudaStepKind::OnnxRotary: {
        const bool onnx = step.planned->kind == CudaStepKind::OnnxRotary;
        const Slot& x = in(0);
        const Slot& positions = in(onnx ? 3 : 1);
        RopeParams p{};
        p.out = ptr(out(0).data);
        p.x = ptr(x.data);
        p.positions = typed<const i64>(positions.data);
        p.cos_table = typed<const float>(step.cosTable);
        p.sin_table = typed<const float>(step.sinTable);
        if (x.rank == 4) {
          p.batch = x.shape[0];
          p.heads = x.shape[1];
          p.seq = x.shape[2];
          p.head_dim = x.shape[3];
          p.batch_stride = p.heads * p.seq * p.head_dim;
          p.head_stride = p.seq * p.head_dim;
          p.seq_stride = p.head_dim;
        } else {
          p.batch = x.shape[0];
          p.seq = x.shape[1];
          p.heads = op.intAttr("num_heads", 0);
          if (p.heads <= 0 || x.shape[2] % p.heads != 0) fail(op.describe(), ": hidden size ", x.shape[2], " is not a multiple of num_heads");
          p.head_dim = x.shape[2] / p.heads;
          p.batch_stride = p.seq * x.shape[2];
          p.seq_stride = x.shape[2];
          p.head_stride = p.head_dim;
        }
        const int64_t rotary = op.intAttr(onnx ? "rotary_embedding_dim" : "rotary_dim", 0);
        p.rotary_dim = rotary > 0 ? rotary : p.head_dim;
        if (p.rotary_dim > p.head_dim || p.rotary_dim % 2 != 0) fail(op.describe(), ": rotary dim ", p.rotary_dim, " does not fit head dim ", p.head_dim);
        if (positions.rank != 2 || positions.shape[1] != p.seq || (positions.shape[0] != 1 && positions.shape[0] != p.batch))
          fail(op.describe(), ": position ids must be [batch or 1, seq]");
        p.positions_batch_stride = positions.shape[0] == 1 ? 0 : p.seq;
        p.max_positions = step.maxPositions;
        if (p.batch * p.seq == 0) return;
        launch(step.kernel, {static_cast<unsigned>(p.batch * p.seq)}, p, stream, op);
        return;
      }
      case CudaStepKind::Activation: {
        ActivationParams p{};
        p.out = ptr(out(0).data);
        p.x = ptr(in(0).data);
        p.up = step.planned->gated ? ptr(in(1).data) : nullptr;
        p.count = out(0).numElements();
        if (in(0).numElements() != p.count || (step.planned->gated && in(1).numElements() != p.count))
          fail(op.describe(), ": operand and result sizes differ");
        if (p.count == 0) return;
        launch(step.kernel, {blocksFor(p.count, step.kernel.threads)}, p, stream, op);
        return;
      }
      case CudaStepKind::Binary: {
        const Slot& o = out(0);
        BinaryParams p{};
        p.out = ptr(o.data);
        p.a = ptr(in(0).data);
        p.b = ptr(in(1).data);
        p.rank = static_cast<i64>(o.rank);
        const auto aStrides = broadcastStrides(in(0), o, op), bStrides = broadcastStrides(in(1), o, op);
        for (size_t i = 0; i < o.rank; ++i) {
          p.shape[i] = o.shape[i];
          p.a_strides[i] = aStrides[i];
          p.b_strides[i] = bStrides[i];
        }
        p.count = o.numElements();
        if (p.count == 0) return;
        launch(step.kernel, {blocksFor(p.count, step.kernel.threads)}, p, stream, op);
        return;
      }
      case CudaStepKind::Transpose: {
        const Slot& x = in(0);
        const Slot& o = out(0);
        const auto inStrides = x.strides();
        std::array<int64_t, kMaxRank> permuted{};
        for (size_t j = 0; j < o.rank; ++j) {
          permuted[j] = inStrides[static_cast<size_t>(step.perm[j])];
          if (o.shape[j] != x.shape[static_cast<size_t>(step.perm[j])]) fail(op.describe(), ": the result's shape does not match perm");
        }
        stridedCopy(step.kernel, o.data, x.data, o.shapeSpan(), permuted, o.strides(), 0, 0, stream, op);
        return;
      }
      case CudaStepKind::Slice: {
        const Slot& x = in(0);
        const Slot& o = out(0);
        if (x.rank != o.rank) fail(op.describe(), ": the result's rank differs from the input's");
        auto strides = x.strides();
        int64_t offset = 0;
        for (size_t i = 0; i < step.sliceAxes.size(); ++i) {
          const auto axis = static_cast<size_t>(step.sliceAxes[i]);
          const int64_t dim = x.shape[axis], stride = step.sliceSteps[i];
          int64_t start = step.sliceStarts[i];
          if (start < 0) start += dim;
          start = stride > 0 ? std::clamp<int64_t>(start, 0, dim) : std::clamp<int64_t>(start, 0, std::max<int64_t>(dim - 1, 0));
          offset += start * strides[axis];
          strides[axis] *= stride;
          if (o.shape[axis] > 0 && (start + (o.shape[axis] - 1) * stride < 0 || start + (o.shape[axis] - 1) * stride >= dim))
            fail(op.describe(), ": the planned result runs outside the input along axis ", axis);
        }
        stridedCopy(step.kernel, o.data, x.data, o.shapeSpan(), strides, o.strides(), offset, 0, stream, op);
        return;
      }
      case CudaStepKind::Expand: {
        const Slot& o = out(0);
        stridedCopy(step.kernel, o.data, in(0).data, o.shapeSpan(), broadcastStrides(in(0), o, op), o.strides(), 0, 0, stream, op);
        return;
      }
      case CudaStepKind::Concat: {
        const Slot& o = out(0);
        const auto axis = static_cast<size_t>(step.axis);
        const auto outStrides = o.strides();
        int64_t offset = 0;
        for (size_t i = 0; i < step.operands.size(); ++i) {
          const Slot& part = in(i);
          if (part.rank != o.rank) fail(op.describe(), ": input ", i, " has rank ", part.rank, ", the result ", o.rank);
          stridedCopy(step.kernel, o.data, part.data, part.shapeSpan(), part.strides(), outStrides, 0, offset * outStrides[axis], stream, op);
          offset += part.shape[axis];
        }
        if (offset != o.shape[axis]) fail(op.describe(), ": the inputs fill ", offset, " of the result's ", o.shape[axis], " along axis ", axis);
        return;
      }
      case CudaStepKind::Split: {
        const Slot& x = in(0);
        const auto axis = static_cast<size_t>(step.axis);
        const auto inStrides = x.strides();
        int64_t offset = 0;
        for (size_t r = 0; r < step.results.size(); ++r) {
          const Slot& part = out(r);
          if (part.rank != x.rank || offset + part.shape[axis] > x.shape[axis]) fail(op.describe(), ": the parts exceed the input's axis ", axis);
          stridedCopy(step.kernel, part.data, x.data, part.shapeSpan(), inStrides, part.strides(), offset * inStrides[axis], 0, stream, op);
          offset += part.shape[axis];
        }
        return;
      }
      case CudaStepKind::KvCacheWrite: {
        const Slot& key = in(0);
        const Slot& cache = in(2);
        if (key.rank != 3 || cache.rank != 4 || in(1).numElements() != key.numElements()) fail(op.describe(), ": unexpected shapes");
        KvCacheWriteParams p{};
        p.key = ptr(key.data);
        p.value = ptr(in(1).data);
        p.key_cache = ptr(cache.data);
        p.value_cache = ptr(in(3).data);
        p.slot_mapping = typed<const i64>(in(4).data);
        p.num_tokens = key.shape[0];
        p.num_kv_heads = cache.shape[1];
        p.block_size = cache.shape[2];
        p.head_dim = cache.shape[3];
        p.key_token_stride = p.num_kv_heads * p.head_dim;
        p.value_token_stride = p.key_token_stride;
        if (key.shape[1] != p.num_kv_heads || key.shape[2] != p.head_dim || in(4).numElements() != p.num_tokens)
          fail(op.describe(), ": key/value rows do not match the cache or the slots");
        if (p.num_tokens == 0) return;
        launch(step.kernel, {static_cast<unsigned>(p.num_tokens)}, p, stream, op);
        return;
      }
      case CudaStepKind::PagedAttention:
        runAttention(step, stream, attention);
        return;
    }
  }

  void runAttention(const Step& step, CUstream stream, const StepAttention& attention) {
    const Op& op = *step.op;
    const Slot& query = slot(step.operands[0]);
    const Slot& keyCache = slot(step.operands[1]);
    const Slot& tables = slot(step.operands[3]);
    const Slot& contextLens = slot(step.operands[4]);
    const Slot& o = slot(step.results[0]);
    PagedAttentionParams p{};
    p.out = ptr(o.data);
    p.query = ptr(query.data);
    p.key_cache = ptr(keyCache.data);
    p.value_cache = ptr(slot(step.operands[2]).data);
    p.block_tables = typed<const i64>(tables.data);
    p.context_lens = typed<const i64>(contextLens.data);
    p.query_start_loc = typed<const i64>(slot(step.operands[5]).data);
    p.partial_out = typed<float>(partialOut.get());
    p.partial_max = typed<float>(partialMax.get());
    p.partial_sum = typed<float>(partialSum.get());
    p.num_seqs = contextLens.numElements();
    p.num_heads = query.shape[1];
    p.num_kv_heads = keyCache.shape[1];
    p.query_token_stride = p.num_heads * query.shape[2];
    p.max_blocks_per_seq = tables.rank == 2 ? tables.shape[1] : 0;
    p.sliding_window = step.slidingWindow > 0 ? step.slidingWindow : 0;
    p.scale = step.scale;
    p.softcap = step.softcap;
    if (p.num_seqs == 0 || query.shape[0] == 0) return;
    const auto kvHeads = static_cast<unsigned>(p.num_kv_heads), seqs = static_cast<unsigned>(p.num_seqs);
    if (attention.anyDecode) {
      const int64_t partitionSize = choices.partitionSize;
      if (partitionSize > 0 && attention.maxContextLen > partitionSize) {
        int64_t partitions = (attention.maxContextLen + partitionSize - 1) / partitionSize;
        if (p.sliding_window > 0) partitions = std::min<int64_t>(partitions, (p.sliding_window + partitionSize - 1) / partitionSize + 1);
        if (p.num_seqs * p.num_heads * partitions > scratchRowsCapacity)
          fail(op.describe(), ": ", p.num_seqs, " sequences of up to ", attention.maxContextLen, " tokens need more split-K scratch than planned");
        p.partition_size = partitionSize;
        p.max_partitions = partitions;
        launch(step.decodeSplit, {kvHeads, seqs, static_cast<unsigned>(partitions)}, p, stream, op);
        launch(step.reduce, {static_cast<unsigned>(p.num_heads), seqs}, p, stream, op);
      } else {
        p.partition_size = 0;
        p.max_partitions = 1;
        launch(step.kernel, {kvHeads, seqs, 1}, p, stream, op);
      }
    }
    if (attention.anyPrefill) {
      p.skip_single_token = attention.anyDecode ? 1 : 0;
      const int64_t tiles = (std::max<int64_t>(attention.maxQueryLen, 1) + step.prefill.queryTile - 1) / step.prefill.queryTile;
      launch(step.prefill, {kvHeads, seqs, static_cast<unsigned>(tiles)}, p, stream, op);
    }
  }

  // The host value of a slot a host step reads: an input's host data, a static value, a host
  // value, or a view of one of these.
  Tensor hostTensor(int index, const Op& reader) {
    const Slot& s = slot(index);
    std::vector<int64_t> shape(s.shape.begin(), s.shape.begin() + static_cast<std::ptrdiff_t>(s.rank));
    switch (s.kind) {
      case SlotKind::Input:
        if (!s.host) fail(reader.describe(), ": graph input '", s.value->name, "' has no host copy to compute it from");
        return Tensor::view(s.storage, std::move(shape), s.host, nullptr);
      case SlotKind::Static:
        return hostStatics.at(s.value);
      case SlotKind::Host:
        return s.hostValue;
      case SlotKind::View:
        return hostTensor(s.viewOf, reader).reshaped(std::move(shape));
      default:
        fail(reader.describe(), ": %", s.value->name, " lives only on the device");
    }
  }

  void prepareHostValues(CUstream stream) {
    if (hostSteps.empty()) return;
    bindSymbols();
    size_t used = 0;
    for (size_t i : hostSteps) {
      Step& step = steps[i];
      const Op& op = *step.op;
      // Views between host steps need their shapes too.
      for (int operand : step.operands)
        if (operand >= 0 && slot(operand).kind == SlotKind::View) shapeView(operand);
      shapeResults(step);
      std::vector<Tensor> operands;
      if (op.opName() == "Shape") {
        // Only the operand's shape matters: its planned dims, evaluated for this step.
        const Value* v = op.operand(0);
        std::vector<int64_t> shape;
        for (const Dim& dim : *v->type.shape) {
          auto compiled = compileDim(dim);
          if (!compiled) fail(op.describe(), ": the shape of %", v->name, " is not known from the inputs");
          shape.push_back(compiled->evaluate(symbolValues));
        }
        static const std::byte kNoData{};
        operands.push_back(Tensor::view(v->type.dtype, std::move(shape), &kNoData, nullptr));
      } else {
        for (int operand : step.operands) operands.push_back(operand >= 0 ? toCanonical(hostTensor(operand, op)) : Tensor());
      }
      EvalContext ctx(op, std::move(operands));
      op.def().evaluate(ctx);
      for (size_t r = 0; r < step.results.size(); ++r) {
        Slot& s = slot(step.results[r]);
        Tensor value = ctx.outputs()[r];
        if (value.isNull() || !std::equal(value.shape().begin(), value.shape().end(), s.shape.begin(), s.shape.begin() + static_cast<std::ptrdiff_t>(s.rank)) ||
            value.rank() != s.rank)
          fail(op.describe(), ": result ", r, " is ", value.isNull() ? "missing" : value.shapeStr(), ", not the planned shape");
        s.hostValue = value.dtype() == s.storage ? value : value.convertTo(s.storage);
        std::memcpy(hostValuesStaging.data() + s.offset, s.hostValue.bytes(), s.hostValue.byteSize());
        used = std::max(used, s.offset + s.hostValue.byteSize());
      }
    }
    const CudaDriver& d = device.driver();
    if (used) d.check(d.cuMemcpyHtoDAsync(hostValuesDevice.get(), hostValuesStaging.data(), used, stream), "cuMemcpyHtoDAsync", "host-computed values");
  }

  // A view's shape from its planned dims (its producing step may not have run yet this step).
  void shapeView(int index) {
    Slot& s = slot(index);
    if (s.viewOf >= 0 && slot(s.viewOf).kind == SlotKind::View) shapeView(s.viewOf);
    s.rank = s.dims.size();
    for (size_t i = 0; i < s.rank; ++i) s.shape[i] = s.dims[i].evaluate(symbolValues);
    s.data = slot(s.viewOf).data;
  }

  void run(CUstream stream, const StepAttention& attention) {
    bindSymbols();
    for (Step& step : steps) {
      shapeResults(step);
      runStep(step, stream, attention);
    }
    for (auto& [output, cast] : outputCasts) {
      const Slot& s = slot(cast.slot);
      CastParams p{};
      p.out = ptr(cast.buffer.get());
      p.in = ptr(s.data);
      p.count = s.numElements();
      if (p.count == 0) continue;
      kernels.launch(cast.kernel.function, {blocksFor(p.count, cast.kernel.threads)}, cast.kernel.threads, p, stream, "the f32 cast of an output");
    }
  }
};

CudaExecutor::CudaExecutor(const Graph& graph, const CudaDevice& device, CudaKernelCache& kernels, GemmLibrary& gemm,
                           const CudaKernelChoices& choices, const std::map<std::string, int64_t>& symbolBounds)
    : plan_(std::make_unique<Plan>(graph, device, kernels, gemm, choices)) {
  device.makeCurrent();
  plan_->build(symbolBounds);
}

CudaExecutor::~CudaExecutor() = default;

bool CudaExecutor::hasInput(std::string_view name) const {
  return std::ranges::any_of(plan_->graph.inputs, [&](const Value* v) { return v->name == name; });
}

size_t CudaExecutor::inputIndex(std::string_view name) const {
  for (size_t i = 0; i < plan_->graph.inputs.size(); ++i)
    if (plan_->graph.inputs[i]->name == name) return i;
  fail("the compiled graph has no input '", name, "'");
}

size_t CudaExecutor::outputIndex(std::string_view name) const {
  for (size_t i = 0; i < plan_->graph.outputs.size(); ++i)
    if (plan_->graph.outputs[i]->name == name) return i;
  fail("the compiled graph has no output '", name, "'");
}

size_t CudaExecutor::inputCapacityBytes(size_t index) const {
  const Slot& s = plan_->slots[static_cast<size_t>(plan_->inputSlots.at(index))];
  int64_t elements = 1;
  for (const CompiledDim& dim : s.dims) elements *= dim.upperBound(plan_->symbolBounds);
  return static_cast<size_t>(elements) * dtypeSize(s.storage);
}

void CudaExecutor::bindInput(size_t index, CUdeviceptr data, std::span<const int64_t> shape, const void* host) {
  Slot& s = plan_->slots[static_cast<size_t>(plan_->inputSlots.at(index))];
  const TensorType& declared = s.value->type;
  if (shape.size() != declared.rank()) fail("graph input '", s.value->name, "': rank ", shape.size(), " but the graph declares ", declared.str());
  if (shape.size() > kMaxRank) fail("graph input '", s.value->name, "': rank above ", kMaxRank);
  for (size_t i = 0; i < shape.size(); ++i)
    if (auto c = declared.dim(i).constant(); c && *c != shape[i])
      fail("graph input '", s.value->name, "': dimension ", i, " must be ", *c, ", got ", shape[i]);
  s.data = data;
  s.host = host;
  s.rank = shape.size();
  std::copy(shape.begin(), shape.end(), s.shape.begin());
}

void CudaExecutor::run(CUstream stream, const StepAttention& attention) { plan_->run(stream, attention); }

void CudaExecutor::prepareHostValues(CUstream stream) { plan_->prepareHostValues(stream); }

bool CudaExecutor::hasHostValues() const { return !plan_->hostSteps.empty(); }

CUdeviceptr CudaExecutor::outputData(size_t index) const {
  if (auto it = plan_->outputCasts.find(index); it != plan_->outputCasts.end()) return it->second.buffer.get();
  return plan_->slots[static_cast<size_t>(plan_->outputSlots.at(index))].data;
}

std::span<const int64_t> CudaExecutor::outputShape(size_t index) const {
  return plan_->slots[static_cast<size_t>(plan_->outputSlots.at(index))].shapeSpan();
}

const CudaExecutorSummary& CudaExecutor::summary() const { return plan_->summary; }

DType CudaExecutor::activationDType() const { return plan_->t; }

const std::vector<KernelKey>& CudaExecutor::runnerKernels() const { return plan_->graphPlan.runnerKernels; }

}  // namespace pagedc::cuda
