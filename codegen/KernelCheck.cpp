// `pagedc kernels check`: the shared machinery (buffers, loading, the reference interpreter, the
// schedule loop and the comparison) and the report.
#include "codegen/KernelCheck.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <ostream>
#include <set>
#include <sstream>
#include <utility>

#include "codegen/KernelCheckSupport.h"
#include "ir/Error.h"
#include "ir/HalfFloat.h"
#include "ir/Interpreter.h"
#include "ir/TypeInference.h"
#include "runtime/cuda/EmulatedKernelAbi.h"
#include "runtime/kernels/KernelCatalog.h"

namespace pagedc {

namespace kernelcheck {

// ---- elements -------------------------------------------------------------------------------------

DType floatDType(const std::string& name) {
  if (name == "f32") return DType::F32;
  if (name == "f16") return DType::F16;
  if (name == "bf16") return DType::BF16;
  fail("kernel check: '", name, "' is not a floating-point element type (f32, f16, bf16)");
}

float roundTo(DType dtype, float v) {
  switch (dtype) {
    case DType::F16: return f16ToFloat(floatToF16(v));
    case DType::BF16: return bf16ToFloat(floatToBf16(v));
    default: return v;
  }
}

std::vector<float> randomRounded(std::mt19937_64& rng, DType dtype, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> out(n);
  for (float& v : out) v = roundTo(dtype, dist(rng));
  return out;
}

// ---- GuardedBuffer --------------------------------------------------------------------------------

namespace {
size_t pageSize() {
  static const size_t size = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}
}  // namespace

GuardedBuffer::GuardedBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  // 16-byte alignment (what vector accesses need) keeps the end within 15 bytes of the guard page.
  const size_t rounded = (bytes + 15) / 16 * 16;
  const size_t dataBytes = (rounded + pageSize() - 1) / pageSize() * pageSize();
  mappingBytes_ = dataBytes + 2 * pageSize();
  mapping_ = ::mmap(nullptr, mappingBytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping_ == MAP_FAILED) {
    mapping_ = nullptr;
    fail("kernel check: cannot map ", bytes, " bytes");
  }
  auto* base = static_cast<std::byte*>(mapping_);
  if (::mprotect(base + pageSize(), dataBytes, PROT_READ | PROT_WRITE) != 0) {
    ::munmap(mapping_, mappingBytes_);
    mapping_ = nullptr;
    fail("kernel check: cannot map ", bytes, " bytes");
  }
  data_ = base + pageSize() + dataBytes - rounded;
}

GuardedBuffer::~GuardedBuffer() {
  if (mapping_) ::munmap(mapping_, mappingBytes_);
}

GuardedBuffer::GuardedBuffer(GuardedBuffer&& other) noexcept { *this = std::move(other); }

GuardedBuffer& GuardedBuffer::operator=(GuardedBuffer&& other) noexcept {
  if (this != &other) {
    if (mapping_) ::munmap(mapping_, mappingBytes_);
    mapping_ = std::exchange(other.mapping_, nullptr);
    mappingBytes_ = std::exchange(other.mappingBytes_, 0);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

GuardedBuffer GuardedBuffer::ofFloats(DType dtype, const std::vector<float>& values) {
  GuardedBuffer buffer(values.size() * dtypeSize(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::F32: static_cast<float*>(buffer.data())[i] = values[i]; break;
      case DType::F16: static_cast<uint16_t*>(buffer.data())[i] = floatToF16(values[i]); break;
      case DType::BF16: static_cast<uint16_t*>(buffer.data())[i] = floatToBf16(values[i]); break;
      default: fail("kernel check: cannot store floats as ", dtypeName(dtype));
    }
  }
  return buffer;
}

GuardedBuffer GuardedBuffer::ofInts(const std::vector<int64_t>& values) { return ofPod(values); }

std::vector<float> GuardedBuffer::readFloats(DType dtype, size_t count) const {
  if (count * dtypeSize(dtype) > bytes_) fail("kernel check: reading ", count, " elements from a buffer of ", bytes_, " bytes");
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) {
    switch (dtype) {
      case DType::F32: out[i] = static_cast<const float*>(data_)[i]; break;
      case DType::F16: out[i] = f16ToFloat(static_cast<const uint16_t*>(data_)[i]); break;
      case DType::BF16: out[i] = bf16ToFloat(static_cast<const uint16_t*>(data_)[i]); break;
      case DType::I64: out[i] = static_cast<float>(static_cast<const int64_t*>(data_)[i]); break;
      default: fail("kernel check: cannot read ", dtypeName(dtype), " as floats");
    }
  }
  return out;
}

std::vector<uint8_t> GuardedBuffer::readBytes() const {
  std::vector<uint8_t> out(bytes_);
  if (bytes_) std::memcpy(out.data(), data_, bytes_);
  return out;
}

// ---- LoadedKernel -----------------------------------------------------------------------------------

LoadedKernel::LoadedKernel(const std::string& libraryPath, const std::string& keyText, size_t paramsBytes) {
  ::dlerror();
  handle_ = ::dlopen(libraryPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) {
    const char* why = ::dlerror();
    fail("cannot load the host kernel library ", libraryPath, " of ", keyText, ": ", why ? why : "dlopen failed");
  }
  auto keyOf = reinterpret_cast<PagedcEmulatedKeyFn>(::dlsym(handle_, kEmulatedKeyEntry));
  auto sizeOf = reinterpret_cast<PagedcEmulatedParamsSizeFn>(::dlsym(handle_, kEmulatedParamsSizeEntry));
  launch_ = ::dlsym(handle_, kEmulatedLaunchEntry);
  if (!keyOf || !sizeOf || !launch_) {
    ::dlclose(handle_);
    fail("the host kernel library ", libraryPath, " lacks the entry points of runtime/cuda/EmulatedKernelAbi.h");
  }
  key_ = keyOf();
  if (key_ != keyText || sizeOf() != paramsBytes) {
    ::dlclose(handle_);
    fail("the host kernel library ", libraryPath, " holds ", key_, " (params of ", sizeOf(), " bytes), not ", keyText, " (", paramsBytes, " bytes)");
  }
}

LoadedKernel::~LoadedKernel() {
  if (handle_) ::dlclose(handle_);
}

void LoadedKernel::launch(LaunchDims grid, unsigned threads, const void* params, const Schedule& schedule) const {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return;
  PagedcEmulatedLaunch launch{{grid.x, grid.y, grid.z}, {threads, 1, 1}, params, schedule.kind, schedule.seed};
  char error[4096] = {};
  if (reinterpret_cast<PagedcEmulatedLaunchFn>(launch_)(&launch, error, sizeof(error)) != 0)
    fail(key_, " (grid ", grid.x, "x", grid.y, "x", grid.z, ", ", threads, " threads, schedule ", schedule.name, "): ", error);
}

// ---- reference ------------------------------------------------------------------------------------

Tensor f32Tensor(std::vector<int64_t> shape, const std::vector<float>& values) { return Tensor::fromValues(DType::F32, std::move(shape), values); }
Tensor i64Tensor(std::vector<int64_t> shape, const std::vector<int64_t>& values) { return Tensor::fromValues(DType::I64, std::move(shape), values); }
std::vector<float> floatsOf(const Tensor& t) {
  Tensor c = t.convertTo(DType::F32);
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numElements());
}

std::vector<Tensor> runReferenceOp(const std::string& opName, const std::vector<Tensor>& inputs, AttrMap attrs, size_t numResults) {
  Graph graph;
  std::vector<Value*> operands;
  std::map<std::string, Tensor> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].isNull()) {
      operands.push_back(nullptr);
      continue;
    }
    Shape shape;
    for (int64_t d : inputs[i].shape()) shape.emplace_back(d);
    const std::string name = "in" + std::to_string(i);
    operands.push_back(graph.addInput(name, TensorType(inputs[i].dtype(), shape)));
    feeds[name] = inputs[i];
  }
  std::vector<std::string> resultNames;
  for (size_t i = 0; i < numResults; ++i) resultNames.push_back("out" + std::to_string(i));
  Op* op = graph.appendOp(opName, operands, std::move(attrs), resultNames);
  inferTypes(graph);
  graph.outputs = op->results;
  Interpreter interpreter(graph);
  auto results = interpreter.run(feeds);
  std::vector<Tensor> outputs;
  for (const Value* result : op->results) outputs.push_back(results.at(result->name));
  return outputs;
}

