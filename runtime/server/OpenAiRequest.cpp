// Reading OpenAI completions and chat requests into engine prompts and sampling parameters.
#include "runtime/server/OpenAiRequest.h"

#include "ir/Error.h"
#include "runtime/server/JsonFields.h"

namespace pagedc::server {

namespace {

// The sampling fields completions and chat share (OpenAI's and vLLM's names).
void readSamplingFields(JsonFields& f, GenerationJob& job, const ServerLimits& limits) {
  SamplingParams& p = job.params;
  p.n = f.integer("n", 1, limits.maxN).value_or(1);
  p.bestOf = f.integer("best_of", 1, limits.maxN);
  p.temperature = f.number("temperature").value_or(1.0);
  p.topP = f.number("top_p").value_or(1.0);
  p.topK = f.integer("top_k").value_or(-1);
  p.minP = f.number("min_p").value_or(0.0);
  p.repetitionPenalty = f.number("repetition_penalty").value_or(1.0);
  p.presencePenalty = f.number("presence_penalty").value_or(0.0);
  p.frequencyPenalty = f.number("frequency_penalty").value_or(0.0);
  if (const nlohmann::json& bias = f.raw("logit_bias"); !bias.is_null()) {
    if (!bias.is_object()) throw badField("logit_bias", "logit_bias must be an object of token id -> bias, got " + describeJson(bias));
    for (const auto& [key, value] : bias.items()) {
      int64_t id = 0;
      size_t used = 0;
      try {
        id = std::stoll(key, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != key.size()) throw badField("logit_bias", "logit_bias keys must be token ids, got \"" + key + "\"");
      if (!value.is_number()) throw badField("logit_bias", "logit_bias[" + key + "] must be a number, got " + describeJson(value));
      p.logitBias[id] = value.get<double>();
    }
  }
  p.seed = f.integer("seed");
  p.stop = f.stringOrStrings("stop");
  p.stopTokenIds = f.integers("stop_token_ids");
  p.ignoreEos = f.boolean("ignore_eos").value_or(false);
  p.minTokens = f.integer("min_tokens", 0).value_or(0);
  p.includeStopStrInOutput = f.boolean("include_stop_str_in_output").value_or(false);
  p.skipSpecialTokens = f.boolean("skip_special_tokens").value_or(true);
  p.useBeamSearch = f.boolean("use_beam_search").value_or(false);
  p.lengthPenalty = f.number("length_penalty").value_or(1.0);
  if (const nlohmann::json& e = f.raw("early_stopping"); !e.is_null()) {
    if (e.is_boolean()) p.earlyStopping = e.get<bool>() ? EarlyStopping::Immediate : EarlyStopping::Heuristic;
    else if (e == "never") p.earlyStopping = EarlyStopping::Never;
    else throw badField("early_stopping", "early_stopping must be true, false or \"never\", got " + describeJson(e));
  }
  p.promptLogprobs = f.integer("prompt_logprobs", 0, limits.maxLogprobs);
  job.stream = f.boolean("stream").value_or(false);
  if (const nlohmann::json& options = f.raw("stream_options"); !options.is_null()) {
    if (!job.stream) throw badField("stream_options", "stream_options is only allowed when stream is true");
    JsonFields o(options, "stream_options");
    job.includeUsage = o.boolean("include_usage").value_or(false);
    job.continuousUsage = o.boolean("continuous_usage_stats").value_or(false);
    o.rejectUnknown();
  }
  // Accepted for compatibility, no effect: user (abuse tracking), the decoder already joins
  // special tokens as Hugging Face does.
  // OpenAI's storage and routing fields (store, metadata, service_tier) likewise.
  f.ignore({"user", "spaces_between_special_tokens", "store", "metadata", "service_tier"});
  if (auto model = f.string("model")) job.model = *model;
}

// max_tokens against the context: vLLM's rule, prompt + max_tokens <= max_model_len; unset
// max_tokens takes what is left (chat) or 16 (completions, OpenAI's default).
void settleMaxTokens(GenerationJob& job, std::optional<int64_t> requested, const char* field, const ServedModel& model,
                     const ServerLimits& limits) {
  size_t longest = 0;
  for (const PromptInput& prompt : job.prompts) longest = std::max(longest, prompt.ids.size());
  const auto promptLen = static_cast<int64_t>(longest);
  if (promptLen >= model.maxModelLen)
    throw badField(job.api == Api::Chat ? "messages" : "prompt",
                   "This model's maximum context length is " + std::to_string(model.maxModelLen) + " tokens, and the prompt has " +
                       std::to_string(promptLen) + " tokens, leaving none to generate");
  if (limits.maxTokens > 0 && requested && *requested > limits.maxTokens)
    throw badField(field, std::string(field) + " must be <= " + std::to_string(limits.maxTokens) + " (the server's --max-tokens-limit), got " +
                              std::to_string(*requested));
  if (requested && promptLen + *requested > model.maxModelLen)
    throw badField(field, "This model's maximum context length is " + std::to_string(model.maxModelLen) + " tokens. However, you requested " +
                              std::to_string(promptLen + *requested) + " tokens (" + std::to_string(promptLen) + " in the prompt, " +
                              std::to_string(*requested) + " in " + field + ")");
  int64_t value = requested ? *requested : (job.api == Api::Completions ? 16 : model.maxModelLen - promptLen);
  value = std::min(value, model.maxModelLen - promptLen);
  if (limits.maxTokens > 0) value = std::min(value, limits.maxTokens);
  job.params.maxTokens = value;
}

// SamplingParams' own checks, as 400s naming the field (their messages start with it).
void validateParams(GenerationJob& job, const ServedModel& model) {
  job.params.eosTokenIds = model.eosTokenIds;
  if (!job.params.stop.empty() && !model.tokenizer)
    throw badField("stop", "stop strings need the model's tokenizer, and this model has no tokenizer.json; use stop_token_ids");
  try {
    job.params.validate(model.vocabSize);
  } catch (const Error& e) {
    throw badFieldFromMessage(e.what());
  }
}

std::vector<TokenId> encodeText(const ServedModel& model, const std::string& text, bool addSpecialTokens, const std::string& field) {
  if (!model.tokenizer)
    throw badField(field, field + " is text, and this model has no tokenizer.json (compile it from a directory that has one); give token ids");
  try {
    std::vector<int32_t> ids = model.tokenizer->encode(text, addSpecialTokens);
    return {ids.begin(), ids.end()};
  } catch (const Error& e) {
    throw badField(field, field + ": " + e.what());
  }
}

std::string decodeIds(const ServedModel& model, const std::vector<TokenId>& ids) {
  if (!model.tokenizer) return {};
  std::vector<int32_t> narrow;
  for (TokenId id : ids)
    if (id >= 0 && static_cast<size_t>(id) < model.tokenizer->vocabSize()) narrow.push_back(static_cast<int32_t>(id));
  return model.tokenizer->decode(narrow, false);
}

std::vector<TokenId> tokenIds(const nlohmann::json& list, const std::string& field, const ServedModel& model) {
  std::vector<TokenId> ids;
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_number_integer()) throw badField(field, field + "[" + std::to_string(i) + "] must be a token id, got " + describeJson(list[i]));
    int64_t id = list[i].get<int64_t>();
    if (id < 0 || id >= model.vocabSize)
      throw badField(field, field + "[" + std::to_string(i) + "] must be a token id in [0, " + std::to_string(model.vocabSize) + "), got " +
                                std::to_string(id));
    ids.push_back(id);
  }
  return ids;
}

// OpenAI's prompt: a string, a list of strings, a list of token ids, or a list of those lists.
std::vector<PromptInput> readPrompts(const nlohmann::json& prompt, const ServedModel& model, bool addSpecialTokens, const ServerLimits& limits) {
  auto fromText = [&](const std::string& text, const std::string& field) {
    return PromptInput{encodeText(model, text, addSpecialTokens, field), text};
  };
  auto fromIds = [&](const nlohmann::json& list, const std::string& field) {
    PromptInput in{tokenIds(list, field, model), {}};
    in.text = decodeIds(model, in.ids);
    return in;
  };
  std::vector<PromptInput> prompts;
  if (prompt.is_null()) throw badField("prompt", "prompt is required");
  if (prompt.is_string()) prompts.push_back(fromText(prompt.get<std::string>(), "prompt"));
  else if (prompt.is_array() && !prompt.empty() && prompt[0].is_number())
    prompts.push_back(fromIds(prompt, "prompt"));
  else if (prompt.is_array() && !prompt.empty()) {
    if (static_cast<int64_t>(prompt.size()) > limits.maxPrompts)
      throw badField("prompt", "prompt holds " + std::to_string(prompt.size()) + " prompts, more than the server's limit of " +
                                   std::to_string(limits.maxPrompts));
    for (size_t i = 0; i < prompt.size(); ++i) {
      const std::string field = "prompt[" + std::to_string(i) + "]";
      if (prompt[i].is_string()) prompts.push_back(fromText(prompt[i].get<std::string>(), field));
      else if (prompt[i].is_array() && !prompt[i].empty()) prompts.push_back(fromIds(prompt[i], field));
      else throw badField("prompt", field + " must be a string or a non-empty list of token ids, got " + describeJson(prompt[i]));
    }
  } else {
    throw badField("prompt", "prompt must be a string, a list of strings, or (lists of) token ids, got " + describeJson(prompt));
  }
  for (size_t i = 0; i < prompts.size(); ++i)
    if (prompts[i].ids.empty()) throw badField("prompt", "prompt" + (prompts.size() > 1 ? "[" + std::to_string(i) + "]" : std::string()) + " encodes to no tokens");
  return prompts;
}

}  // namespace

