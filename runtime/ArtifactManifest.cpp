// manifest.json to and from ArtifactManifest, with nlohmann-json.
#include "runtime/ArtifactManifest.h"

#include <nlohmann/json.hpp>

#include "ir/Error.h"

namespace pagedc {

using nlohmann::json;
using nlohmann::ordered_json;

const char* pagedcVersion() { return PAGEDC_VERSION; }

int64_t ArtifactManifest::parameterCount() const {
  int64_t total = 0;
  for (const WeightEntry& weight : weights) {
    int64_t elements = 1;
    for (int64_t d : weight.shape) elements *= d;
    total += elements;
  }
  return total;
}

uint64_t ArtifactManifest::parameterBytes() const {
  uint64_t total = 0;
  for (const WeightEntry& weight : weights) total += weight.bytes;
  return total;
}

ordered_json factsToJson(const ModelFacts& facts) {
  return {
      {"num_layers", facts.numLayers},
      {"num_heads", facts.numHeads},
      {"num_kv_heads", facts.numKvHeads},
      {"head_dim", facts.headDim},
      {"hidden_size", facts.hiddenSize},
      {"vocab_size", facts.vocabSize},
      {"max_positions", facts.maxPositions},
      {"sliding_window", facts.slidingWindow},
      {"attention_scale", facts.attentionScale},
      {"rotary",
       {{"present", facts.rotary.present},
        {"interleaved", facts.rotary.interleaved},
        {"rotary_dim", facts.rotary.rotaryDim},
        {"base", facts.rotary.base}}},
      {"block_size", facts.blockSize},
      {"weight_dtype", std::string(dtypeName(facts.weightDType))},
      {"kv_dtype", std::string(dtypeName(facts.kvDType))},
      // Derived, stored so that readers in other languages need not know the formula.
      {"kv_bytes_per_token", facts.kvBytesPerToken()},
      {"kernel_variants", facts.kernelVariants},
  };
}

namespace {

DType dtypeField(const json& value, const char* what) {
  std::string name = value.get<std::string>();
  auto dtype = parseDType(name);
  if (!dtype) fail(what, ": unknown dtype '", name, "'");
  return *dtype;
}

ModelFacts factsFromJson(const json& j) {
  ModelFacts facts;
  facts.numLayers = j.at("num_layers").get<int64_t>();
  facts.numHeads = j.at("num_heads").get<int64_t>();
  facts.numKvHeads = j.at("num_kv_heads").get<int64_t>();
  facts.headDim = j.at("head_dim").get<int64_t>();
  facts.hiddenSize = j.at("hidden_size").get<int64_t>();
  facts.vocabSize = j.at("vocab_size").get<int64_t>();
  facts.maxPositions = j.at("max_positions").get<int64_t>();
  facts.slidingWindow = j.at("sliding_window").get<int64_t>();
  facts.attentionScale = j.at("attention_scale").get<double>();
  const json& rotary = j.at("rotary");
  facts.rotary.present = rotary.at("present").get<bool>();
  facts.rotary.interleaved = rotary.at("interleaved").get<bool>();
  facts.rotary.rotaryDim = rotary.at("rotary_dim").get<int64_t>();
  facts.rotary.base = rotary.at("base").get<double>();
  facts.blockSize = j.at("block_size").get<int64_t>();
  facts.weightDType = dtypeField(j.at("weight_dtype"), "facts.weight_dtype");
  facts.kvDType = dtypeField(j.at("kv_dtype"), "facts.kv_dtype");
  facts.kernelVariants = j.at("kernel_variants").get<std::vector<std::string>>();
  return facts;
}

ordered_json valuesToJson(const std::vector<ArtifactValue>& values) {
  ordered_json list = ordered_json::array();
  for (const ArtifactValue& value : values) list.push_back({{"name", value.name}, {"type", value.type}});
  return list;
}

std::vector<ArtifactValue> valuesFromJson(const json& list) {
  std::vector<ArtifactValue> values;
  for (const json& value : list) values.push_back({value.at("name").get<std::string>(), value.at("type").get<std::string>()});
  return values;
}

}  // namespace

ordered_json manifestToJson(const ArtifactManifest& manifest) {
  ordered_json weights = ordered_json::array();
  for (const WeightEntry& weight : manifest.weights)
    weights.push_back({{"name", weight.name},
                       {"dtype", std::string(dtypeName(weight.dtype))},
                       {"shape", weight.shape},
                       {"offset", weight.offset},
                       {"bytes", weight.bytes}});
  ordered_json files = ordered_json::object();
  for (const auto& [name, file] : manifest.files) files[name] = {{"bytes", file.bytes}, {"sha256", file.sha256}};
  ordered_json result = {
      {"format", kArtifactFormatName},
      {"format_version", manifest.formatVersion},
      {"pagedc_version", manifest.pagedcVersion},
      {"source", {{"path", manifest.sourcePath}, {"sha256", manifest.sourceSha256}}},
      {"options",
       {{"block_size", manifest.options.blockSize},
        {"dtype", std::string(dtypeName(manifest.options.dtype))},
        {"target", manifest.options.target}}},
      {"facts", factsToJson(manifest.facts)},
      {"op_counts", {{"before", manifest.opCountsBefore}, {"after", manifest.opCountsAfter}}},
      {"inputs", valuesToJson(manifest.inputs)},
      {"outputs", valuesToJson(manifest.outputs)},
      {"weights", {{"file", kWeightsFile}, {"alignment", kWeightAlignment}, {"tensors", weights}}},
      {"files", files},
  };
  // Only CUDA artifacts with precompiled kernels have the key, so CPU manifests are unchanged.
  if (!manifest.kernels.empty()) {
    ordered_json kernels = ordered_json::array();
    for (const KernelEntry& kernel : manifest.kernels)
      kernels.push_back({{"key", kernel.key},
                         {"arch", kernel.arch},
                         {"entry", kernel.entry},
                         {"file", kernel.file},
                         {"bytes", kernel.bytes},
                         {"sha256", kernel.sha256}});
    result["kernels"] = kernels;
  }
  return result;
}

ArtifactManifest manifestFromJson(const json& j, const std::string& sourceName) {
  // The format and version are checked before anything else: a newer layout must be reported as
  // such, not as whichever field it happens to have renamed.
  if (!j.is_object() || !j.contains("format") || j["format"] != kArtifactFormatName)
    fail(sourceName, ": not a pagedc artifact manifest (no \"format\": \"", kArtifactFormatName, "\")");
  if (!j.contains("format_version") || !j["format_version"].is_number_integer())
    fail(sourceName, ": no integer \"format_version\"");
  int version = j["format_version"].get<int>();
  if (version != kArtifactFormatVersion)
    fail(sourceName, ": format version ", version, " is not supported (this pagedc ", pagedcVersion(), " reads version ",
         kArtifactFormatVersion, "); recompile the model with this pagedc");
  ArtifactManifest manifest;
  try {
    manifest.formatVersion = version;
    manifest.pagedcVersion = j.at("pagedc_version").get<std::string>();
    manifest.sourcePath = j.at("source").at("path").get<std::string>();
    manifest.sourceSha256 = j.at("source").at("sha256").get<std::string>();
    const json& options = j.at("options");
    manifest.options.blockSize = options.at("block_size").get<int64_t>();
    manifest.options.dtype = dtypeField(options.at("dtype"), "options.dtype");
    manifest.options.target = options.at("target").get<std::string>();
    manifest.facts = factsFromJson(j.at("facts"));
    manifest.opCountsBefore = j.at("op_counts").at("before").get<std::map<std::string, int64_t>>();
    manifest.opCountsAfter = j.at("op_counts").at("after").get<std::map<std::string, int64_t>>();
    manifest.inputs = valuesFromJson(j.at("inputs"));
    manifest.outputs = valuesFromJson(j.at("outputs"));
    const json& weights = j.at("weights");
    for (const json& w : weights.at("tensors")) {
      WeightEntry entry;
      entry.name = w.at("name").get<std::string>();
      entry.dtype = dtypeField(w.at("dtype"), "weights.tensors.dtype");
      entry.shape = w.at("shape").get<std::vector<int64_t>>();
      entry.offset = w.at("offset").get<uint64_t>();
      entry.bytes = w.at("bytes").get<uint64_t>();
      manifest.weights.push_back(std::move(entry));
    }
    for (const auto& [name, file] : j.at("files").items())
      manifest.files[name] = {file.at("bytes").get<uint64_t>(), file.at("sha256").get<std::string>()};
    if (j.contains("kernels")) {
      for (const json& k : j.at("kernels")) {
        KernelEntry entry;
        entry.key = k.at("key").get<std::string>();
        entry.arch = k.at("arch").get<int>();
        entry.entry = k.at("entry").get<std::string>();
        entry.file = k.at("file").get<std::string>();
        entry.bytes = k.at("bytes").get<uint64_t>();
        entry.sha256 = k.at("sha256").get<std::string>();
        if (!manifest.files.count(entry.file)) fail("kernel ", entry.key, " for sm_", entry.arch, ": its file ", entry.file, " is not listed in \"files\"");
        manifest.kernels.push_back(std::move(entry));
      }
    }
  } catch (const json::exception& e) {
    fail(sourceName, ": ", e.what());
  } catch (const Error& e) {
    fail(sourceName, ": ", e.what());
  }
  return manifest;
}

std::string printManifest(const ArtifactManifest& manifest) { return manifestToJson(manifest).dump(2) + "\n"; }

ArtifactManifest parseManifest(const std::string& text, const std::string& sourceName) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    fail(sourceName, ": bad JSON: ", e.what());
  }
  return manifestFromJson(j, sourceName);
}

}  // namespace pagedc
