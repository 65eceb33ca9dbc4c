// The CUDA backend's op -> kernel mapping.
#include "runtime/cuda/CudaKernelPlan.h"

#include <algorithm>
#include <map>
#include <optional>
#include <unordered_map>

#include "ir/Error.h"
#include "ir/OpDef.h"
#include "ir/RaggedInterface.h"
#include "runtime/kernels/KernelCatalog.h"

namespace pagedc::cuda {

CudaKernelChoices CudaKernelChoices::forModel(const ModelFacts& facts) {
  CudaKernelChoices choices;
  const DType weights = facts.weightDType;
  choices.activation = weights == DType::F16 || weights == DType::BF16 ? weights : DType::F32;
  return choices;
}

namespace {

bool isFloat(const Value* v) { return v && isFloatingPoint(v->type.dtype); }
bool isInt(const Value* v) { return v && (isInteger(v->type.dtype) || v->type.dtype == DType::Bool); }

bool isViewOp(const std::string& name) {
  return name == "Reshape" || name == "Squeeze" || name == "Unsqueeze" || name == "Flatten" || name == "Identity";
}

// Builds kernel keys with the choices' thread counts (0: the catalog's default).
class KeyMaker {
public:
  KeyMaker(const CudaKernelChoices& choices, DType cache) : choices_(choices), t_(std::string(dtypeName(choices.activation))), c_(std::string(dtypeName(cache))) {}

  KernelKey make(std::string_view kernel, std::map<std::string, std::string> values, int64_t threads) const {
    if (threads > 0) values["threads"] = std::to_string(threads);
    return makeKernelKey(kernel, values);
  }
  KernelKey elementwise(std::string_view kernel, std::map<std::string, std::string> values) const {
    values["dtype"] = t_;
    return make(kernel, std::move(values), choices_.elementwiseThreads);
  }
  KernelKey row(std::string_view kernel, std::map<std::string, std::string> values = {}) const {
    values["dtype"] = t_;
    return make(kernel, std::move(values), choices_.rowThreads);
  }
  KernelKey cast(DType from, DType to) const {
    return make("cast", {{"in", std::string(dtypeName(from))}, {"out", std::string(dtypeName(to))}}, choices_.elementwiseThreads);
  }
  std::vector<KernelKey> attention(int64_t headDim, int64_t blockSize, int64_t queriesPerKv) const {
    std::map<std::string, std::string> common = {{"dtype", t_}, {"cache", c_}, {"head_dim", std::to_string(headDim)},
                                                 {"block", std::to_string(blockSize)}, {"q_per_kv", std::to_string(queriesPerKv)}};
    std::vector<KernelKey> keys;
    auto decode = common;
    decode["partition"] = "0";
    keys.push_back(make("paged_attention_decode", decode, choices_.attentionThreads));
    if (choices_.partitionSize > 0) {
      decode["partition"] = std::to_string(choices_.partitionSize);
      keys.push_back(make("paged_attention_decode", decode, choices_.attentionThreads));
      keys.push_back(make("paged_attention_reduce", {{"dtype", t_}, {"head_dim", std::to_string(headDim)}}, choices_.attentionThreads));
    }
    auto prefill = common;
    if (choices_.queryTile > 0) prefill["query_tile"] = std::to_string(choices_.queryTile);
    keys.push_back(make("paged_attention_prefill", prefill, choices_.attentionThreads));
    return keys;
  }

private:
  const CudaKernelChoices& choices_;
  std::string t_, c_;
};

std::optional<int64_t> constantDim(const Value* v, size_t axis) {
  if (!v->type.shape || axis >= v->type.rank()) return std::nullopt;
  return v->type.dim(axis).constant();
}

class Planner {
public:
  Planner(const Graph& graph, const CudaKernelChoices& choices) : graph_(graph), choices_(choices) {}

