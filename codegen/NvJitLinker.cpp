#include "codegen/NvJitLinker.h"

#include <chrono>

#include "codegen/NvrtcCompiler.h"
#include "ir/Error.h"

#if PAGEDC_HAVE_CUDA_TOOLKIT
#include <nvJitLink.h>
#endif

namespace pagedc {

std::vector<std::string> NvJitLinkOptions::arguments(int arch) const {
  // -verbose makes ptxas report registers, spills, stack and shared memory per kernel.
  std::vector<std::string> args = {"-arch=sm_" + std::to_string(arch), "-verbose"};
  if (lineInfo) args.push_back("-lineinfo");
  if (lto) args.push_back("-lto");
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string NvJitLinkOptions::text(int arch) const {
  std::string text;
  for (const std::string& arg : arguments(arch)) text += (text.empty() ? "" : " ") + arg;
  return text;
}

NvJitLinker::NvJitLinker(NvJitLinkOptions options) : options_(std::move(options)) {}

std::string NvJitLinker::version() {
#if PAGEDC_HAVE_CUDA_TOOLKIT
  unsigned major = 0, minor = 0;
  if (nvJitLinkVersion(&major, &minor) != NVJITLINK_SUCCESS) return "";
  return std::to_string(major) + "." + std::to_string(minor);
#else
  return "";
#endif
}

LinkedCubin NvJitLinker::link(const std::string& code, int arch, const std::string& variant) const {
  requireCudaToolkit("linking kernel " + variant);
#if PAGEDC_HAVE_CUDA_TOOLKIT
  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::string> args = options_.arguments(arch);
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  nvJitLinkHandle handle = nullptr;
  nvJitLinkResult result = nvJitLinkCreate(&handle, static_cast<uint32_t>(argv.size()), argv.data());
  if (result != NVJITLINK_SUCCESS) {
    fail("nvJitLink: cannot start linking ", variant, " for sm_", arch, " (error ", static_cast<int>(result),
         "; options: ", options_.text(arch), ")");
  }
  struct HandleGuard {
    nvJitLinkHandle& handle;
    ~HandleGuard() { nvJitLinkDestroy(&handle); }
  } guard{handle};
  auto logOf = [&](bool error) {
    size_t size = 0;
    std::string log;
    if ((error ? nvJitLinkGetErrorLogSize(handle, &size) : nvJitLinkGetInfoLogSize(handle, &size)) == NVJITLINK_SUCCESS && size > 0) {
      log.assign(size, '\0');
      if (error) {
        nvJitLinkGetErrorLog(handle, log.data());
      } else {
        nvJitLinkGetInfoLog(handle, log.data());
      }
    }
    while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
    return log;
  };
  result = options_.lto ? nvJitLinkAddData(handle, NVJITLINK_INPUT_LTOIR, code.data(), code.size(), "pagedc_kernel.ltoir")
                        : nvJitLinkAddData(handle, NVJITLINK_INPUT_PTX, code.data(), code.size(), "pagedc_kernel.ptx");
  if (result == NVJITLINK_SUCCESS) result = nvJitLinkComplete(handle);
  if (result != NVJITLINK_SUCCESS) {
    fail("nvJitLink failed to link kernel ", variant, " for sm_", arch, " (error ", static_cast<int>(result),
         ")\n  options: ", options_.text(arch), "\n", logOf(true), "\n", logOf(false));
  }
  LinkedCubin linked;
  size_t size = 0;
  result = nvJitLinkGetLinkedCubinSize(handle, &size);
  if (result != NVJITLINK_SUCCESS || size == 0) fail("nvJitLink: no cubin for ", variant, " for sm_", arch);
  linked.cubin.resize(size);
  nvJitLinkGetLinkedCubin(handle, linked.cubin.data());
  linked.infoLog = logOf(false);
  linked.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return linked;
#else
  (void)code;
  (void)arch;
  return {};
#endif
}

}  // namespace pagedc
