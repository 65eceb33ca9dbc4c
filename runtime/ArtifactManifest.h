// The compiled artifact's manifest (manifest.json): what was compiled and how, the model's facts,
// the weight index into weights.bin and a checksum of every file. docs/ARTIFACT.md describes the format.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ir/DType.h"
#include "ir/ModelFacts.h"

namespace pagedc {

// Bumped whenever a reader of the previous version would misread an artifact of the new one.
inline constexpr int kArtifactFormatVersion = 1;
inline constexpr const char* kArtifactFormatName = "pagedc-artifact";
// Every weight starts at a multiple of this in weights.bin: a cache line, and enough for any SIMD load.
inline constexpr uint64_t kWeightAlignment = 64;

inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kGraphFile = "graph.pgir";
inline constexpr const char* kWeightsFile = "weights.bin";
// Files copied from beside the ONNX model when present, for the tokenizer and generation defaults.
inline constexpr const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json",
                                                  "generation_config.json", "config.json"};

// pagedc's version, as recorded in manifests this build writes.
const char* pagedcVersion();

struct ArtifactOptions {
  int64_t blockSize = 16;
  DType dtype = DType::F32;
  std::string target = "cpu";
};

struct ArtifactValue {
  std::string name;
  std::string type;  // the IR's spelling: "i64[num_tokens]"
};

struct WeightEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // into weights.bin, a multiple of kWeightAlignment
  uint64_t bytes = 0;
};

struct FileEntry {
  uint64_t bytes = 0;
  std::string sha256;  // lowercase hex
};

// A precompiled CUDA kernel in the artifact's kernels/ directory (`pagedc compile --target cuda`):
// the cubin of one specialisation key for one GPU architecture. Its file is also in `files`.
struct KernelEntry {
  std::string key;    // KernelKey::str(): "rms_norm:dtype=f16,threads=256"
  int arch = 0;       // compute capability the cubin is for: 80, 86, 89, 90
  std::string entry;  // the kernel's (lowered) name in the cubin
  std::string file;   // relative to the artifact: "kernels/sm_90/rms_norm-0123456789abcdef.cubin"
  uint64_t bytes = 0;
  std::string sha256;
};

struct ArtifactManifest {
  int formatVersion = kArtifactFormatVersion;
  std::string pagedcVersion;
  std::string sourcePath;
  std::string sourceSha256;  // of the .onnx file itself (external data files are not hashed)
  ArtifactOptions options;
  ModelFacts facts;
  std::map<std::string, int64_t> opCountsBefore;
  std::map<std::string, int64_t> opCountsAfter;
  std::vector<ArtifactValue> inputs;
  std::vector<ArtifactValue> outputs;
  std::vector<WeightEntry> weights;
  std::map<std::string, FileEntry> files;  // by name inside the artifact directory
  std::vector<KernelEntry> kernels;        // empty unless compiled for a CUDA target with kernels

  int64_t parameterCount() const;
  uint64_t parameterBytes() const;
};

// Ordered: keys appear as written here (format and version first), not alphabetically.
nlohmann::ordered_json manifestToJson(const ArtifactManifest& manifest);
// Throws Error prefixed with `sourceName` for a wrong format or version, a missing or mistyped field.
ArtifactManifest manifestFromJson(const nlohmann::json& json, const std::string& sourceName);
std::string printManifest(const ArtifactManifest& manifest);  // indented JSON text
// Parses manifest.json's text; bad JSON is an Error quoting nlohmann's message.
ArtifactManifest parseManifest(const std::string& text, const std::string& sourceName);

nlohmann::ordered_json factsToJson(const ModelFacts& facts);

}  // namespace pagedc