  CudaGraphPlan plan() {
    CudaGraphPlan result;
    result.activation = choices_.activation;
    if (result.activation != DType::F32 && result.activation != DType::F16 && result.activation != DType::BF16)
      fail("the CUDA backend computes in f32, f16 or bf16, not ", dtypeName(result.activation));
    result.cache = cacheDType();
    KeyMaker keys(choices_, result.cache);

    // Static: weights, constants, and ops whose operands are all static.
    for (const auto& op : graph_.ops()) {
      bool allStatic = op->opName() != "kv_cache_write" && op->opName() != "paged_attention";
      for (const Value* v : op->operands) allStatic = allStatic && (!v || statics_.contains(v));
      if (allStatic)
        for (const Value* r : op->results) statics_.insert(r);
    }

    // The ops the outputs need, walking back from them; a step reads only its data operands.
    std::unordered_set<const Value*> needed(graph_.outputs.begin(), graph_.outputs.end());
    std::vector<CudaStep> reversed;
    for (auto it = graph_.ops().rbegin(); it != graph_.ops().rend(); ++it) {
      const Op& op = **it;
      if (statics_.contains(op.result(0))) continue;
      if (!std::ranges::any_of(op.results, [&](const Value* r) { return needed.contains(r); })) continue;
      CudaStep step = classify(op, keys);
      for (size_t i : dataOperands(step)) {
        const Value* v = op.operand(i);
        if (!v) continue;
        needed.insert(v);
        if (!statics_.contains(v) && !v->producer && !isGraphInput(v))
          fail(op.describe(), ": operand %", v->name, " has no producer");
      }
      reversed.push_back(std::move(step));
    }
    result.steps.assign(std::make_move_iterator(reversed.rbegin()), std::make_move_iterator(reversed.rend()));
    result.staticValues = std::move(statics_);

    result.runnerKernels.push_back(keys.make("copy_blocks", {}, choices_.blockCopyThreads));
    result.runnerKernels.push_back(keys.make("swap_blocks", {}, choices_.blockCopyThreads));
    if (result.activation != DType::F32) result.runnerKernels.push_back(keys.cast(result.activation, DType::F32));
    return result;
  }

private:
  bool isGraphInput(const Value* v) const { return std::ranges::find(graph_.inputs, v) != graph_.inputs.end(); }
  bool isStatic(const Value* v) const { return v && statics_.contains(v); }
  bool isDynamic(const Value* v) const { return v && !statics_.contains(v); }

  DType cacheDType() const {
    for (const Value* input : graph_.inputs)
      if (input->name.starts_with("key_cache.")) return input->type.dtype;
    return choices_.activation;
  }

  static std::string unsupported(const Op& op, const std::string& why) {
    return "the CUDA backend cannot run " + op.describe() + ": " + why + " (run this model with --device cpu)";
  }

