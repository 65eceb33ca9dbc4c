// Chat templates against transformers' apply_chat_template: every golden of
// models/fixtures/chat_templates/golden.json byte for byte (scripts/fixtures/export_chat_template_goldens.py),
// raise_exception errors with their message and line, and loading from tokenizer_config.json.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>

#include "ir/Error.h"
#include "runtime/chat/ChatTemplate.h"

namespace pagedc {
namespace {

using ojson = nlohmann::ordered_json;

const std::string kDir = std::string(PAGEDC_SOURCE_DIR) + "/models/fixtures/chat_templates/";

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

ojson readJson(const std::string& name) { return ojson::parse(readFile(kDir + name)); }

// The tokenizer_config.json a fixture template stands for: its special tokens, and chat_template
// from its file as a string, as a [{name, template}] list, or absent (the default template).
nlohmann::json tokenizerConfig(const ojson& entry) {
  nlohmann::json config = nlohmann::json::parse(entry["tokenizer_config"].dump());
  std::string source = readFile(kDir + entry["file"].get<std::string>());
  std::string format = entry.value("chat_template_format", "string");
  if (format == "string") {
    config["chat_template"] = source;
  } else if (format == "list") {
    config["chat_template"] = nlohmann::json::array(
        {{{"name", "tool_use"}, {"template", "{{ raise_exception('not this one') }}"}}, {{"name", "default"}, {"template", source}}});
  }
  return config;
}

std::string renderError(const ChatTemplate& t, const ojson& messages, bool addGenerationPrompt, const ojson& extra = ojson::object()) {
  try {
    t.render(messages, addGenerationPrompt, extra);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatTemplateTest, ReproducesTransformersGoldens) {
  ojson templates = readJson("templates.json")["templates"];
  ojson golden = readJson("golden.json");
  std::map<std::string, ojson> conversations;
  ojson conversationList = readJson("conversations.json")["conversations"];
  for (const auto& c : conversationList) conversations[c["name"].get<std::string>()] = c;
  std::map<std::string, std::unique_ptr<ChatTemplate>> loaded;
  for (const auto& t : templates) {
    std::string name = t["name"].get<std::string>();
    loaded[name] = std::make_unique<ChatTemplate>(ChatTemplate::fromTokenizerConfig(tokenizerConfig(t), name + "/tokenizer_config.json"));
    EXPECT_EQ(loaded[name]->isDefault(), t.value("chat_template_format", "string") == "none") << name;
  }

  std::size_t outputs = 0, errors = 0;
  for (const auto& c : golden["cases"]) {
    const std::string name = c["template"].get<std::string>();
    const ojson& conversation = conversations.at(c["conversation"].get<std::string>());
    const bool addGenerationPrompt = c["add_generation_prompt"].get<bool>();
    SCOPED_TRACE(name + " / " + c["conversation"].get<std::string>() + (addGenerationPrompt ? " / generation prompt" : ""));
    const ChatTemplate& t = *loaded.at(name);
    const ojson extra = conversation.contains("extra") ? conversation["extra"] : ojson::object();
    if (c.contains("output")) {
      ++outputs;
      std::string out;
      ASSERT_NO_THROW(out = t.render(conversation["messages"], addGenerationPrompt, extra));
      EXPECT_EQ(out, c["output"].get<std::string>());
      continue;
    }
    ++errors;
    const ojson& error = c["error"];
    std::string message = renderError(t, conversation["messages"], addGenerationPrompt, extra);
    ASSERT_FALSE(message.empty()) << "Jinja2 raised " << error.dump();
    // Every error names the template and a line; raise_exception's carries its message and line.
    std::string where = t.isDefault() ? "default chat template, line " : name + "/tokenizer_config.json chat_template";
    EXPECT_NE(message.find(where), std::string::npos) << message;
    if (error["type"] == "TemplateError") {
      std::string expected = ", line " + std::to_string(error["line"].get<int>()) + ": " + error["message"].get<std::string>();
      EXPECT_NE(message.find(expected), std::string::npos) << message << "\nexpected: " << expected;
    }
  }
  EXPECT_GT(outputs, 500u);
  EXPECT_GT(errors, 50u);
}

TEST(ChatTemplateTest, DefaultTemplateIsTheFixtureOne) {
  EXPECT_EQ(ChatTemplate::defaultSource(), readFile(kDir + "default.jinja"));
  ChatTemplate t = ChatTemplate::fromTokenizerConfig(nlohmann::json::object());
  EXPECT_TRUE(t.isDefault());
  ojson messages = ojson::parse(R"([{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])");
  EXPECT_EQ(t.render(messages, true), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nab<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.render(messages, false), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nab<|im_end|>\n");
}

TEST(ChatTemplateTest, SpecialTokensFromTokenizerConfig) {
  nlohmann::json config = {
      {"bos_token", {{"__type", "AddedToken"}, {"content", "<s>"}, {"lstrip", false}}},
      {"eos_token", "</s>"},
      {"pad_token", nullptr},
      {"additional_special_tokens", {"<x>"}},
      {"chat_template", "{{ bos_token }}|{{ eos_token }}|{{ pad_token is defined }}|{{ additional_special_tokens is defined }}|{{ tools }}|{{ documents }}"}};
  ChatTemplate t = ChatTemplate::fromTokenizerConfig(config);
  EXPECT_FALSE(t.isDefault());
  EXPECT_EQ(t.specialTokens().at("bos_token"), "<s>");
  nlohmann::json messages = nlohmann::json::parse(R"([{"role": "user", "content": "x"}])");
  EXPECT_EQ(t.render(messages, false), "<s>|</s>|False|False|None|None");
  // Extra variables override special tokens and supply tools.
  EXPECT_EQ(t.render(messages, false, nlohmann::json{{"eos_token", "<E>"}, {"tools", {1}}}), "<s>|<E>|False|False|[1]|None");
}

TEST(ChatTemplateTest, NamedTemplateList) {
  nlohmann::json config = {{"chat_template", {{{"name", "rag"}, {"template", "rag"}}, {{"name", "default"}, {"template", "plain {{ messages | length }}"}}}}};
  EXPECT_EQ(ChatTemplate::fromTokenizerConfig(config).render(nlohmann::json::parse(R"([{"role": "user", "content": "x"}])"), false), "plain 1");
  nlohmann::json noDefault = {{"chat_template", {{{"name", "rag"}, {"template", "rag"}}, {{"name", "tool_use"}, {"template", "t"}}}}};
  try {
    ChatTemplate::fromTokenizerConfig(noDefault, "cfg.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "cfg.json: chat_template has no template named 'default' (it has 'rag', 'tool_use')");
  }
  EXPECT_THROW(ChatTemplate::fromTokenizerConfig(nlohmann::json{{"chat_template", 3}}), Error);
  EXPECT_THROW(ChatTemplate::fromTokenizerConfig(nlohmann::json{{"eos_token", 3}}), Error);
}

TEST(ChatTemplateTest, MessagesAreNormalizedAsApplyChatTemplateDoes) {
  ChatTemplate t = ChatTemplate::fromSource(
      "{% for m in messages %}{{ m | tojson }}\n{% endfor %}", "t.jinja");
  // Null-valued keys are dropped; reasoning is aliased to thinking and reasoning_content.
  ojson messages = ojson::parse(R"([
    {"role": "assistant", "content": null, "tool_calls": [{"id": "1"}]},
    {"role": "assistant", "content": "x", "reasoning": "why"},
    {"role": "assistant", "thinking": "t", "content": "y", "reasoning_content": null}])");
  EXPECT_EQ(t.render(messages, false),
            "{\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"1\"}]}\n"
            "{\"thinking\": \"why\", \"role\": \"assistant\", \"content\": \"x\", \"reasoning\": \"why\", \"reasoning_content\": \"why\"}\n"
            "{\"thinking\": \"t\", \"role\": \"assistant\", \"content\": \"y\", \"reasoning_content\": \"t\"}\n");
  // nlohmann::json sorts keys; ordered_json keeps the request's order.
  nlohmann::json sorted = nlohmann::json::parse(R"([{"role": "user", "content": "c"}])");
  EXPECT_EQ(t.render(sorted, false), "{\"content\": \"c\", \"role\": \"user\"}\n");
  std::vector<ChatMessage> structs = {{"user", "hello", ojson{{"name", "ann"}}}};
  EXPECT_EQ(t.render(structs, false), "{\"role\": \"user\", \"content\": \"hello\", \"name\": \"ann\"}\n");
}

TEST(ChatTemplateTest, ErrorsNameTheSource) {
  try {
    ChatTemplate::fromTokenizerConfig(nlohmann::json{{"chat_template", "line one\n{% if x %}\n"}}, "model/tokenizer_config.json");
    FAIL() << "expected a syntax error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model/tokenizer_config.json chat_template, line 2: syntax error"), std::string::npos) << e.what();
  }
  ChatTemplate t = ChatTemplate::fromTokenizerConfig(
      nlohmann::json{{"chat_template", "{% for m in messages %}\n{% if m.role == 'system' %}\n{{ raise_exception('System role not supported') }}\n{% endif %}\n{% endfor %}"}},
      "model/tokenizer_config.json");
  EXPECT_EQ(renderError(t, ojson::parse(R"([{"role": "system", "content": "s"}])"), false),
            "model/tokenizer_config.json chat_template, line 3: System role not supported");
  EXPECT_NE(renderError(t, ojson::array(), false).find("empty conversation"), std::string::npos);
  EXPECT_NE(renderError(t, ojson::parse(R"(["not an object"])"), false).find("messages[0] must be an object"), std::string::npos);
}

}  // namespace
}  // namespace pagedc
