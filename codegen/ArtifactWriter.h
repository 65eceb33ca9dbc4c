// Writes a compiled graph as an artifact directory (model.pgc/): graph.pgir, weights.bin,
// manifest.json and the tokenizer files found beside the source model. docs/ARTIFACT.md has the format.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ir/Graph.h"
#include "ir/ModelFacts.h"
#include "runtime/ArtifactManifest.h"

namespace pagedc {

// A compiled kernel to store in the artifact's kernels/ directory (manifest "kernels").
struct ArtifactKernel {
  std::string key;    // KernelKey::str()
  int arch = 0;       // 80, 86, 89, 90
  std::string entry;  // lowered entry name
  std::vector<char> cubin;
};

// What the compiler knows that the graph does not carry; the writer adds the rest of the manifest
// (inputs and outputs, the weight index, checksums, versions).
struct ArtifactContents {
  std::string sourceModel;  // the ONNX file: recorded with its SHA-256, tokenizer files copied from its directory; may be empty
  ArtifactOptions options;
  ModelFacts facts;
  std::map<std::string, int64_t> opCountsBefore;
  std::map<std::string, int64_t> opCountsAfter;
  std::vector<ArtifactKernel> kernels;  // --target cuda: cubins of every variant the model needs, per arch
};

// Throws Error when `outputPath` holds something writeArtifact would refuse to replace: callers
// check before a long compile, not after it.
void checkArtifactOutput(const std::string& outputPath);

// Writes into a temporary directory beside `outputPath` and renames it into place, so a reader
// sees the old artifact or the new one, never a partial one. An existing artifact at `outputPath`
// is replaced; anything else there is an error. Every weight referenced by a `weight` op is
// written in the dtype that op declares (converted from the store's data when they differ);
// store entries no op references are dead and are left out. Returns the manifest written.
ArtifactManifest writeArtifact(const Graph& graph, const ArtifactContents& contents, const std::string& outputPath);

}  // namespace pagedc
