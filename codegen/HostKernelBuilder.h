// Compiles a kernel variant for the host: the same CUDA source `pagedc kernels emit` prints
// (codegen/KernelSource.h), built by the host C++ compiler against the CPU emulation of the CUDA
// execution model (templates/emulation/cuda_emulation.h) into a shared library whose C entry
// points (runtime/cuda/EmulatedKernelAbi.h) launch the variant through the emulator. The emulated
// CUDA driver and `pagedc kernels check` run those libraries.
//
// Libraries are cached on disk next to the CUDA kernel cache: <cache dir>/host/<hash>.so, where
// the cache dir is $PAGEDC_CACHE_DIR, else ~/.cache/pagedc/kernels, and the hash covers the key,
// the templates' source hash, the compiler's identity and the flags. Entries are written to a
// temporary name and renamed into place, so concurrent builders (processes or threads) never see
// a partial library; the last rename wins with identical content.
#pragma once

#include <string>
#include <vector>

#include "runtime/kernels/KernelKey.h"

namespace pagedc {

struct HostKernelBuildOptions {
  std::string cacheDir;  // empty: $PAGEDC_CACHE_DIR, else ~/.cache/pagedc/kernels (libraries go in its host/)
  std::string compiler;  // empty: $CXX, else c++
  // Extra flags after the defaults (-O2 -std=c++20 -fPIC -shared -Wall -Wextra ...); part of the hash.
  std::vector<std::string> extraFlags;
};

// What a build produced.
struct HostKernelLibrary {
  std::string path;      // absolute path of the .so
  bool fromCache = false;
  double compileSeconds = 0;  // 0 when found in the cache
};

class HostKernelBuilder {
public:
  // Resolves the compiler (an absolute path or a name looked up in $PATH) and asks it for its
  // version; throws Error "no host C++ compiler ..." naming what it tried when there is none.
  explicit HostKernelBuilder(HostKernelBuildOptions options = {});

  // The library of `key`'s variant: from the cache, or compiled now. Throws Error naming the
  // variant, the command and the compiler's output when the compile fails. Thread-safe.
  HostKernelLibrary build(const KernelKey& key) const;

  // The translation unit compiled for `key`: the variant's source and the C entry points.
  std::string translationUnit(const KernelKey& key) const;
  // The cache entry's file name for `key` (its hash + ".so").
  std::string libraryName(const KernelKey& key) const;

  const std::string& compilerPath() const { return compilerPath_; }
  const std::string& compilerVersion() const { return compilerVersion_; }  // first line of --version
  const std::string& libraryDir() const { return libraryDir_; }            // <cache dir>/host
  std::vector<std::string> flags() const;

private:
  HostKernelBuildOptions options_;
  std::string compilerPath_;
  std::string compilerVersion_;
  std::string libraryDir_;
};

// The kernel cache directory: $PAGEDC_CACHE_DIR, else $XDG_CACHE_HOME/pagedc/kernels, else
// ~/.cache/pagedc/kernels.
std::string defaultKernelCacheDir();

}  // namespace pagedc
