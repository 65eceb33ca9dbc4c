// Loading a compiled artifact (model.pgc/): the manifest, the compiled graph, and its weights as
// zero-copy views into the memory-mapped weights.bin. docs/ARTIFACT.md describes the format.
#pragma once

#include <memory>
#include <string>

#include "ir/Graph.h"
#include "ir/MappedFile.h"
#include "ir/ModelFacts.h"
#include "runtime/ArtifactManifest.h"

namespace pagedc {

struct ArtifactLoadOptions {
  // Hashes every file and compares with the manifest. Hashing weights.bin costs about a second
  // per GB (0.9 GB/s measured with SHA-NI); the structural checks (sizes, bounds, the index
  // against the graph) always run.
  bool verifyChecksums = true;
};

struct Artifact {
  std::string path;
  ArtifactManifest manifest;
  std::unique_ptr<Graph> graph;                    // its WeightStore views into weightsFile
  std::shared_ptr<const MappedFile> weightsFile;   // kept alive by the tensors too
  const ModelFacts& facts() const { return manifest.facts; }
};

// Throws Error naming the file at fault and what is wrong: a missing file, a format version this
// build cannot read, a checksum mismatch, a truncated weights.bin, a weight index that disagrees
// with the graph's weight ops, bad JSON.
Artifact loadArtifact(const std::string& path, const ArtifactLoadOptions& options = {});

}  // namespace pagedc