  CudaStep classify(const Op& op, const KeyMaker& keys) const {
    CudaStep step;
    step.op = &op;
    const std::string& name = op.opName();
    auto reject = [&](const std::string& why) -> CudaStep { fail(unsupported(op, why)); };
    auto requireFloat = [&](std::initializer_list<size_t> operands) {
      for (size_t i : operands)
        if (op.hasOperand(i) && !isFloat(op.operand(i)))
          reject("operand " + std::to_string(i) + " is " + std::string(dtypeName(op.operand(i)->type.dtype)) + ", and its CUDA kernel takes floating-point data");
      for (const Value* r : op.results)
        if (!isFloat(r)) reject("its result is " + std::string(dtypeName(r->type.dtype)) + ", and its CUDA kernel produces floating-point data");
    };
    auto requireRanked = [&](const Value* v, size_t maxRank) {
      if (!v->type.shape) reject("%" + v->name + " has no inferred shape");
      if (v->type.rank() > maxRank)
        reject("%" + v->name + " has rank " + std::to_string(v->type.rank()) + ", more than the " + std::to_string(maxRank) + " its CUDA kernel handles");
    };
    for (const Value* r : op.results) requireRanked(r, 6);

    if (isViewOp(name)) {
      step.kind = CudaStepKind::View;
      return step;
    }
    if (name == "Cast") {
      const Value* in = op.operand(0);
      if ((isFloat(in) && isFloat(op.result(0))) || (isInt(in) && isInt(op.result(0)))) {
        // Every float is T on the device, every integer i64: a cast within a kind changes nothing.
        step.kind = CudaStepKind::View;
        return step;
      }
      if (!isInt(op.result(0)))
        return reject("a cast from " + std::string(dtypeName(in->type.dtype)) + " to " + std::string(dtypeName(op.result(0)->type.dtype)) +
                      " at run time has no CUDA kernel");
    }
    // Integer results (position arithmetic, shape arithmetic) are computed on the host from the
    // step's inputs, which are host data, and uploaded with them: the GPU has no integer kernels.
    if (std::ranges::all_of(op.results, [](const Value* r) { return isInt(r); }) && name != "kv_cache_write" && name != "paged_attention") {
      if (name != "Shape")
        for (const Value* v : op.operands)
          if (v && isFloat(v) && !isStatic(v))
            return reject("it computes integers from the floating-point tensor %" + v->name + " at run time");
      if (!op.def().evaluate) return reject("it has no reference implementation to compute it on the host");
      step.kind = CudaStepKind::HostCompute;
      return step;
    }
    if (name == "Gather") {
      const Value* data = op.operand(0);
      const Value* indices = op.operand(1);
      requireRanked(data, 6);
      if (!isInt(indices)) return reject("its indices are not integers");
      const int64_t axis = normalizeAxis(op.intAttr("axis", 0), static_cast<int64_t>(data->type.rank()), op);
      if (!isFloat(data)) return reject("it gathers integers at run time (shape arithmetic on dynamic shapes), which the CUDA backend does not do");
      if (isStatic(data)) {
        if (axis != 0 || data->type.rank() != 2) return reject("a table lookup runs on the GPU only as rows of a 2-D table (axis 0)");
        step.kind = CudaStepKind::Embedding;
        step.kernels.push_back(keys.row("embedding"));
        return step;
      }
      for (int64_t i = 0; i < axis; ++i)
        if (constantDim(data, static_cast<size_t>(i)) != 1)
          return reject("it gathers along axis " + std::to_string(axis) + " of %" + data->name + " whose leading dimensions are not all 1");
      step.kind = CudaStepKind::GatherRows;
      step.kernels.push_back(keys.row("embedding"));
      return step;
    }
    if (name == "MatMul" || name == "Gemm") {
      requireFloat({0, 1, 2});
      const Value* a = op.operand(0);
      const Value* w = op.operand(1);
      if (!isStatic(w)) return reject("its right operand %" + w->name + " is computed at run time; the CUDA backend multiplies by static weights only");
      if (!w->type.shape || w->type.rank() != 2) return reject("its weight %" + w->name + " is not a matrix");
      if (!isDynamic(a)) return reject("both operands are static");
      requireRanked(a, 6);
      if (name == "Gemm") {
        if (op.intAttr("transA", 0) != 0) return reject("Gemm with transA has no CUDA mapping");
        if (op.hasOperand(2) && !isStatic(op.operand(2))) return reject("its bias is computed at run time");
      }
      step.kind = CudaStepKind::Gemm;
      return step;
    }
    if (name == "rms_norm" || name == "layer_norm") {
      requireFloat({0, 1, 2, 3});
      step.kind = CudaStepKind::Norm;
      const bool layer = name == "layer_norm";
      step.biasOperand = layer && op.hasOperand(2) ? 2 : -1;
      step.residualOperand = layer ? (op.hasOperand(3) ? 3 : -1) : (op.hasOperand(2) ? 2 : -1);
      step.kernels.push_back(keys.row(name));
      return step;
    }
    if (name == "silu" || name == "gelu" || name == "Relu" || name == "gated_act") {
      requireFloat({0, 1});
      step.kind = CudaStepKind::Activation;
      std::string act;
      if (name == "gated_act") {
        step.gated = true;
        const std::string activation = op.stringAttr("activation", "");
        if (activation == "silu") act = "silu";
        else if (activation == "gelu" || activation == "gelu_erf") act = "gelu";
        else if (activation == "gelu_tanh") act = "gelu_tanh";
        else return reject("gated activation '" + activation + "' has no CUDA kernel");
        if (op.operand(0)->type != op.operand(1)->type) return reject("its two operands differ in shape");
      } else if (name == "gelu") {
        const std::string approximate = op.stringAttr("approximate", "none");
        if (approximate == "none") act = "gelu";
        else if (approximate == "tanh") act = "gelu_tanh";
        else return reject("gelu approximation '" + approximate + "' has no CUDA kernel");
      } else {
        act = name == "silu" ? "silu" : "relu";
      }
      step.act = act == "silu" ? 0 : act == "gelu" ? 1 : act == "gelu_tanh" ? 2 : 3;
      step.kernels.push_back(keys.elementwise("activation", {{"act", act}}));
      return step;
    }
    if (name == "rope" || name == "RotaryEmbedding") {
      const bool onnx = name == "RotaryEmbedding";
      requireFloat({0});
      const Value* x = op.operand(0);
      const size_t cos = onnx ? 1 : 2, sin = onnx ? 2 : 3, positions = onnx ? 3 : 1;
      if (!isStatic(op.operand(cos)) || !isStatic(op.operand(sin))) return reject("its cos/sin tables are computed at run time");
      if (!op.hasOperand(positions) || !isInt(op.operand(positions))) return reject("it has no integer position ids");
      requireRanked(x, 4);
      if (!onnx && x->type.rank() != 4) return reject("rope expects [batch, heads, seq, head_dim]");
      if (onnx && x->type.rank() != 4 && !(x->type.rank() == 3 && op.intAttr("num_heads", 0) > 0))
        return reject("RotaryEmbedding on a 3-D input needs num_heads");
      step.kind = onnx ? CudaStepKind::OnnxRotary : CudaStepKind::Rope;
      step.kernels.push_back(keys.row("rope", {{"interleaved", op.intAttr("interleaved", 0) != 0 ? "1" : "0"}}));
      return step;
    }
    if (name == "Add" || name == "Sub" || name == "Mul" || name == "Div") {
      if (!isFloat(op.operand(0)) || !isFloat(op.operand(1)))
        return reject("integer arithmetic at run time has no CUDA kernel");
      requireFloat({0, 1});
      requireRanked(op.operand(0), 6);
      requireRanked(op.operand(1), 6);
      step.kind = CudaStepKind::Binary;
      step.binaryOp = name == "Add" ? 0 : name == "Sub" ? 1 : name == "Mul" ? 2 : 3;
      static const char* const kOps[] = {"add", "sub", "mul", "div"};
      step.kernels.push_back(keys.elementwise("elementwise_binary", {{"op", kOps[step.binaryOp]}}));
      return step;
    }
    if (name == "Transpose" || name == "Slice" || name == "Expand" || name == "Split" || name == "Concat") {
      for (size_t i = 0; i < (name == "Concat" ? op.operands.size() : 1); ++i) {
        if (!isFloat(op.operand(i))) return reject("it moves integers at run time, which the CUDA backend does not do");
        requireRanked(op.operand(i), 6);
      }
      if (name == "Slice")
        for (size_t i = 1; i < op.operands.size(); ++i)
          if (op.hasOperand(i) && !isStatic(op.operand(i))) return reject("its starts/ends/axes/steps are computed at run time");
      step.kind = name == "Transpose" ? CudaStepKind::Transpose
                  : name == "Slice"   ? CudaStepKind::Slice
                  : name == "Expand"  ? CudaStepKind::Expand
                  : name == "Split"   ? CudaStepKind::Split
                                      : CudaStepKind::Concat;
      step.kernels.push_back(keys.elementwise("strided_copy", {}));
      return step;
    }
    if (name == "ConstantOfShape") {
      const Attribute* value = op.attr("value");
      bool zero = true;
      if (value && value->kind() == AttrKind::Tensor) {
        const Tensor& t = value->asTensor();
        for (int64_t i = 0; i < t.numElements(); ++i) zero = zero && t.elementAsDouble(i) == 0.0;
      }
      if (!zero) return reject("ConstantOfShape with a non-zero value at run time has no CUDA kernel");
      step.kind = CudaStepKind::ZeroFill;
      return step;
    }
    if (name == "kv_cache_write") {
      requireFloat({0, 1});
      step.kind = CudaStepKind::KvCacheWrite;
      step.kernels.push_back(keys.row("kv_cache_write", {{"cache", std::string(dtypeName(op.operand(2)->type.dtype))}}));
      return step;
    }
    if (name == "paged_attention") {
      requireFloat({0});
      const Value* query = op.operand(0);
      const Value* cache = op.operand(1);
      requireRanked(query, 3);
      const auto heads = constantDim(query, 1), headDim = constantDim(query, 2);
      const auto kvHeads = constantDim(cache, 1), blockSize = constantDim(cache, 2);
      if (query->type.rank() != 3 || !heads || !headDim || !kvHeads || !blockSize || *kvHeads <= 0 || *heads % *kvHeads != 0)
        return reject("its query must be [tokens, heads, head_dim] and its cache [blocks, kv_heads, block_size, head_dim] with constant sizes");
      if (choices_.partitionSize > 0 && choices_.partitionSize % *blockSize != 0)
        return reject("the split-K partition size " + std::to_string(choices_.partitionSize) + " is not a multiple of the block size " +
                      std::to_string(*blockSize));
      step.kind = CudaStepKind::PagedAttention;
      step.kernels = keys.attention(*headDim, *blockSize, *heads / *kvHeads);
      return step;
    }
    if (name == "Shape") return reject("it reads a shape at run time into a tensor the GPU would need");
    return reject("op '" + name + "' has no CUDA kernel");
  }

