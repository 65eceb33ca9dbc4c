// A kernel specialisation key: the template a CUDA kernel comes from and every template argument
// that changes its code. The key's text (str()) names a variant everywhere: on the command line
// (`pagedc kernels build KEY`), in the artifact's kernel manifest and, hashed with the template
// sources, the compile options, the NVRTC version and the target architecture, in the JIT cache's
// entry names (codegen/KernelCache.h).
//
// Text form: "kernel:name=value,name=value,..." with the parameters in template order, e.g.
//   paged_attention_decode:dtype=bf16,cache=bf16,head_dim=128,block=16,q_per_kv=4,threads=128,partition=512
// The parameters, their defaults and their validation come from the catalog (KernelCatalog.h).
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pagedc {

struct KernelKey {
  std::string kernel;  // the template's name without namespace: "paged_attention_decode"
  // The template arguments in template order, by name (values in their text form: "bf16", "128",
  // "silu"); a key built by parse() or makeKernelKey() has every parameter of the kernel.
  std::vector<std::pair<std::string, std::string>> params;

  // "kernel:name=value,..." (the canonical text; parse(str()) gives back the same key).
  std::string str() const;
  // Parses "kernel" or "kernel:name=value,..." (parameters in any order, each at most once),
  // fills the catalog's defaults and validates every value; throws pagedc::Error naming the
  // kernel and the bad part.
  static KernelKey parse(std::string_view text);

  // A parameter's value; throws Error naming the key and the parameter when it has none.
  std::string param(std::string_view name) const;
  // The value as an integer (head_dim, block, threads, ...); throws Error when it is not one.
  int64_t intParam(std::string_view name) const;
  bool hasParam(std::string_view name) const;

  // The C++ instantiation, e.g. "pagedc::paged_attention_decode<pagedc::bf16, pagedc::bf16, 128,
  // 16, 4, 128, 512>": dtypes become float / pagedc::f16 / pagedc::bf16, interleaved becomes
  // false / true, act and op their integer codes. Throws Error for a kernel not in the catalog.
  std::string templateExpression() const;
  std::string header() const;      // the template's header: "paged_attention.cuh" (from the catalog)
  std::string paramsType() const;  // "pagedc::PagedAttentionParams" (from the catalog)

  auto operator<=>(const KernelKey&) const = default;
};

}  // namespace pagedc
