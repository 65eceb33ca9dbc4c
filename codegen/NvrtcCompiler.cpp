#include "codegen/NvrtcCompiler.h"

#include <chrono>
#include <sstream>

#include "codegen/KernelSource.h"
#include "ir/Error.h"

#if PAGEDC_HAVE_CUDA_TOOLKIT
#include <nvrtc.h>
#endif

namespace pagedc {

namespace {

// The name the program's own text has in NVRTC's log.
constexpr const char* kProgramName = "pagedc_kernel.cu";

std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// Parses "name(123): error..." / "name(123): warning..." into name and line; false for other lines.
bool parseLogLocation(const std::string& line, std::string& file, size_t& lineNumber, bool& isError) {
  const size_t open = line.find('(');
  if (open == std::string::npos || open == 0) return false;
  const size_t close = line.find("): ", open);
  if (close == std::string::npos || close == open + 1) return false;
  for (size_t i = open + 1; i < close; ++i) {
    if (line[i] < '0' || line[i] > '9') return false;
  }
  file = line.substr(0, open);
  lineNumber = std::stoul(line.substr(open + 1, close - open - 1));
  const std::string rest = line.substr(close + 3);
  isError = rest.find("error") == 0 || rest.find("catastrophic error") == 0;
  return true;
}

std::string joinVariants(const std::vector<KernelKey>& keys) {
  std::string text;
  for (const KernelKey& key : keys) text += (text.empty() ? "" : ", ") + key.str();
  return text;
}

}  // namespace

std::vector<std::string> NvrtcOptions::arguments() const {
  std::vector<std::string> args = {"--std=c++17", "--gpu-architecture=compute_" + std::to_string(ptxArch)};
  if (lineInfo) args.push_back("-lineinfo");
  if (fastMath) args.push_back("--use_fast_math");
  if (lto) args.push_back("-dlto");
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string NvrtcOptions::text() const {
  std::string text;
  for (const std::string& arg : arguments()) text += (text.empty() ? "" : " ") + arg;
  return text;
}

std::string annotateCompileLog(const std::string& log, const std::vector<std::pair<std::string, std::string>>& files,
                               size_t maxErrors) {
  std::string out;
  size_t annotated = 0;
  for (const std::string& line : splitLines(log)) {
    out += line + "\n";
    std::string file;
    size_t lineNumber = 0;
    bool isError = false;
    if (annotated >= maxErrors || !parseLogLocation(line, file, lineNumber, isError) || !isError) continue;
    const std::string* text = nullptr;
    for (const auto& [name, content] : files) {
      if (name == file) text = &content;
    }
    if (text == nullptr) continue;
    const std::vector<std::string> source = splitLines(*text);
    if (lineNumber == 0 || lineNumber > source.size()) continue;
    ++annotated;
    const size_t first = lineNumber > 2 ? lineNumber - 2 : 1;
    const size_t last = std::min(source.size(), lineNumber + 2);
    for (size_t n = first; n <= last; ++n) {
      std::string number = std::to_string(n);
      number.insert(0, number.size() < 5 ? 5 - number.size() : 0, ' ');
      out += (n == lineNumber ? "  > " : "    ") + number + " | " + source[n - 1] + "\n";
    }
  }
  return out;
}

bool haveCudaToolkit() { return PAGEDC_HAVE_CUDA_TOOLKIT != 0; }

void requireCudaToolkit(const std::string& what) {
  if (!haveCudaToolkit()) {
    fail("the CUDA toolkit (NVRTC, nvJitLink) is not part of this build: ", what,
         " needs it (install CUDA 12+ and reconfigure; CMake looks for it with find_package(CUDAToolkit))");
  }
}

NvrtcCompiler::NvrtcCompiler(NvrtcOptions options) : options_(std::move(options)) {}

std::string NvrtcCompiler::version() {
#if PAGEDC_HAVE_CUDA_TOOLKIT
  int major = 0, minor = 0;
  if (nvrtcVersion(&major, &minor) != NVRTC_SUCCESS) return "";
  return std::to_string(major) + "." + std::to_string(minor);
#else
  return "";
#endif
}

NvrtcOutput NvrtcCompiler::compile(const std::vector<KernelKey>& keys) const {
  if (keys.empty()) fail("NVRTC: no kernel variants to compile");
  std::vector<std::string> names;
  for (const KernelKey& key : keys) names.push_back(kernelNameExpression(key));
  return compileSource(emitKernelSource(keys, false), names, joinVariants(keys));
}

NvrtcOutput NvrtcCompiler::compileSource(const std::string& source, const std::vector<std::string>& nameExpressions,
                                         const std::string& variant) const {
  requireCudaToolkit("compiling kernel " + variant);
#if PAGEDC_HAVE_CUDA_TOOLKIT
  const auto start = std::chrono::steady_clock::now();
  const auto& headers = embeddedTemplateHeaders();
  std::vector<const char*> headerTexts, headerNames;
  for (const auto& [name, text] : headers) {
    headerNames.push_back(name.c_str());
    headerTexts.push_back(text.c_str());
  }
  nvrtcProgram program = nullptr;
  nvrtcResult result = nvrtcCreateProgram(&program, source.c_str(), kProgramName, static_cast<int>(headers.size()),
                                          headerTexts.data(), headerNames.data());
  if (result != NVRTC_SUCCESS) fail("NVRTC: cannot create the program for ", variant, ": ", nvrtcGetErrorString(result));
  // Destroys the program on every path out, including the throws below.
  struct ProgramGuard {
    nvrtcProgram& program;
    ~ProgramGuard() { nvrtcDestroyProgram(&program); }
  } guard{program};
  for (const std::string& name : nameExpressions) {
    result = nvrtcAddNameExpression(program, name.c_str());
    if (result != NVRTC_SUCCESS) fail("NVRTC: cannot add the name expression '", name, "' for ", variant, ": ", nvrtcGetErrorString(result));
  }
  const std::vector<std::string> args = options_.arguments();
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  result = nvrtcCompileProgram(program, static_cast<int>(argv.size()), argv.data());
  size_t logSize = 0;
  nvrtcGetProgramLogSize(program, &logSize);
  std::string log(logSize, '\0');
  if (logSize > 0) nvrtcGetProgramLog(program, log.data());
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
  if (result != NVRTC_SUCCESS) {
    std::vector<std::pair<std::string, std::string>> files = headers;
    files.emplace_back(kProgramName, source);
    fail("NVRTC failed to compile kernel ", variant, " (", nvrtcGetErrorString(result), ")\n  options: ", options_.text(),
         "\n", annotateCompileLog(log, files));
  }
  NvrtcOutput output;
  output.log = log;
  for (const std::string& name : nameExpressions) {
    const char* lowered = nullptr;
    result = nvrtcGetLoweredName(program, name.c_str(), &lowered);
    if (result != NVRTC_SUCCESS || lowered == nullptr) {
      fail("NVRTC: no lowered name for '", name, "' in ", variant, ": ", nvrtcGetErrorString(result));
    }
    output.loweredNames.emplace_back(lowered);
  }
  if (options_.lto) {
    size_t irSize = 0;
    result = nvrtcGetLTOIRSize(program, &irSize);
    if (result != NVRTC_SUCCESS || irSize == 0) fail("NVRTC: no LTO IR for ", variant, ": ", nvrtcGetErrorString(result));
    output.ltoIr.assign(irSize, '\0');
    nvrtcGetLTOIR(program, output.ltoIr.data());
    output.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return output;
  }
  size_t ptxSize = 0;
  result = nvrtcGetPTXSize(program, &ptxSize);
  if (result != NVRTC_SUCCESS) fail("NVRTC: no PTX for ", variant, ": ", nvrtcGetErrorString(result));
  output.ptx.assign(ptxSize, '\0');
  nvrtcGetPTX(program, output.ptx.data());
  while (!output.ptx.empty() && output.ptx.back() == '\0') output.ptx.pop_back();
  output.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return output;
#else
  (void)source;
  (void)nameExpressions;
  return {};
#endif
}

}  // namespace pagedc
