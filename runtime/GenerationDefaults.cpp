// Reading eos_token_id from the artifact's copied Hugging Face configuration files.
#include "runtime/GenerationDefaults.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "ir/Error.h"

namespace pagedc {

GenerationDefaults readGenerationDefaults(const std::string& artifactDir) {
  GenerationDefaults defaults;
  {
    std::filesystem::path path = std::filesystem::path(artifactDir) / "config.json";
    if (std::ifstream in(path); in) {
      nlohmann::json json;
      try {
        json = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception& e) {
        fail(path.string(), ": ", e.what());
      }
      for (const char* key : {"max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"})
        if (json.contains(key) && json[key].is_number_integer() && json[key].get<int64_t>() > 0) {
          defaults.maxPositionEmbeddings = json[key].get<int64_t>();
          break;
        }
    }
  }
  for (const char* name : {"generation_config.json", "config.json"}) {
    std::filesystem::path path = std::filesystem::path(artifactDir) / name;
    std::ifstream in(path);
    if (!in) continue;
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      fail(path.string(), ": ", e.what());
    }
    if (!json.contains("eos_token_id") || json["eos_token_id"].is_null()) continue;
    const auto& eos = json["eos_token_id"];
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
