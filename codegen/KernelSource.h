// The CUDA source of one kernel variant, from the template headers embedded in the binary at build
// time (cmake/EmbedTemplates.cmake), so the compiler JIT-compiles exactly the sources it was built
// with and needs no install tree. NVRTC compiles the non-flattened source with the embedded headers
// as its header list; the flattened one is self-contained text a user can give to nvcc.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "runtime/kernels/KernelKey.h"

namespace pagedc {

// The variant's translation unit: a comment naming the key, the template's header and an explicit
// instantiation of the kernel (so nvcc and the host compiler emit it; NVRTC is also given the name
// expression). flatten=true inlines every embedded header it includes, once each, in place.
std::string emitKernelSource(const KernelKey& key, bool flatten);

// The same for several variants in one translation unit (NVRTC compiles a batch in one program,
// parsing the headers once). Every key's header is included once.
std::string emitKernelSource(const std::vector<KernelKey>& keys, bool flatten);

// What NVRTC resolves to the variant's lowered (mangled) entry name: "&pagedc::rms_norm<float, 256>".
std::string kernelNameExpression(const KernelKey& key);

// The embedded headers by path relative to templates/ ("pagedc_cuda.cuh", "kernel_params.h",
// "paged_attention.cuh", "emulation/cuda_emulation.h", ...), sorted by path.
const std::vector<std::pair<std::string, std::string>>& embeddedTemplateHeaders();
// The text of one embedded header; throws Error listing the embedded ones when it is absent.
const std::string& embeddedTemplateHeader(const std::string& path);

// SHA-256 (hex) over every embedded header's path and text: part of every kernel cache key, so
// changing any template invalidates every cached cubin.
std::string templateSourceHash();

}  // namespace pagedc