GenerationJob parseCompletionRequest(const nlohmann::json& body, const ServedModel& model, const ServerLimits& limits) {
  JsonFields f(body, "the completions request");
  GenerationJob job;
  job.api = Api::Completions;
  readSamplingFields(f, job, limits);
  // OpenAI's logprobs here is the number of top alternatives (0: only the sampled token's).
  job.params.logprobs = f.integer("logprobs", 0, limits.maxLogprobs);
  job.echo = f.boolean("echo").value_or(false);
  if (f.has("suffix")) throw badField("suffix", "suffix is not supported (no model served here is trained for insertion)");
  f.raw("suffix");
  const bool addSpecialTokens = f.boolean("add_special_tokens").value_or(true);
  const std::optional<int64_t> maxTokens = f.integer("max_tokens", 1);
  job.prompts = readPrompts(f.raw("prompt"), model, addSpecialTokens, limits);
  f.rejectUnknown();
  settleMaxTokens(job, maxTokens, "max_tokens", model, limits);
  validateParams(job, model);
  return job;
}

namespace {
std::string describeOrdered(const nlohmann::ordered_json& value) { return describeJson(nlohmann::json::parse(value.dump())); }

std::string joinedText(const nlohmann::ordered_json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  if (content.is_array())
    for (const auto& part : content) text += part["text"].get<std::string>();
  return text;
}
}  // namespace

