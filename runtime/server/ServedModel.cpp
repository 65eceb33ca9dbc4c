// Loading the served model's tokenizer, chat template and generation defaults.
#include "runtime/server/ServedModel.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>

#include "ir/Error.h"
#include "runtime/GenerationDefaults.h"

namespace pagedc::server {

ServedModel ServedModel::load(const std::string& artifactDir, std::string name, int64_t vocabSize, int64_t maxModelLen) {
  ServedModel model;
  model.name = std::move(name);
  model.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  model.vocabSize = vocabSize;
  model.maxModelLen = maxModelLen;
  model.eosTokenIds = readGenerationDefaults(artifactDir).eosTokenIds;
  const std::filesystem::path dir(artifactDir);
  if (std::filesystem::exists(dir / "tokenizer.json")) {
    model.tokenizer.emplace(Tokenizer::fromFile(dir / "tokenizer.json"));
    nlohmann::json config = nlohmann::json::object();
    const std::filesystem::path configPath = dir / "tokenizer_config.json";
    if (std::ifstream in(configPath); in) {
      try {
        config = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception& e) {
        fail(configPath.string(), ": ", e.what());
      }
    }
    std::string source = configPath.string();
    if (std::ifstream jinja(dir / "chat_template.jinja"); jinja) {
      config["chat_template"] = std::string(std::istreambuf_iterator<char>(jinja), {});
      source = (dir / "chat_template.jinja").string();
    }
    model.chatTemplate.emplace(ChatTemplate::fromTokenizerConfig(config, source));
    // A for-loop over message content (`for part in message['content']` / `message.content`).
    static const std::regex iteratesContent(R"(for\s+\w+\s+in\s+\w+(\[\s*['"]content['"]\s*\]|\.content)\b)");
    model.chatTemplateIteratesContent = std::regex_search(model.chatTemplate->source(), iteratesContent);
  }
  return model;
}

std::string ServedModel::tokenText(TokenId id) const {
  if (!tokenizer || id < 0 || static_cast<size_t>(id) >= tokenizer->vocabSize()) return "token_" + std::to_string(id);
  const int32_t ids[] = {static_cast<int32_t>(id)};
  return tokenizer->decode(ids, false);
}

}  // namespace pagedc::server
