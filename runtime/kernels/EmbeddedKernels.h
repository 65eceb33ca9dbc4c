// The CUDA kernels precompiled into an artifact (`pagedc compile --target cuda`): the cubins of its
// kernels/ directory, found by specialisation key and GPU architecture. Runtime side: no compiler
// needed, so a machine without the CUDA toolkit runs an artifact whose kernels are all embedded.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/ArtifactManifest.h"
#include "runtime/cuda/KernelProvider.h"
#include "runtime/kernels/KernelKey.h"

namespace pagedc {

struct Artifact;

class EmbeddedKernels {
public:
  EmbeddedKernels() = default;
  // The kernels `manifest` lists, their files relative to `artifactDir`.
  EmbeddedKernels(std::string artifactDir, const std::vector<KernelEntry>& kernels);
  static EmbeddedKernels fromArtifact(const Artifact& artifact);

  // The cubin of `key` for a device of compute capability `arch`: the one built for `arch`, else
  // the newest one built for an older architecture of the same major version (SASS runs on later
  // minor versions of its major: an sm_80 cubin runs on sm_86 and sm_89, not on sm_90). nullopt
  // when there is none. Reads the file now and checks its size and SHA-256 against the manifest;
  // throws Error naming the file when they differ.
  std::optional<KernelImage> find(const KernelKey& key, int arch) const;

  // The architectures the artifact has cubins for, ascending.
  std::vector<int> architectures() const;
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

private:
  std::string dir_;
  std::map<std::pair<std::string, int>, KernelEntry> entries_;  // by (key text, arch)
};

}  // namespace pagedc