KernelKey companionKey(const std::string& kernel, const std::map<std::string, std::string>& values) { return makeKernelKey(kernel, values); }

// ---- comparing ------------------------------------------------------------------------------------

namespace {

// The spacing of `dtype`'s values at |x| (at least that of its smallest normal values).
double ulpOf(DType dtype, double x) {
  const int mantissaBits = dtype == DType::F16 ? 10 : dtype == DType::BF16 ? 7 : 23;
  const int minExponent = dtype == DType::F16 ? -14 : -126;
  const int exponent = x == 0 ? minExponent : std::max(minExponent, std::ilogb(x));
  return std::ldexp(1.0, exponent - mantissaBits);
}

std::string describeTolerance(DType dtype, Tolerance t) {
  std::ostringstream out;
  if (isInteger(dtype) || (t.ulps == 0 && t.absolute == 0)) return "exact";
  if (t.ulps > 0) out << t.ulps << " ulp";
  if (t.ulps > 0 && t.absolute > 0) out << " + ";
  if (t.absolute > 0) out << t.absolute;
  return out.str();
}

std::string dtypeLabel(DType dtype) { return std::string(dtypeName(dtype)); }

}  // namespace

CheckContext::CheckContext(const KernelKey& key, const KernelCheckOptions& options, const HostKernelBuilder& builder, KernelCheckResult& result)
    : key_(key), options_(options), builder_(builder), result_(result), rng_(options.seed) {
  const int count = std::max(1, options.schedules);
  for (int i = 0; i < count; ++i) {
    if (i == 0) {
      schedules_.push_back({kEmulatedScheduleForward, 0, "forward"});
    } else if (i == 1) {
      schedules_.push_back({kEmulatedScheduleReverse, 0, "reverse"});
    } else {
      const unsigned long long seed = options.seed * 1000003ull + static_cast<unsigned long long>(i);
      schedules_.push_back({kEmulatedScheduleShuffled, seed, "shuffled(seed " + std::to_string(seed) + ")"});
    }
  }
  for (const Schedule& s : schedules_) result_.schedules.push_back(s.name);
}

