// What the server knows of the model it serves beyond the engine: its name, tokenizer, chat
// template, end-of-sequence ids and context length, read from the artifact directory.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/PrefixCache.h"  // TokenId
#include "runtime/chat/ChatTemplate.h"
#include "runtime/tokenizer/Tokenizer.h"

namespace pagedc::server {

struct ServedModel {
  std::string name;       // the `model` clients send and /v1/models lists
  int64_t created = 0;    // Unix time the server loaded it
  int64_t vocabSize = 0;  // the model's (logits rows)
  int64_t maxModelLen = 0;
  std::vector<int64_t> eosTokenIds;
  std::optional<Tokenizer> tokenizer;        // absent: prompts must be token ids, outputs carry no text
  std::optional<ChatTemplate> chatTemplate;  // absent without a tokenizer
  // Whether the template loops over a message's content parts (Qwen2-VL style) rather than
  // printing content as a string; string templates get text parts joined (vLLM's "auto").
  bool chatTemplateIteratesContent = false;

  // Reads tokenizer.json, tokenizer_config.json (its chat_template, or chat_template.jinja beside
  // it, the newer transformers' file) and generation_config.json / config.json from the artifact
  // directory (any may be missing). Throws Error naming a malformed file.
  static ServedModel load(const std::string& artifactDir, std::string name, int64_t vocabSize, int64_t maxModelLen);

  // A token's own text, for logprobs: special tokens included, an incomplete UTF-8 sequence as
  // U+FFFD (as decode() gives). "token_<id>" without a tokenizer or for an id it lacks.
  std::string tokenText(TokenId id) const;
};

}  // namespace pagedc::server
