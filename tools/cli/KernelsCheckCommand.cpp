// `pagedc kernels check KEY...`: runs kernel variants on the CPU through the CUDA emulation and
// compares them with the reference implementations (codegen/KernelCheck.h does the work). Exit
// status 1 when any variant fails.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/Commands.h"
#include "codegen/KernelCheck.h"
#include "ir/Error.h"

namespace pagedc::cli {

namespace {

struct CheckArguments {
  std::vector<std::string> keys;
  int schedules = 3;
  unsigned long long seed = 1;
  std::string cacheDir;
};

}  // namespace

void addKernelsCheckCommand(CLI::App& kernels) {
  auto* command = kernels.add_subcommand(
      "check",
      "run kernel variants on the CPU (their CUDA source compiled by the host compiler against the CUDA emulation) on random inputs under "
      "several thread schedules, and compare every output with the reference");
  auto args = std::make_shared<CheckArguments>();
  command->add_option("keys", args->keys, "kernel keys, e.g. paged_attention_decode:dtype=f16,head_dim=128,q_per_kv=4 (defaults fill the rest)")
      ->required();
  command->add_option("--schedules", args->schedules, "thread schedules per variant: forward, reverse, then shuffled ones (default 3)")
      ->check(CLI::Range(1, 64));
  command->add_option("--seed", args->seed, "seed of the random inputs and the shuffled schedules (default 1)");
  command->add_option("--cache-dir", args->cacheDir, "kernel cache directory (default $PAGEDC_CACHE_DIR, else ~/.cache/pagedc/kernels)");
  command->callback([args] {
    std::vector<KernelKey> keys;
    for (const std::string& text : args->keys) keys.push_back(KernelKey::parse(text));
    KernelCheckOptions options;
    options.schedules = args->schedules;
    options.seed = args->seed;
    options.build.cacheDir = args->cacheDir;
    int failed = 0;
    for (const KernelKey& key : keys) {
      const KernelCheckResult result = checkKernel(key, options);
      printKernelCheck(std::cout, result);
      std::cout.flush();
      if (!result.passed()) ++failed;
    }
    if (keys.size() > 1) std::cout << (failed ? "FAIL" : "PASS") << ": " << keys.size() - failed << " of " << keys.size() << " variants passed\n";
    if (failed) {
      std::cout.flush();
      std::exit(1);
    }
  });
}

}  // namespace pagedc::cli
