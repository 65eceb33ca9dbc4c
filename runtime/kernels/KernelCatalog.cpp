#include "runtime/kernels/KernelCatalog.h"

#include <charconv>
#include <set>

#include "ir/Error.h"

namespace pagedc {

namespace {

using Kind = KernelParamKind;

KernelParamSpec dtype(const char* name, const char* defaultValue = "f16") { return {name, Kind::DType, defaultValue}; }
KernelParamSpec threads(const char* defaultValue) { return {"threads", Kind::Threads, defaultValue}; }

// Attention's shape defaults: a 128-wide head, 16-token blocks (vLLM's default), no grouping.
std::vector<KernelSpec> buildCatalog() {
  const KernelParamSpec headDim{"head_dim", Kind::HeadDim, "128"};
  const KernelParamSpec block{"block", Kind::BlockSize, "16"};
  const KernelParamSpec qPerKv{"q_per_kv", Kind::QPerKv, "1"};
  // 128 threads (4 warps) per CTA: the decode and prefill tiles are sized for it (docs/KERNELS.md);
  // the row and element-wise kernels use 256, enough to hide latency on a memory-bound row.
  const KernelParamSpec attentionThreads = threads("128");
  const char* attention = "paged_attention.cuh";
  const char* attentionParams = "pagedc::PagedAttentionParams";
  return {
      {"paged_attention_decode", attention, attentionParams,
       {dtype("dtype"), dtype("cache", "@dtype"), headDim, block, qPerKv, attentionThreads, {"partition", Kind::Partition, "512"}}},
      {"paged_attention_reduce", attention, attentionParams, {dtype("dtype"), headDim, attentionThreads}},
      {"paged_attention_prefill", attention, attentionParams,
       {dtype("dtype"), dtype("cache", "@dtype"), headDim, block, qPerKv, attentionThreads, {"query_tile", Kind::QueryTile, "16"}}},
      {"kv_cache_write", "kv_cache.cuh", "pagedc::KvCacheWriteParams", {dtype("dtype"), dtype("cache", "@dtype"), threads("128")}},
      {"copy_blocks", "kv_cache.cuh", "pagedc::CopyBlocksParams", {threads("256")}},
      {"swap_blocks", "kv_cache.cuh", "pagedc::SwapBlocksParams", {threads("256")}},
      {"rms_norm", "normalization.cuh", "pagedc::NormParams", {dtype("dtype"), threads("256")}},
      {"layer_norm", "normalization.cuh", "pagedc::NormParams", {dtype("dtype"), threads("256")}},
      {"rope", "rotary.cuh", "pagedc::RopeParams", {dtype("dtype"), {"interleaved", Kind::Interleaved, "0"}, threads("128")}},
      {"activation", "activation.cuh", "pagedc::ActivationParams", {dtype("dtype"), {"act", Kind::Activation, "silu"}, threads("256")}},
      {"embedding", "embedding.cuh", "pagedc::EmbeddingParams", {dtype("dtype"), threads("256")}},
      {"softmax_rows", "sampling.cuh", "pagedc::SoftmaxParams", {threads("256")}},
      {"argmax_rows", "sampling.cuh", "pagedc::ArgmaxParams", {threads("256")}},
      {"top_k_top_p_filter", "sampling.cuh", "pagedc::TopKTopPParams", {threads("256")}},
      {"strided_copy", "tensor_ops.cuh", "pagedc::StridedCopyParams", {dtype("dtype"), threads("256")}},
      {"elementwise_binary", "tensor_ops.cuh", "pagedc::BinaryParams", {dtype("dtype"), {"op", Kind::BinaryOp, "add"}, threads("256")}},
      {"cast", "tensor_ops.cuh", "pagedc::CastParams", {dtype("in", "f32"), dtype("out", "f16"), threads("256")}},
  };
}

bool parseInt(const std::string& text, int64_t& value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size();
}

// Checks one value; `block` is the key's block size (0 when it has none) for the partition rule.
// Returns the reason the value is bad, or "" when it is fine.
std::string checkValue(Kind kind, const std::string& value, int64_t block) {
  auto oneOf = [&](std::initializer_list<const char*> options) -> std::string {
    std::string list;
    for (const char* option : options) {
      if (value == option) return "";
      list += list.empty() ? "" : " | ";
      list += option;
    }
    return "expected " + list;
  };
  switch (kind) {
    case Kind::DType: return oneOf({"f32", "f16", "bf16"});
    case Kind::Interleaved: return oneOf({"0", "1"});
    case Kind::Activation: return oneOf({"silu", "gelu", "gelu_tanh", "relu"});
    case Kind::BinaryOp: return oneOf({"add", "sub", "mul", "div"});
    default: break;
  }
  int64_t number = 0;
  if (!parseInt(value, number)) return "expected an integer";
  switch (kind) {
    case Kind::Threads:
      if (number < 32 || number > 1024 || number % 32 != 0) return "expected a multiple of 32 in [32, 1024]";
      return "";
    case Kind::HeadDim:
      if (number < 8 || number > 512 || number % 2 != 0) return "expected an even number in [8, 512]";
      return "";
    case Kind::BlockSize:
      if (number < 1 || number > 256 || (number & (number - 1)) != 0) return "expected a power of two in [1, 256]";
      return "";
    case Kind::Partition:
      if (number < 0 || (number > 0 && block > 0 && number % block != 0)) {
        return "expected 0 (one pass) or a positive multiple of the block size " + std::to_string(block);
      }
      return "";
    case Kind::QPerKv:
    case Kind::QueryTile:
      if (number < 1) return "expected a positive integer";
      return "";
    default:
      return "";
  }
}

std::string knownKernels() {
  std::string list;
  for (const KernelSpec& spec : kernelCatalog()) list += (list.empty() ? "" : ", ") + spec.name;
  return list;
}

std::string paramNames(const KernelSpec& spec) {
  std::string list;
  for (const KernelParamSpec& param : spec.params) list += (list.empty() ? "" : ", ") + param.name;
  return list.empty() ? "none" : list;
}

}  // namespace

const std::vector<KernelSpec>& kernelCatalog() {
  static const std::vector<KernelSpec> catalog = buildCatalog();
  return catalog;
}

const KernelSpec& kernelSpec(std::string_view kernel) {
  for (const KernelSpec& spec : kernelCatalog()) {
    if (spec.name == kernel) return spec;
  }
  fail("unknown kernel '", kernel, "' (known: ", knownKernels(), ")");
}

void validateKernelKey(const KernelKey& key) {
  const KernelSpec& spec = kernelSpec(key.kernel);
  if (key.params.size() != spec.params.size()) {
    fail("kernel ", key.kernel, ": the key '", key.str(), "' has ", key.params.size(), " parameters, expected ",
         spec.params.size(), " (", paramNames(spec), ")");
  }
  int64_t block = 0;
  for (size_t i = 0; i < spec.params.size(); ++i) {
    if (key.params[i].first != spec.params[i].name) {
      fail("kernel ", key.kernel, ": parameter ", i + 1, " is '", key.params[i].first, "', expected '",
           spec.params[i].name, "' (order: ", paramNames(spec), ")");
    }
    if (spec.params[i].kind == Kind::BlockSize) parseInt(key.params[i].second, block);
  }
  for (size_t i = 0; i < spec.params.size(); ++i) {
    const std::string problem = checkValue(spec.params[i].kind, key.params[i].second, block);
    if (!problem.empty()) {
      fail("kernel ", key.kernel, ": parameter ", spec.params[i].name, "='", key.params[i].second, "': ", problem);
    }
  }
}

KernelKey makeKernelKey(std::string_view kernel, const std::map<std::string, std::string>& values) {
  const KernelSpec& spec = kernelSpec(kernel);
  for (const auto& [name, value] : values) {
    bool known = false;
    for (const KernelParamSpec& param : spec.params) known = known || param.name == name;
    if (!known) fail("kernel ", kernel, ": unknown parameter '", name, "' (parameters: ", paramNames(spec), ")");
  }
  KernelKey key;
  key.kernel = spec.name;
  for (const KernelParamSpec& param : spec.params) {
    auto given = values.find(param.name);
    std::string value;
    if (given != values.end()) {
      value = given->second;
    } else if (param.defaultValue.starts_with('@')) {
      const std::string source = param.defaultValue.substr(1);
      auto sourceGiven = values.find(source);
      value = sourceGiven != values.end() ? sourceGiven->second : key.param(source);
    } else {
      value = param.defaultValue;
    }
    key.params.emplace_back(param.name, value);
  }
  validateKernelKey(key);
  return key;
}

std::vector<KernelKey> kernelGrid() {
  const std::vector<std::string> dtypes = {"f32", "f16", "bf16"};
  const std::vector<std::string> headDims = {"64", "80", "96", "112", "128", "256"};
  const std::vector<std::string> blocks = {"8", "16", "32"};
  const std::vector<std::string> groups = {"1", "2", "4", "8"};
  std::vector<KernelKey> grid;
  std::set<std::string> seen;
  auto add = [&](std::string_view kernel, const std::map<std::string, std::string>& values) {
    KernelKey key = makeKernelKey(kernel, values);
    if (seen.insert(key.str()).second) grid.push_back(std::move(key));
  };
  for (const std::string& dtype : dtypes) {
    for (const std::string& headDim : headDims) {
      for (const std::string& block : blocks) {
        for (const std::string& group : groups) {
          const std::map<std::string, std::string> shape = {{"dtype", dtype}, {"head_dim", headDim}, {"block", block}, {"q_per_kv", group}};
          std::map<std::string, std::string> onePass = shape;
          onePass["partition"] = "0";
          add("paged_attention_decode", onePass);
          add("paged_attention_decode", shape);  // partitioned (the catalog's default partition)
          add("paged_attention_prefill", shape);
        }
      }
      add("paged_attention_reduce", {{"dtype", dtype}, {"head_dim", headDim}});
    }
  }
  for (const std::string& dtype : dtypes) {
    for (const std::string& cache : dtypes) add("kv_cache_write", {{"dtype", dtype}, {"cache", cache}});
  }
  add("copy_blocks", {});
  add("swap_blocks", {});
  for (const std::string& dtype : dtypes) {
    add("rms_norm", {{"dtype", dtype}});
    add("layer_norm", {{"dtype", dtype}});
    for (const char* interleaved : {"0", "1"}) add("rope", {{"dtype", dtype}, {"interleaved", interleaved}});
    for (const char* act : {"silu", "gelu", "gelu_tanh", "relu"}) add("activation", {{"dtype", dtype}, {"act", act}});
    add("embedding", {{"dtype", dtype}});
  }
  add("softmax_rows", {});
  add("argmax_rows", {});
  add("top_k_top_p_filter", {});
  for (const std::string& dtype : dtypes) {
    add("strided_copy", {{"dtype", dtype}});
    for (const char* op : {"add", "sub", "mul", "div"}) add("elementwise_binary", {{"dtype", dtype}, {"op", op}});
    for (const std::string& out : dtypes) add("cast", {{"in", dtype}, {"out", out}});
  }
  return grid;
}

}  // namespace pagedc
