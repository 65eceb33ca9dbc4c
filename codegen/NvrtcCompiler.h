// CUDA C++ -> PTX with NVRTC (no GPU needed): one program per batch of kernel variants, each
// variant's lowered (mangled) entry name resolved through an NVRTC name expression.
//
// Options: --std=c++17 and --gpu-architecture=compute_XX, as the templates' contract says
// (COMMON rules / docs/KERNELS.md), and nothing that would let NVRTC accept what nvcc rejects on the
// flattened source (so no -default-device). --use_fast_math is off by default: it turns expf and
// division into approximations and flushes denormals, which moves softmax and normalisation results
// away from the CPU reference the kernels are checked against, for no gain on kernels that are
// memory-bound. -lineinfo is optional (profilers map SASS back to template lines with it).
#pragma once

#include <string>
#include <vector>

#include "runtime/kernels/KernelKey.h"

namespace pagedc {

struct NvrtcOptions {
  int ptxArch = 80;       // the virtual architecture (compute_80): what the PTX may use
  bool lineInfo = false;  // -lineinfo
  bool fastMath = false;  // --use_fast_math (see above)
  // -dlto: NVRTC emits LTO IR and nvJitLink (-lto) optimises it as one whole program for the real
  // architecture. From PTX, nvJitLink compiles in relocatable mode (as `ptxas -c`), which keeps a
  // divergence slow path behind every shfl.sync: the attention kernels then spill 36-352 bytes on
  // sm_80 under their 128-register cap, and nothing with LTO (docs/KERNELS.md has the figures).
  bool lto = true;
  std::vector<std::string> extra;  // appended as given

  // The full NVRTC argument list these options give.
  std::vector<std::string> arguments() const;
  // The arguments joined with spaces (for messages and cache keys).
  std::string text() const;
};

struct NvrtcOutput {
  std::string ptx;    // when !options.lto
  std::string ltoIr;  // when options.lto: NVRTC's LTO IR (binary), for nvJitLink -lto
  std::vector<std::string> loweredNames;  // one per name expression, in order
  std::string log;                        // NVRTC's log (warnings), may be empty
  double seconds = 0;                     // wall time of nvrtcCompileProgram and the queries
};

class NvrtcCompiler {
public:
  explicit NvrtcCompiler(NvrtcOptions options = {});

  // One program holding every key's instantiation (emitKernelSource(keys, false), the embedded
  // headers as NVRTC's header list). Throws Error naming the variant(s), the options, and the
  // source lines around each error line of NVRTC's log.
  NvrtcOutput compile(const std::vector<KernelKey>& keys) const;

  // Any source, with the embedded template headers available to #include. `variant` names what is
  // compiled in error messages.
  NvrtcOutput compileSource(const std::string& source, const std::vector<std::string>& nameExpressions,
                            const std::string& variant) const;

  const NvrtcOptions& options() const { return options_; }

  // NVRTC's version ("13.0"); "" in a build without the CUDA toolkit.
  static std::string version();

private:
  NvrtcOptions options_;
};

// True when this build has NVRTC and nvJitLink (PAGEDC_HAVE_CUDA_TOOLKIT).
bool haveCudaToolkit();
// Throws Error "the CUDA toolkit (NVRTC, nvJitLink) is not part of this build: <what> needs it"
// when the build has none.
void requireCudaToolkit(const std::string& what);

// Rewrites a compiler log so each "file(line): error ..." line is followed by the source lines
// around it (two before, two after, with line numbers and a '>' marker on the error line).
// `files` maps the names the log uses to their text (the program and the headers). At most
// `maxErrors` errors are annotated; the rest of the log is kept as it is.
std::string annotateCompileLog(const std::string& log, const std::vector<std::pair<std::string, std::string>>& files,
                               size_t maxErrors = 8);

}  // namespace pagedc