std::string renderChat(const nlohmann::ordered_json& messages, const ServedModel& model, bool addGenerationPrompt, bool continueFinalMessage,
                       const nlohmann::ordered_json& templateKwargs, const nlohmann::ordered_json& tools) {
  if (!messages.is_array() || messages.empty()) throw badField("messages", "messages must be a non-empty list, got " + describeOrdered(messages));
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string field = "messages[" + std::to_string(i) + "]";
    const nlohmann::ordered_json& m = messages[i];
    if (!m.is_object()) throw badField("messages", field + " must be an object, got " + describeOrdered(m));
    if (!m.contains("role") || !m["role"].is_string()) throw badField("messages", field + ".role must be a string");
    if (m.contains("content") && !m["content"].is_null() && !m["content"].is_string() && !m["content"].is_array())
      throw badField("messages", field + ".content must be a string or a list of content parts, got " + describeOrdered(m["content"]));
    if (m.contains("content") && m["content"].is_array())
      for (size_t k = 0; k < m["content"].size(); ++k) {
        const nlohmann::ordered_json& part = m["content"][k];
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          throw badField("messages", field + ".content[" + std::to_string(k) + "] must be {\"type\": \"text\", \"text\": ...} (only text is supported), got " +
                                         describeOrdered(part));
      }
  }
  if (addGenerationPrompt && continueFinalMessage)
    throw badField("continue_final_message", "continue_final_message and add_generation_prompt cannot both be true");
  if (!model.chatTemplate) throw badField("messages", "chat needs the model's tokenizer, and this model has no tokenizer.json; use /v1/completions with token ids");
  nlohmann::ordered_json prepared = messages;
  if (!model.chatTemplateIteratesContent)
    for (auto& m : prepared)
      if (m.contains("content") && m["content"].is_array()) m["content"] = joinedText(m["content"]);
  nlohmann::ordered_json extra = templateKwargs.is_object() ? templateKwargs : nlohmann::ordered_json::object();
  if (!tools.is_null()) extra["tools"] = tools;
  std::string text;
  try {
    text = model.chatTemplate->render(prepared, addGenerationPrompt, extra);
  } catch (const Error& e) {
    throw badField("messages", std::string("the chat template failed: ") + e.what());
  }
  if (continueFinalMessage) {
    // The prompt ends where the last message's content ends (its end-of-turn markers cut off), so
    // the model continues that message.
    const std::string content = messages.back().contains("content") ? joinedText(messages.back()["content"]) : std::string();
    size_t at = content.empty() ? std::string::npos : text.rfind(content);
    if (at == std::string::npos)
      throw badField("continue_final_message", "continue_final_message: the rendered prompt does not contain the final message's content");
    text.resize(at + content.size());
  }
  return text;
}

