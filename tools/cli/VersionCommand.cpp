// `pagedc version`: pagedc's version and what the build can do (CUDA toolkit, GPU architectures).
#include <iostream>

#include "cli/Commands.h"
#include "codegen/CudaToolkitInfo.h"

namespace pagedc::cli {

void addVersionCommand(CLI::App& app) {
  auto* command = app.add_subcommand("version", "print pagedc's version and the CUDA toolkit it was built with");
  command->callback([] {
    std::cout << "pagedc " << PAGEDC_VERSION << "\n";
    CudaToolkitInfo cuda = queryCudaToolkit();
    if (!cuda.available) {
      std::cout << "CUDA toolkit: not available (built without NVRTC/nvJitLink)\n";
      return;
    }
    std::cout << "NVRTC " << cuda.nvrtcVersion << ", nvJitLink " << cuda.nvJitLinkVersion << "; GPU architectures:";
    for (int arch : cuda.architectures) std::cout << " sm_" << arch;
    std::cout << "\n";
  });
}

}  // namespace pagedc::cli
