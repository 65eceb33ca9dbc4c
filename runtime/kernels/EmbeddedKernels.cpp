#include "runtime/kernels/EmbeddedKernels.h"

#include <fstream>
#include <iterator>
#include <set>

#include "ir/Error.h"
#include "runtime/Artifact.h"
#include "runtime/Sha256.h"

namespace pagedc {

EmbeddedKernels::EmbeddedKernels(std::string artifactDir, const std::vector<KernelEntry>& kernels) : dir_(std::move(artifactDir)) {
  for (const KernelEntry& kernel : kernels) {
    // Normalises the key's text, so a manifest written with another parameter order still matches.
    const std::string key = KernelKey::parse(kernel.key).str();
    if (!entries_.emplace(std::make_pair(key, kernel.arch), kernel).second) {
      fail(dir_, ": the manifest lists kernel ", key, " for sm_", kernel.arch, " twice");
    }
  }
}

EmbeddedKernels EmbeddedKernels::fromArtifact(const Artifact& artifact) { return EmbeddedKernels(artifact.path, artifact.manifest.kernels); }

std::vector<int> EmbeddedKernels::architectures() const {
  std::set<int> archs;
  for (const auto& [id, entry] : entries_) archs.insert(id.second);
  return {archs.begin(), archs.end()};
}

std::optional<KernelImage> EmbeddedKernels::find(const KernelKey& key, int arch) const {
  const std::string text = key.str();
  const KernelEntry* best = nullptr;
  for (const auto& [id, entry] : entries_) {
    if (id.first != text) continue;
    if (id.second == arch) {
      best = &entry;
      break;
    }
    if (id.second / 10 == arch / 10 && id.second < arch && (best == nullptr || id.second > best->arch)) best = &entry;
  }
  if (best == nullptr) return std::nullopt;
  const std::string path = dir_ + "/" + best->file;
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot read the cubin of kernel ", text, " (listed in the manifest)");
  KernelImage image;
  image.data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (image.data.size() != best->bytes || sha256Hex(image.data.data(), image.data.size()) != best->sha256) {
    fail(path, ": the cubin of kernel ", text, " does not match the manifest's size and SHA-256: the file is damaged or was changed after compilation");
  }
  image.entryName = best->entry;
  return image;
}

}  // namespace pagedc
