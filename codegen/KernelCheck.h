// `pagedc kernels check`: runs a kernel variant on the CPU, through the same emitted source a GPU
// would compile (HostKernelBuilder + the CUDA emulation), on random inputs for its kind of kernel,
// under several thread schedules, and compares every output with the reference: the IR op's own
// implementation run by the interpreter (paged_attention, kv_cache_write, rms_norm, layer_norm,
// rope, silu/gelu/Relu/gated_act, Gather, Transpose, Add/Sub/Mul/Div, Cast) or, for kernels with
// no IR op (copy_blocks, swap_blocks, softmax_rows, argmax_rows, top_k_top_p_filter), a direct
// computation of the contract in kernel_params.h. Outputs of different schedules must also be
// bitwise equal (no kernel uses atomics, so a difference is a race).
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "codegen/HostKernelBuilder.h"
#include "runtime/kernels/KernelKey.h"

namespace pagedc {

struct KernelCheckOptions {
  int schedules = 3;  // forward, reverse, then shuffled ones (seeded from `seed`)
  uint64_t seed = 1;  // of the random inputs and of the shuffled schedules
  HostKernelBuildOptions build;
  // Test hooks: change an output of the kernel (per schedule) or of the reference before they are
  // compared, to show that a wrong kernel or a wrong reference fails the check.
  std::function<void(const std::string& output, std::vector<float>& values)> tamperKernelOutput;
  std::function<void(const std::string& output, std::vector<float>& values)> tamperReference;
};

// One output of one case, compared with the reference over every schedule.
struct KernelOutputCheck {
  std::string caseName;  // "mixed batch", "sliding window + softcap", ...
  std::string output;    // "out", "key_cache", ...
  std::string dtype;     // of the output: "f16"
  int64_t elements = 0;
  int64_t mismatches = 0;   // elements outside the tolerance, in the worst schedule
  double maxAbsError = 0;   // over all schedules and finite elements
  double maxRelError = 0;   // |got - want| / |want| over elements with |want| >= 1e-3
  std::string tolerance;    // "1 ulp + 1e-05"
  std::string firstMismatch;  // "[12] got 0.5 want 0.25 (schedule reverse)"
  int64_t scheduleDifferences = 0;  // elements differing bitwise from the first schedule
  std::string scheduleDifference;   // where, for the message
  bool passed() const { return mismatches == 0 && scheduleDifferences == 0; }
};

struct KernelCheckResult {
  std::string key;                 // the variant checked (KernelKey::str())
  std::vector<std::string> variants;  // every variant launched (a split decode also runs the reduce)
  std::vector<std::string> schedules;  // "forward", "reverse", "shuffled(seed 3)"
  std::vector<KernelOutputCheck> outputs;
  double buildSeconds = 0;  // host compiles (0 when every library came from the cache)
  double runSeconds = 0;    // launches under the emulator, all schedules
  std::string error;        // a build or launch failure (then passed() is false)
  bool passed() const;
};

// Builds (or finds in the cache) the variant and what it pairs with, runs the check. Throws Error
// only for a key whose kernel the check does not know; build and launch failures are reported in
// the result.
KernelCheckResult checkKernel(const KernelKey& key, const KernelCheckOptions& options = {});

// The report `pagedc kernels check` prints for one result: a line per output with its max
// absolute and relative error, and PASS or FAIL.
void printKernelCheck(std::ostream& out, const KernelCheckResult& result);

}  // namespace pagedc