GenerationJob parseChatRequest(const nlohmann::json& body, const nlohmann::ordered_json& ordered, const ServedModel& model,
                               const ServerLimits& limits) {
  JsonFields f(body, "the chat completions request");
  GenerationJob job;
  job.api = Api::Chat;
  readSamplingFields(f, job, limits);
  job.chatLogprobs = f.boolean("logprobs").value_or(false);
  std::optional<int64_t> top = f.integer("top_logprobs", 0, limits.maxLogprobs);
  if (top && !job.chatLogprobs) throw badField("top_logprobs", "top_logprobs needs logprobs set to true");
  if (job.chatLogprobs) job.params.logprobs = top.value_or(0);
  std::optional<int64_t> maxTokens = f.integer("max_completion_tokens", 1);
  const char* maxTokensField = "max_completion_tokens";
  if (!maxTokens) {
    maxTokens = f.integer("max_tokens", 1);
    maxTokensField = "max_tokens";
  } else {
    f.raw("max_tokens");
  }
  if (const nlohmann::json& format = f.raw("response_format"); !format.is_null())
    if (!format.is_object() || format.value("type", "") != "text")
      throw badField("response_format", "response_format: only {\"type\": \"text\"} is supported, got " + describeJson(format));
  const nlohmann::json& tools = f.raw("tools");
  if (!tools.is_null() && !tools.is_array()) throw badField("tools", "tools must be a list, got " + describeJson(tools));
  if (const nlohmann::json& choice = f.raw("tool_choice"); !choice.is_null() && choice != "none" && !(choice == "auto" && tools.is_null()))
    throw badField("tool_choice", "tool_choice: only \"none\" is supported (this server does not parse tool calls), got " + describeJson(choice));
  f.ignore({"parallel_tool_calls"});
  const bool addGenerationPrompt = f.boolean("add_generation_prompt").value_or(true);
  const bool continueFinal = f.boolean("continue_final_message").value_or(false);
  job.echo = f.boolean("echo").value_or(false);
  // Chat templates put the BOS token in themselves; vLLM's default for chat is false likewise.
  const bool addSpecialTokens = f.boolean("add_special_tokens").value_or(false);
  const nlohmann::json& kwargs = f.raw("chat_template_kwargs");
  if (!kwargs.is_null() && !kwargs.is_object()) throw badField("chat_template_kwargs", "chat_template_kwargs must be an object");
  f.raw("messages");
  f.rejectUnknown();
  auto orderedField = [&](const char* name) { return ordered.contains(name) ? ordered[name] : nlohmann::ordered_json(); };
  const nlohmann::ordered_json messages = orderedField("messages");
  std::string text = renderChat(messages, model, addGenerationPrompt, continueFinal, orderedField("chat_template_kwargs"), orderedField("tools"));
  // Echo repeats the final message when the model continues it (vLLM's chat echo).
  std::string echoText;
  if (job.echo && messages.back().value("role", "") == "assistant" && messages.back().contains("content"))
    echoText = joinedText(messages.back()["content"]);
  PromptInput prompt{encodeText(model, text, addSpecialTokens, "messages"), echoText};
  if (prompt.ids.empty()) throw badField("messages", "the rendered chat prompt encodes to no tokens");
  job.prompts.push_back(std::move(prompt));
  settleMaxTokens(job, maxTokens, maxTokensField, model, limits);
  validateParams(job, model);
  return job;
}

}  // namespace pagedc::server
