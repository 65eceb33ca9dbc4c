// oneDNN matmul with pre-packed weights and a per-shape primitive cache.
#include "runtime/cpu/Gemm.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "ir/Error.h"
#include "ir/HalfFloat.h"

namespace pagedc::cpu {

namespace {
using dnnl::memory;

memory::data_type dnnlType(DType dtype) {
  if (dtype == DType::F32) return memory::data_type::f32;
  if (dtype == DType::BF16) return memory::data_type::bf16;
  fail("GEMM weights must be f32 or bf16, got ", dtypeName(dtype));
}

// The layout oneDNN prefers for a weight: asked with format "any" for an M of 16. The choice does
// not depend on M (checked for M = 1..512 on the shapes of docs/PERF.md), and every primitive is
// created with this exact layout, so a weight is packed once.
memory::desc packedDesc(const dnnl::engine& engine, int64_t k, int64_t n, DType dtype) {
  memory::desc src({16, k}, dnnlType(dtype), memory::format_tag::ab);
  memory::desc weights({k, n}, dnnlType(dtype), memory::format_tag::any);
  memory::desc dst({16, n}, memory::data_type::f32, memory::format_tag::ab);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), engine).weights_desc();
}

struct ShapeKey {
  int64_t m, k, n;
  DType dtype;
  bool operator==(const ShapeKey&) const = default;
};
struct ShapeKeyHash {
  size_t operator()(const ShapeKey& key) const {
    return std::hash<int64_t>()(key.m) ^ (std::hash<int64_t>()(key.k) * 31) ^ (std::hash<int64_t>()(key.n) * 1009) ^ static_cast<size_t>(key.dtype);
  }
};

// A primitive plus the memory objects it runs on; the data handles are rebound per call.
struct CachedMatmul {
  dnnl::matmul primitive;
  memory src, dst, scratchpad;
  std::string implementation;
};
}  // namespace

struct PackedWeight::Impl {
  memory packed;
};

struct GemmContext::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::unordered_map<ShapeKey, CachedMatmul, ShapeKeyHash> cache;
  std::vector<uint16_t> scratch;  // activations rounded to bf16
  // oneDNN's temporary space, owned here (scratchpad mode "user") so executing never allocates.
  std::vector<std::byte> scratchpad;

  CachedMatmul& matmulFor(int64_t m, const PackedWeight& weight) {
    ShapeKey key{m, weight.k(), weight.n(), weight.dtype()};
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    memory::desc src({m, weight.k()}, dnnlType(weight.dtype()), memory::format_tag::ab);
    memory::desc dst({m, weight.n()}, memory::data_type::f32, memory::format_tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weight.impl_->packed.get_desc(), dst), attr, engine);
    CachedMatmul entry{dnnl::matmul(pd), memory(src, engine, DNNL_MEMORY_NONE), memory(dst, engine, DNNL_MEMORY_NONE),
                       memory(pd.scratchpad_desc(), engine, DNNL_MEMORY_NONE), pd.impl_info_str()};
    if (scratchpad.size() < pd.scratchpad_desc().get_size()) scratchpad.resize(pd.scratchpad_desc().get_size());
    return cache.emplace(key, std::move(entry)).first->second;
  }
};

PackedWeight::PackedWeight(GemmContext& context, const void* weight, DType dtype, int64_t k, int64_t n, bool transposed)
    : impl_(std::make_unique<Impl>()), k_(k), n_(n), dtype_(dtype) {
  if (k <= 0 || n <= 0) fail("GEMM weight must have positive dimensions, got [", k, ", ", n, "]");
  dnnl::engine& engine = context.impl_->engine;
  memory::desc plain({k, n}, dnnlType(dtype), transposed ? memory::format_tag::ba : memory::format_tag::ab);
  impl_->packed = memory(packedDesc(engine, k, n, dtype), engine);
  memory source(plain, engine, const_cast<void*>(weight));
  dnnl::reorder(source, impl_->packed).execute(context.impl_->stream, source, impl_->packed);
  context.impl_->stream.wait();
}

PackedWeight::~PackedWeight() = default;

size_t PackedWeight::byteSize() const { return impl_->packed.get_desc().get_size(); }

GemmContext::GemmContext() : impl_(std::make_unique<Impl>()) {}
GemmContext::~GemmContext() = default;

void GemmContext::multiply(const float* a, int64_t m, const PackedWeight& weight, float* c) {
  // Rows go in calls of at most kMaxRowsPerCall, so at most that many primitives exist per weight
  // shape (each costs ~0.2 ms to create and some memory); a row's result does not depend on the
  // call's M, so splitting changes no bits.
  for (int64_t row = 0; row < m; row += kMaxRowsPerCall) {
    const int64_t rows = std::min(kMaxRowsPerCall, m - row);
    multiplyRows(a + row * weight.k(), rows, weight, c + row * weight.n());
  }
}

void GemmContext::multiplyRows(const float* a, int64_t m, const PackedWeight& weight, float* c) {
  CachedMatmul& mm = impl_->matmulFor(m, weight);
  const void* src = a;
  if (weight.dtype() == DType::BF16) {
    size_t count = static_cast<size_t>(m * weight.k());
    if (impl_->scratch.size() < count) impl_->scratch.resize(count);
    uint16_t* rounded = impl_->scratch.data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) rounded[i] = floatToBf16(a[i]);
    src = rounded;
  }
  mm.src.set_data_handle(const_cast<void*>(src));
  mm.dst.set_data_handle(c);
  mm.scratchpad.set_data_handle(impl_->scratchpad.data());
  // The C entry point takes a plain array; the C++ wrapper would build a vector per call.
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, mm.src.get()},
                                  {DNNL_ARG_WEIGHTS, weight.impl_->packed.get()},
                                  {DNNL_ARG_DST, mm.dst.get()},
                                  {DNNL_ARG_SCRATCHPAD, mm.scratchpad.get()}};
  if (dnnl_primitive_execute(mm.primitive.get(), impl_->stream.get(), 4, args) != dnnl_success)
    fail("oneDNN matmul [", m, ", ", weight.k(), "] x [", weight.k(), ", ", weight.n(), "] failed");
  impl_->stream.wait();
}

std::string GemmContext::implementationName(int64_t m, const PackedWeight& weight) { return impl_->matmulFor(m, weight).implementation; }

}  // namespace pagedc::cpu
