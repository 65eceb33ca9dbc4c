// Chat templates from tokenizer_config.json, rendered as transformers' apply_chat_template does.
#include "runtime/chat/ChatTemplate.h"

#include "ir/Error.h"
#include "runtime/chat/JinjaTemplate.h"

namespace pagedc {

namespace {

using jinja::Value;

// The special tokens transformers passes to every chat template (SPECIAL_TOKENS_ATTRIBUTES).
constexpr const char* kSpecialTokenNames[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                              "pad_token", "cls_token", "mask_token"};

// The reasoning fields apply_chat_template aliases; the first is the one templates read.
constexpr const char* kReasoningFields[] = {"reasoning_content", "thinking", "reasoning"};

template <class Json>
Value toValue(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return Value(jinja::None{});
    case Json::value_t::boolean: return Value(j.template get<bool>());
    case Json::value_t::number_integer: return Value(j.template get<int64_t>());
    case Json::value_t::number_unsigned: {
      auto u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float: return Value(j.template get<double>());
    case Json::value_t::string: return Value(j.template get<std::string>());
    case Json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(toValue(e));
      return Value::list(std::move(items));
    }
    case Json::value_t::object: {
      Value d = Value::dict();
      auto& entries = d.dictObject()->entries;
      entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) entries.emplace_back(Value(it.key()), toValue(it.value()));
      return d;
    }
    default: return Value(jinja::None{});
  }
}

// What apply_chat_template does to each message before rendering: drop null-valued keys, then
// {"thinking": r, **message, "reasoning_content": r} when the message carries reasoning r.
Value normalizeMessage(const Value& message, std::size_t index) {
  if (!message.isDict()) fail("messages[", index, "] must be an object, got ", message.typeName());
  Value out = Value::dict();
  jinja::DictObject& kept = *out.dictObject();
  for (const auto& [k, v] : message.dictObject()->entries)
    if (!v.isNone()) kept.entries.emplace_back(k, v);
  const Value* reasoning = nullptr;
  for (const char* field : kReasoningFields) {
    if ((reasoning = kept.find(std::string_view(field)))) break;
  }
  if (!reasoning) return out;
  Value r = *reasoning;
  Value aliased = Value::dict();
  jinja::DictObject& a = *aliased.dictObject();
  a.set(Value("thinking"), r);
  for (const auto& [k, v] : kept.entries) a.set(k, v);
  a.set(Value("reasoning_content"), r);
  return aliased;
}

std::string renderValues(const jinja::Template& tmpl, const std::map<std::string, std::string>& specialTokens, const Value& msgs,
                         const Value& extra, bool addGenerationPrompt) {
  if (!extra.isDict()) fail("chat template variables must be an object");
  if (!msgs.isList()) fail("messages must be an array");
  if (msgs.items().empty()) fail("cannot apply the chat template to an empty conversation");
  std::vector<Value> normalized;
  for (std::size_t i = 0; i < msgs.items().size(); ++i) normalized.push_back(normalizeMessage(msgs.items()[i], i));

  Value vars = Value::dict();
  jinja::DictObject& v = *vars.dictObject();
  for (const auto& [k, token] : specialTokens) v.set(Value(k), Value(token));
  v.set(Value("tools"), Value(jinja::None{}));
  v.set(Value("documents"), Value(jinja::None{}));
  for (const auto& [k, val] : extra.dictObject()->entries) v.set(k, val);
  v.set(Value("messages"), Value::list(std::move(normalized)));
  v.set(Value("add_generation_prompt"), Value(addGenerationPrompt));
  return tmpl.render(vars);
}

std::string specialTokenText(const nlohmann::json& v, const std::string& sourceName, const char* key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  fail(sourceName, ": ", key, " must be a string or an object with a string \"content\"");
}

}  // namespace

nlohmann::ordered_json ChatMessage::toJson() const {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["role"] = role;
  j["content"] = content;
  if (extra.is_object())
    for (const auto& [k, v] : extra.items()) j[k] = v;
  return j;
}

const std::string& ChatTemplate::defaultSource() {
  static const std::string source =
      "{%- for message in messages -%}\n"
      "{{- '<|im_start|>' + message['role'] + '\\n' -}}\n"
      "{%- if message['content'] is string -%}\n"
      "{{- message['content'] -}}\n"
      "{%- else -%}\n"
      "{%- for part in message['content'] -%}\n"
      "{%- if part is mapping and part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}\n"
      "{%- endfor -%}\n"
      "{%- endif -%}\n"
      "{{- '<|im_end|>\\n' -}}\n"
      "{%- endfor -%}\n"
      "{%- if add_generation_prompt -%}\n"
      "{{- '<|im_start|>assistant\\n' -}}\n"
      "{%- endif -%}\n";
  return source;
}

ChatTemplate ChatTemplate::fromSource(const std::string& jinjaSource, std::string sourceName,
                                      std::map<std::string, std::string> specialTokens) {
  ChatTemplate t;
  t.source_ = jinjaSource;
  t.specialTokens_ = std::move(specialTokens);
  t.template_ = std::make_shared<const jinja::Template>(jinjaSource, std::move(sourceName));
  return t;
}

ChatTemplate ChatTemplate::fromTokenizerConfig(const nlohmann::json& config, std::string sourceName) {
  if (!config.is_object()) fail(sourceName, ": expected a JSON object");
  std::map<std::string, std::string> tokens;
  for (const char* key : kSpecialTokenNames) {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) continue;
    tokens[key] = specialTokenText(*it, sourceName, key);
  }
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) {
    ChatTemplate t = fromSource(defaultSource(), "default chat template", std::move(tokens));
    t.isDefault_ = true;
    return t;
  }
  if (it->is_string()) return fromSource(it->get<std::string>(), sourceName + " chat_template", std::move(tokens));
  if (it->is_array()) {
    std::string names;
    for (const auto& entry : *it) {
      if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() || !entry.contains("template") ||
          !entry["template"].is_string())
        fail(sourceName, ": chat_template entries must be {\"name\": ..., \"template\": ...}");
      std::string name = entry["name"].get<std::string>();
      if (name == "default")
        return fromSource(entry["template"].get<std::string>(), sourceName + " chat_template 'default'", std::move(tokens));
      names += (names.empty() ? "'" : ", '") + name + "'";
    }
    fail(sourceName, ": chat_template has no template named 'default' (it has ", names.empty() ? "none" : names, ")");
  }
  fail(sourceName, ": chat_template must be a string or a list of {name, template}");
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool addGenerationPrompt,
                                 const nlohmann::ordered_json& extraVariables) const {
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) array.push_back(m.toJson());
  return render(array, addGenerationPrompt, extraVariables);
}

std::string ChatTemplate::render(const nlohmann::json& messages, bool addGenerationPrompt,
                                 const nlohmann::json& extraVariables) const {
  return renderValues(*template_, specialTokens_, toValue(messages), extraVariables.is_null() ? Value::dict() : toValue(extraVariables),
                      addGenerationPrompt);
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool addGenerationPrompt,
                                 const nlohmann::ordered_json& extraVariables) const {
  return renderValues(*template_, specialTokens_, toValue(messages), extraVariables.is_null() ? Value::dict() : toValue(extraVariables),
                      addGenerationPrompt);
}

}  // namespace pagedc