  const Graph& graph_;
  const CudaKernelChoices& choices_;
  std::unordered_set<const Value*> statics_;
};

}  // namespace

// The operands a step reads as data (the shape operand of a Reshape, the constants of a Slice are
// not: they are planned from types or read on the host at load).
std::vector<size_t> dataOperands(const CudaStep& step) {
  const Op& op = *step.op;
  switch (step.kind) {
    case CudaStepKind::View:
    case CudaStepKind::Transpose:
    case CudaStepKind::Slice:
    case CudaStepKind::Expand:
    case CudaStepKind::Split:
      return {0};
    case CudaStepKind::ZeroFill:
      return {};
    case CudaStepKind::Embedding:
    case CudaStepKind::GatherRows:
      return {0, 1};
    case CudaStepKind::Gemm:
      return op.opName() == "Gemm" ? std::vector<size_t>{0, 1, 2} : std::vector<size_t>{0, 1};
    default: {
      std::vector<size_t> all;
      for (size_t i = 0; i < op.operands.size(); ++i) all.push_back(i);
      return all;
    }
  }
}

CudaGraphPlan planCudaGraph(const Graph& graph, const CudaKernelChoices& choices) { return Planner(graph, choices).plan(); }

std::vector<KernelKey> requiredKernels(const Graph& graph, const CudaKernelChoices& choices) {
  const CudaGraphPlan plan = planCudaGraph(graph, choices);
  std::vector<KernelKey> keys = plan.runnerKernels;
  for (const CudaStep& step : plan.steps) keys.insert(keys.end(), step.kernels.begin(), step.kernels.end());
  std::ranges::sort(keys);
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

}  // namespace pagedc::cuda
