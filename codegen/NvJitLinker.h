// PTX -> cubin for one real GPU architecture with nvJitLink (ptxas inside; no GPU needed). The
// verbose info log carries each kernel's register, spill, stack and shared memory use, which
// KernelResources parses.
#pragma once

#include <string>
#include <vector>

namespace pagedc {

struct LinkedCubin {
  std::vector<char> cubin;
  std::string infoLog;  // nvJitLink's -verbose output (ptxas info lines)
  double seconds = 0;
};

struct NvJitLinkOptions {
  bool lineInfo = false;           // -lineinfo
  bool lto = true;                 // -lto: the input is NVRTC's LTO IR (NvrtcOptions::lto), not PTX
  std::vector<std::string> extra;  // appended as given
  std::vector<std::string> arguments(int arch) const;  // "-arch=sm_90", "-verbose", ...
  std::string text(int arch) const;
};

class NvJitLinker {
public:
  explicit NvJitLinker(NvJitLinkOptions options = {});

  // Links `code` (LTO IR when options().lto, else PTX) for sm_<arch> (80, 86, 89, 90, ...). Throws
  // Error naming `variant`, the architecture, the options and nvJitLink's error log.
  LinkedCubin link(const std::string& code, int arch, const std::string& variant) const;

  const NvJitLinkOptions& options() const { return options_; }
  // nvJitLink's version ("13.0"); "" without the toolkit.
  static std::string version();

private:
  NvJitLinkOptions options_;
};

}  // namespace pagedc