const LoadedKernel& CheckContext::kernel(const KernelKey& key, size_t paramsBytes) {
  const std::string text = key.str();
  auto it = loaded_.find(text);
  if (it != loaded_.end()) return *it->second;
  const HostKernelLibrary library = builder_.build(key);
  result_.buildSeconds += library.compileSeconds;
  result_.variants.push_back(text);
  auto loaded = std::make_unique<LoadedKernel>(library.path, text, paramsBytes);
  return *loaded_.emplace(text, std::move(loaded)).first->second;
}

void CheckContext::verify(const std::string& caseName, const std::vector<ExpectedOutput>& expectedIn,
                          const std::function<RunOutputs(const Schedule&)>& run) {
  std::vector<ExpectedOutput> expected = expectedIn;
  if (options_.tamperReference)
    for (ExpectedOutput& e : expected) options_.tamperReference(e.name, e.values);
  std::vector<RunOutputs> runs;
  for (const Schedule& schedule : schedules_) {
    const auto start = std::chrono::steady_clock::now();
    RunOutputs outputs = run(schedule);
    result_.runSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options_.tamperKernelOutput)
      for (auto& [name, values] : outputs) options_.tamperKernelOutput(name, values);
    runs.push_back(std::move(outputs));
  }
  for (const ExpectedOutput& want : expected) {
    KernelOutputCheck check;
    check.caseName = caseName;
    check.output = want.name;
    check.dtype = dtypeLabel(want.dtype);
    check.elements = static_cast<int64_t>(want.values.size());
    check.tolerance = describeTolerance(want.dtype, want.tolerance);
    for (size_t s = 0; s < runs.size(); ++s) {
      auto found = runs[s].find(want.name);
      if (found == runs[s].end()) fail("kernel check case '", caseName, "' produced no output ", want.name);
      const std::vector<float>& got = found->second;
      if (got.size() != want.values.size())
        fail("kernel check case '", caseName, "' output ", want.name, " has ", got.size(), " elements, the reference ", want.values.size());
      int64_t bad = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        const double g = got[i], w = want.values[i];
        bool ok;
        if (std::isnan(w) || std::isnan(g)) {
          ok = std::isnan(w) && std::isnan(g);
        } else if (std::isinf(w) || std::isinf(g)) {
          ok = g == w;
        } else {
          const double diff = std::fabs(g - w);
          check.maxAbsError = std::max(check.maxAbsError, diff);
          if (std::fabs(w) >= 1e-3) check.maxRelError = std::max(check.maxRelError, diff / std::fabs(w));
          ok = isInteger(want.dtype) ? g == w : diff <= want.tolerance.ulps * ulpOf(want.dtype, std::fabs(w)) + want.tolerance.absolute;
        }
        if (!ok && bad++ == 0 && check.firstMismatch.empty()) {
          std::ostringstream first;
          first << "[" << i << "] got " << std::setprecision(9) << g << " want " << w << " (schedule " << schedules_[s].name << ")";
          check.firstMismatch = first.str();
        }
      }
      check.mismatches = std::max(check.mismatches, bad);
      if (s > 0) {
        const std::vector<float>& first = runs[0].at(want.name);
        int64_t differing = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          if (std::memcmp(&got[i], &first[i], sizeof(float)) != 0 && differing++ == 0 && check.scheduleDifference.empty()) {
            std::ostringstream where;
            where << "schedule " << schedules_[s].name << " differs from " << schedules_[0].name << " at [" << i << "]: " << std::setprecision(9)
                  << got[i] << " vs " << first[i];
            check.scheduleDifference = where.str();
          }
        }
        check.scheduleDifferences = std::max(check.scheduleDifferences, differing);
      }
    }
    result_.outputs.push_back(std::move(check));
  }
}

}  // namespace kernelcheck

