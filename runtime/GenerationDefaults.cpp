// Reading eos_token_id from the artifact's copied Hugging Face configuration files.
#include "runtime/GenerationDefaults.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>

#include "ir/Error.h"

namespace pagedc {

namespace {
// The file's JSON; nullopt when it does not exist. Malformed JSON throws Error naming the file.
std::optional<nlohmann::json> readJsonFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path.string(), ": ", e.what());
  }
}
}  // namespace

GenerationDefaults readGenerationDefaults(const std::string& artifactDir) {
  GenerationDefaults defaults;
  const std::filesystem::path dir(artifactDir);
  const std::optional<nlohmann::json> config = readJsonFile(dir / "config.json");
  if (config)
    for (const char* key : {"max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"})
      if (config->contains(key) && (*config)[key].is_number_integer() && (*config)[key].get<int64_t>() > 0) {
        defaults.maxPositionEmbeddings = (*config)[key].get<int64_t>();
        break;
      }
  // eos_token_id: generation_config.json first, then config.json.
  const std::filesystem::path generationPath = dir / "generation_config.json";
  const std::pair<std::filesystem::path, std::optional<nlohmann::json>> sources[] = {
      {generationPath, readJsonFile(generationPath)}, {dir / "config.json", config}};
  for (const auto& [path, json] : sources) {
    if (!json || !json->contains("eos_token_id") || (*json)["eos_token_id"].is_null()) continue;
    const auto& eos = (*json)["eos_token_id"];
    if (eos.is_number_integer()) defaults.eosTokenIds.push_back(eos.get<int64_t>());
    else if (eos.is_array())
      for (const auto& id : eos) {
        if (!id.is_number_integer()) fail(path.string(), ": eos_token_id entries must be integers");
        defaults.eosTokenIds.push_back(id.get<int64_t>());
      }
    else fail(path.string(), ": eos_token_id must be an integer or a list of integers");
    break;
  }
  return defaults;
}

}  // namespace pagedc
