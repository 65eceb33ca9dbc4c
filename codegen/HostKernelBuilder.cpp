// Host builds of kernel variants: generating the translation unit, running the compiler, caching.
#include "codegen/HostKernelBuilder.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "codegen/KernelSource.h"
#include "ir/Error.h"
#include "runtime/Sha256.h"
#include "runtime/cuda/EmulatedKernelAbi.h"

extern char** environ;

namespace pagedc {

namespace fs = std::filesystem;

namespace {

// Bumped when the generated entry points change, so old libraries are not reused.
constexpr const char* kHostAbiVersion = "pagedc-host-kernel-abi-1";

std::vector<std::string> splitWords(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

// `name` if it is a path to an executable, else the first executable `name` in $PATH; "" when none.
std::string findExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? fs::absolute(name).string() : "";
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const fs::path candidate = fs::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

// Runs argv (no shell) with stdout and stderr into `outputFile`; returns the exit status (or -1
// when it could not start, 128 + n when killed by signal n).
int runProcess(const std::vector<std::string>& argv, const fs::path& outputFile) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, outputFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void writeFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) fail("cannot write ", path.string());
}

// A directory for one build, unique across threads and processes, removed when done.
class ScratchDir {
public:
  explicit ScratchDir(const fs::path& parent) {
    static std::atomic<unsigned> counter{0};
    path_ = parent / ("tmp-" + std::to_string(::getpid()) + "-" + std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())) + "-" +
                      std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

std::string quoteForMessage(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& arg : argv) {
    if (!out.empty()) out += ' ';
    out += arg.find_first_of(" \t'\"") == std::string::npos ? arg : "'" + arg + "'";
  }
  return out;
}

// The part of a compiler's output worth showing: its first lines (errors come first).
std::string firstLines(const std::string& text, size_t maxLines) {
  size_t at = 0;
  for (size_t line = 0; line < maxLines; ++line) {
    at = text.find('\n', at);
    if (at == std::string::npos) return text;
    ++at;
  }
  return text.substr(0, at) + "... (" + std::to_string(std::count(text.begin() + at, text.end(), '\n')) + " more lines)\n";
}

}  // namespace