bool KernelCheckResult::passed() const {
  if (!error.empty() || outputs.empty()) return false;
  for (const KernelOutputCheck& output : outputs)
    if (!output.passed()) return false;
  return true;
}

KernelCheckResult checkKernel(const KernelKey& key, const KernelCheckOptions& options) {
  static const std::set<std::string> kChecked = {
      "paged_attention_decode", "paged_attention_reduce", "paged_attention_prefill", "kv_cache_write", "copy_blocks", "swap_blocks",
      "rms_norm", "layer_norm", "rope", "activation", "embedding", "softmax_rows", "argmax_rows", "top_k_top_p_filter",
      "strided_copy", "elementwise_binary", "cast"};
  if (!kChecked.count(key.kernel)) fail("pagedc kernels check has no check for kernel '", key.kernel, "' (", key.str(), ")");
  KernelCheckResult result;
  result.key = key.str();
  try {
    HostKernelBuilder builder(options.build);
    kernelcheck::CheckContext context(key, options, builder, result);
    if (!kernelcheck::checkAttentionKernel(context) && !kernelcheck::checkOtherKernel(context))
      fail("pagedc kernels check has no check for kernel '", key.kernel, "'");
  } catch (const Error& error) {
    result.error = error.what();
  }
  return result;
}

void printKernelCheck(std::ostream& out, const KernelCheckResult& result) {
  out << result.key << "\n";
  if (result.variants.size() > 1) {
    out << "  variants:";
    for (const std::string& v : result.variants) out << " " << v;
    out << "\n";
  }
  out << "  schedules:";
  for (const std::string& s : result.schedules) out << " " << s;
  out << std::fixed << std::setprecision(2) << "; host compile " << result.buildSeconds << " s"
      << (result.buildSeconds == 0 && !result.variants.empty() ? " (cached)" : "") << ", emulated runs " << result.runSeconds << " s\n";
  out.unsetf(std::ios::floatfield);
  for (const KernelOutputCheck& o : result.outputs) {
    std::ostringstream line;
    line << "  " << std::left << std::setw(28) << o.caseName << " " << std::setw(12) << o.output << " " << std::setw(5) << o.dtype << std::right
         << std::setw(8) << o.elements << " elts  max abs " << std::scientific << std::setprecision(2) << o.maxAbsError << "  max rel "
         << o.maxRelError << "  tol " << o.tolerance << "  " << (o.passed() ? "PASS" : "FAIL");
    out << line.str() << "\n";
    if (o.mismatches > 0) out << "      " << o.mismatches << " of " << o.elements << " elements outside the tolerance; first " << o.firstMismatch << "\n";
    if (o.scheduleDifferences > 0) out << "      " << o.scheduleDifferences << " elements differ between schedules (a race): " << o.scheduleDifference << "\n";
  }
  if (!result.error.empty()) out << "  error: " << result.error << "\n";
  out << (result.passed() ? "PASS" : "FAIL") << " " << result.key << "\n";
}

}  // namespace pagedc
