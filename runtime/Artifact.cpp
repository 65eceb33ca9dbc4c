// Loads and checks a compiled artifact directory; weights stay in the mapped weights.bin.
#include "runtime/Artifact.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "ir/Error.h"
#include "ir/TextFormat.h"
#include "ir/Verifier.h"
#include "runtime/Sha256.h"

namespace pagedc {

namespace fs = std::filesystem;

namespace {

std::string readTextFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot read");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string shapeString(DType dtype, const std::vector<int64_t>& shape) {
  std::string text(dtypeName(dtype));
  text += "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Each index entry must describe exactly its tensor's bytes and lie inside weights.bin.
void checkWeightIndex(const ArtifactManifest& manifest, const std::string& manifestPath, const MappedFile& weights) {
  for (const WeightEntry& entry : manifest.weights) {
    int64_t elements = 1;
    for (int64_t d : entry.shape) {
      if (d < 0) fail(manifestPath, ": weight '", entry.name, "' has a negative dimension");
      elements *= d;
    }
    uint64_t expected = static_cast<uint64_t>(elements) * dtypeSize(entry.dtype);
    if (entry.bytes != expected)
      fail(manifestPath, ": weight '", entry.name, "' is ", entry.bytes, " bytes in the index but ",
           shapeString(entry.dtype, entry.shape), " needs ", expected);
    if (entry.offset % kWeightAlignment != 0)
      fail(manifestPath, ": weight '", entry.name, "' starts at offset ", entry.offset, ", not a multiple of ", kWeightAlignment);
    if (entry.offset > weights.size() || entry.bytes > weights.size() - entry.offset)
      fail(weights.path(), ": truncated: weight '", entry.name, "' needs bytes [", entry.offset, ", ", entry.offset + entry.bytes,
           ") but the file has ", weights.size(), " bytes");
  }
}

// The graph is the truth about each weight's type; the index must agree with every weight op.
void checkWeightOps(const Graph& graph, const WeightStore& store, const std::string& manifestPath, const std::string& graphPath) {
  for (const auto& op : graph.ops()) {
    if (op->opName() != "weight") continue;
    std::string name = op->stringAttr("name", "");
    const Tensor* tensor = store.find(name);
    if (!tensor)
      fail(graphPath, ": weight '", name, "' (", printValueName(op->result(0)->name), ") is not in the weight index of ", manifestPath);
    const TensorType& declared = op->result(0)->type;
    bool same = declared.dtype == tensor->dtype() && declared.hasRank() && declared.rank() == tensor->rank();
    for (size_t i = 0; same && i < tensor->rank(); ++i) same = declared.dim(i).constant() == tensor->shape()[i];
    if (!same)
      fail(manifestPath, ": weight '", name, "' is ", shapeString(tensor->dtype(), tensor->shape()),
           " in the weight index but ", graphPath, " declares it ", declared.str());
  }
}

void checkInterface(const std::vector<Value*>& values, const std::vector<ArtifactValue>& recorded, const char* what,
                    const std::string& manifestPath, const std::string& graphPath) {
  bool same = values.size() == recorded.size();
  for (size_t i = 0; same && i < values.size(); ++i) same = values[i]->name == recorded[i].name && values[i]->type.str() == recorded[i].type;
  if (!same) fail(manifestPath, ": the ", what, " it records differ from those of ", graphPath);
}

}  // namespace

Artifact loadArtifact(const std::string& path, const ArtifactLoadOptions& options) {
  fs::path dir(path);
  std::error_code ec;
  if (!fs::exists(dir, ec)) fail(path, ": no such artifact");
  if (!fs::is_directory(dir, ec))
    fail(path, ": not a pagedc artifact: a compiled model is a directory holding ", kManifestFile, ", ", kGraphFile, " and ", kWeightsFile);
  std::string manifestPath = (dir / kManifestFile).string();
  if (!fs::exists(manifestPath, ec)) fail(manifestPath, ": missing file: not a pagedc artifact, or an incomplete one");

  Artifact artifact;
  artifact.path = path;
  artifact.manifest = parseManifest(readTextFile(manifestPath), manifestPath);
  const ArtifactManifest& manifest = artifact.manifest;
  for (const char* required : {kGraphFile, kWeightsFile})
    if (!manifest.files.count(required)) fail(manifestPath, ": lists no ", required);
  for (const auto& [name, entry] : manifest.files)
    if (!fs::exists(dir / name, ec)) fail((dir / name).string(), ": missing file (listed in ", kManifestFile, ")");

  std::string graphPath = (dir / kGraphFile).string();
  std::string weightsPath = (dir / kWeightsFile).string();
  artifact.weightsFile = MappedFile::open(weightsPath);
  // Bounds first: a cut-off weights.bin is reported as truncated, more useful than a checksum mismatch.
  checkWeightIndex(manifest, manifestPath, *artifact.weightsFile);
  for (const auto& [name, entry] : manifest.files) {
    std::string filePath = (dir / name).string();
    uint64_t size = fs::file_size(dir / name, ec);
    if (ec) fail(filePath, ": cannot read its size: ", ec.message());
    if (size != entry.bytes)
      fail(filePath, ": ", size, " bytes but the manifest records ", entry.bytes, ": the file is damaged or was changed after compilation");
    if (options.verifyChecksums && sha256File(filePath) != entry.sha256)
      fail(filePath, ": SHA-256 mismatch: the file is damaged or was changed after compilation");
  }

  auto store = std::make_shared<WeightStore>();
  for (const WeightEntry& entry : manifest.weights)
    store->add(entry.name, Tensor::view(entry.dtype, entry.shape, artifact.weightsFile->data() + entry.offset, artifact.weightsFile));
  artifact.graph = parseGraph(readTextFile(graphPath), graphPath, store);
  checkWeightOps(*artifact.graph, *store, manifestPath, graphPath);
  checkInterface(artifact.graph->inputs, manifest.inputs, "inputs", manifestPath, graphPath);
  checkInterface(artifact.graph->outputs, manifest.outputs, "outputs", manifestPath, graphPath);
  try {
    verifyOrThrow(*artifact.graph);
  } catch (const Error& e) {
    fail(graphPath, ": ", e.what());
  }
  return artifact;
}

}  // namespace pagedc