std::string defaultKernelCacheDir() {
  if (const char* dir = std::getenv("PAGEDC_CACHE_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return (fs::path(xdg) / "pagedc" / "kernels").string();
  if (const char* home = std::getenv("HOME"); home && *home) return (fs::path(home) / ".cache" / "pagedc" / "kernels").string();
  return (fs::temp_directory_path() / "pagedc-kernels").string();
}

HostKernelBuilder::HostKernelBuilder(HostKernelBuildOptions options) : options_(std::move(options)) {
  std::string requested = options_.compiler;
  if (requested.empty()) {
    const char* cxx = std::getenv("CXX");
    requested = cxx && *cxx ? cxx : "c++";
  }
  std::vector<std::string> words = splitWords(requested);
  if (words.empty()) fail("no host C++ compiler: the compiler name is empty (set $CXX to a C++20 compiler, e.g. g++ or clang++)");
  compilerPath_ = findExecutable(words[0]);
  if (compilerPath_.empty())
    fail("no host C++ compiler: '", words[0], "' is not an executable file or in $PATH (set $CXX to a C++20 compiler, e.g. g++ or ",
         "clang++); the CPU emulation of the CUDA kernels compiles them with it");
  for (size_t i = 1; i < words.size(); ++i) options_.extraFlags.insert(options_.extraFlags.begin() + (i - 1), words[i]);

  libraryDir_ = (fs::path(options_.cacheDir.empty() ? defaultKernelCacheDir() : options_.cacheDir) / "host").string();
  std::error_code created;
  fs::create_directories(libraryDir_, created);
  if (created) fail("cannot create the host kernel cache directory ", libraryDir_, ": ", created.message(), " (set $PAGEDC_CACHE_DIR)");

  ScratchDir scratch(libraryDir_);
  const fs::path output = scratch.path() / "version.txt";
  const int status = runProcess({compilerPath_, "--version"}, output);
  if (status != 0)
    fail("no host C++ compiler: '", compilerPath_, " --version' ", status < 0 ? "could not be run" : "exited with status " + std::to_string(status),
         " (set $CXX to a C++20 compiler)");
  const std::string version = readFile(output);
  compilerVersion_ = version.substr(0, version.find('\n'));
}

std::vector<std::string> HostKernelBuilder::flags() const {
  std::vector<std::string> flags = {"-O2", "-std=c++20", "-fPIC", "-shared", "-pthread", "-Wall", "-Wextra",
                                    // Each library keeps its own copy of the emulator's inline state
                                    // (no symbol is shared between libraries loaded side by side).
                                    "-fvisibility=hidden", "-fvisibility-inlines-hidden"};
  flags.insert(flags.end(), options_.extraFlags.begin(), options_.extraFlags.end());
  return flags;
}

std::string HostKernelBuilder::libraryName(const KernelKey& key) const {
  std::string identity = std::string(kHostAbiVersion) + "\n" + key.str() + "\n" + templateSourceHash() + "\n" + compilerPath_ + "\n" +
                         compilerVersion_ + "\n";
  for (const std::string& flag : flags()) identity += flag + "\n";
  return sha256Hex(identity.data(), identity.size()).substr(0, 32) + ".so";
}

std::string HostKernelBuilder::translationUnit(const KernelKey& key) const {
  std::ostringstream tu;
  tu << "// pagedc host kernel library for " << key.str() << "\n"
     << "// Generated by codegen/HostKernelBuilder: the variant's CUDA source compiled against the CPU\n"
     << "// emulation, with the C entry points of runtime/cuda/EmulatedKernelAbi.h.\n"
     << "#include <cstddef>\n#include <cstring>\n#include <exception>\n\n"
     << emitKernelSource(key, false) << "\n\n"
     << "namespace {\n"
     << "// Layout of PagedcEmulatedLaunch (runtime/cuda/EmulatedKernelAbi.h).\n"
     << "struct LaunchAbi {\n  unsigned grid[3];\n  unsigned block[3];\n  const void* params;\n  int schedule;\n  unsigned long long seed;\n};\n"
     << "void copyMessage(char* error, std::size_t capacity, const char* message) {\n"
     << "  if (!error || capacity == 0) return;\n"
     << "  std::size_t n = std::strlen(message);\n  if (n >= capacity) n = capacity - 1;\n"
     << "  std::memcpy(error, message, n);\n  error[n] = '\\0';\n}\n"
     << "}  // namespace\n\n"
     << "extern \"C\" __attribute__((visibility(\"default\"))) int " << kEmulatedLaunchEntry
     << "(const LaunchAbi* launch, char* error, std::size_t capacity) noexcept {\n"
     << "  try {\n"
     << "    " << key.paramsType() << " params;\n"
     << "    std::memcpy(static_cast<void*>(&params), launch->params, sizeof(params));\n"
     << "    pagedc::emu::LaunchOptions options{};\n"
     << "    options.schedule = launch->schedule == " << kEmulatedScheduleReverse << " ? pagedc::emu::Schedule::Reverse\n"
     << "                     : launch->schedule == " << kEmulatedScheduleShuffled << " ? pagedc::emu::Schedule::Shuffled\n"
     << "                     : pagedc::emu::Schedule::Forward;\n"
     << "    options.seed = launch->seed;\n"
     << "    options.kernelName = \"" << key.str() << "\";\n"
     << "    pagedc::emu::launch(" << key.templateExpression() << ",\n"
     << "                        pagedc::emu::Dim3{launch->grid[0], launch->grid[1], launch->grid[2]},\n"
     << "                        pagedc::emu::Dim3{launch->block[0], launch->block[1], launch->block[2]}, params, options);\n"
     << "    return 0;\n"
     << "  } catch (const std::exception& e) {\n"
     << "    copyMessage(error, capacity, e.what());\n"
     << "  } catch (...) {\n"
     << "    copyMessage(error, capacity, \"unknown exception\");\n"
     << "  }\n"
     << "  return 1;\n"
     << "}\n\n"
     << "extern \"C\" __attribute__((visibility(\"default\"))) std::size_t " << kEmulatedParamsSizeEntry << "() noexcept {\n"
     << "  return sizeof(" << key.paramsType() << ");\n}\n\n"
     << "extern \"C\" __attribute__((visibility(\"default\"))) const char* " << kEmulatedKeyEntry << "() noexcept {\n"
     << "  return \"" << key.str() << "\";\n}\n";
  return tu.str();
}

HostKernelLibrary HostKernelBuilder::build(const KernelKey& key) const {
  const fs::path library = fs::path(libraryDir_) / libraryName(key);
  if (fs::exists(library)) return HostKernelLibrary{library.string(), true, 0};

  const auto start = std::chrono::steady_clock::now();
  ScratchDir scratch(libraryDir_);
  const fs::path include = scratch.path() / "include";
  for (const auto& [name, text] : embeddedTemplateHeaders()) writeFile(include / name, text);
  const fs::path source = scratch.path() / "kernel.cpp";
  writeFile(source, translationUnit(key));
  const fs::path built = scratch.path() / "kernel.so";
  std::vector<std::string> argv = {compilerPath_};
  for (const std::string& flag : flags()) argv.push_back(flag);
  argv.insert(argv.end(), {"-I", include.string(), "-o", built.string(), source.string()});
  const fs::path output = scratch.path() / "compiler-output.txt";
  const int status = runProcess(argv, output);
  if (status != 0 || !fs::exists(built)) {
    std::string message = readFile(output);
    fail("host compile of kernel variant ", key.str(), " failed (", status < 0 ? "the compiler could not be run" : "exit status " + std::to_string(status),
         ")\ncommand: ", quoteForMessage(argv), "\n", firstLines(message, 60));
  }
  // Atomic publish: a rename within one file system replaces any entry another builder made meanwhile
  // (with the same content), and readers see either no library or a whole one.
  std::error_code renamed;
  fs::rename(built, library, renamed);
  if (renamed) fail("cannot publish the host kernel library ", library.string(), ": ", renamed.message());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return HostKernelLibrary{library.string(), false, seconds};
}

}  // namespace pagedc
