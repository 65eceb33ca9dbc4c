// A model's chat template: the Jinja template of its tokenizer_config.json, rendered over OpenAI-style
// messages as transformers' apply_chat_template(tokenize=False) renders it (docs/CHAT_TEMPLATE.md).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pagedc {

namespace jinja {
class Template;
}

// One message; content is a string, a list of {"type": "text", "text": ...} parts, or null; extra
// holds the other fields (name, tool_calls, tool_call_id, reasoning_content, ...), passed through.
struct ChatMessage {
  std::string role;
  nlohmann::ordered_json content;
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();

  nlohmann::ordered_json toJson() const;
};

class ChatTemplate {
public:
  // From a parsed tokenizer_config.json: its chat_template (a string, or a list of {name, template}
  // of which the one named "default" is used), else the default template (defaultSource()). Special
  // tokens (bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token; strings or
  // {"content": ...} objects) become template variables. Errors name sourceName + " chat_template".
  static ChatTemplate fromTokenizerConfig(const nlohmann::json& tokenizerConfig, std::string sourceName = "tokenizer_config.json");
  // A template given as text; specialTokens are variables such as {"bos_token", "<s>"}.
  static ChatTemplate fromSource(const std::string& jinjaSource, std::string sourceName,
                                 std::map<std::string, std::string> specialTokens = {});
  // The template used when a model has none: ChatML-style "<|im_start|>role\ncontent<|im_end|>\n"
  // turns (text parts joined), and "<|im_start|>assistant\n" as the generation prompt.
  static const std::string& defaultSource();

  // Renders an OpenAI messages array. As apply_chat_template does, keys whose value is null are
  // dropped from each message and reasoning_content / thinking / reasoning are aliased to each
  // other; extraVariables (an object, e.g. chat_template_kwargs plus "tools") become template
  // variables, overriding the special tokens; tools and documents are None unless given there.
  // nlohmann::json sorts object keys, which is the order templates then see (tojson of tool-call
  // arguments); pass ordered_json to keep the request's order. Thread-safe. Throws pagedc::Error
  // naming the template source and line ("tokenizer_config.json chat_template, line 3: Conversation
  // roles must alternate user/assistant/user/assistant/...").
  std::string render(const nlohmann::ordered_json& messages, bool addGenerationPrompt,
                     const nlohmann::ordered_json& extraVariables = nlohmann::ordered_json::object()) const;
  std::string render(const nlohmann::json& messages, bool addGenerationPrompt,
                     const nlohmann::json& extraVariables = nlohmann::json::object()) const;
  std::string render(const std::vector<ChatMessage>& messages, bool addGenerationPrompt,
                     const nlohmann::ordered_json& extraVariables = nlohmann::ordered_json::object()) const;

  // True when the model had no chat template and defaultSource() is used.
  bool isDefault() const { return isDefault_; }
  const std::string& source() const { return source_; }
  const std::map<std::string, std::string>& specialTokens() const { return specialTokens_; }

private:
  ChatTemplate() = default;

  std::string source_;
  std::map<std::string, std::string> specialTokens_;
  std::shared_ptr<const jinja::Template> template_;
  bool isDefault_ = false;
};

}  // namespace pagedc
