// Building OpenAI response JSON.
#include "runtime/server/OpenAiResponse.h"

namespace pagedc::server {

nlohmann::json finishReasonJson(FinishReason reason) {
  switch (reason) {
  case FinishReason::None: return nullptr;
  case FinishReason::Stop: return "stop";
  case FinishReason::Length: return "length";
  case FinishReason::Aborted: return "abort";
  case FinishReason::Rejected: return "abort";
  }
  return nullptr;
}

namespace {
nlohmann::json utf8Bytes(const std::string& text) {
  nlohmann::json bytes = nlohmann::json::array();
  for (unsigned char c : text) bytes.push_back(static_cast<int>(c));
  return bytes;
}
}  // namespace

ResponseBuilder::ResponseBuilder(const GenerationJob& job, const ServedModel& model, std::string id, int64_t created)
    : job_(job), model_(model), id_(std::move(id)), created_(created) {
  const size_t choices = job.prompts.size() * static_cast<size_t>(job.params.n);
  started_.assign(choices, false);
  textOffset_.assign(choices, 0);
  for (const PromptInput& p : job.prompts) promptTokens_ += static_cast<int64_t>(p.ids.size());
}

nlohmann::json ResponseBuilder::usage() const {
  return {{"prompt_tokens", promptTokens_}, {"completion_tokens", completionTokens_}, {"total_tokens", promptTokens_ + completionTokens_}};
}

nlohmann::json ResponseBuilder::logprobsJson(size_t choice, const std::vector<TokenId>& tokens, const std::vector<TokenLogprobs>& logprobs) {
  if (!job_.params.logprobs || logprobs.size() != tokens.size()) return nullptr;
  if (job_.api == Api::Chat) {
    nlohmann::json content = nlohmann::json::array();
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string text = model_.tokenText(tokens[i]);
      nlohmann::json top = nlohmann::json::array();
      for (const TokenLogprob& t : logprobs[i].top) {
        const std::string alt = model_.tokenText(t.tokenId);
        top.push_back({{"token", alt}, {"logprob", t.logprob}, {"bytes", utf8Bytes(alt)}});
      }
      content.push_back({{"token", text}, {"logprob", logprobs[i].logprob}, {"bytes", utf8Bytes(text)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  nlohmann::json out = {{"tokens", nlohmann::json::array()}, {"token_logprobs", nlohmann::json::array()},
                        {"top_logprobs", nlohmann::json::array()}, {"text_offset", nlohmann::json::array()}};
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string text = model_.tokenText(tokens[i]);
    out["tokens"].push_back(text);
    out["token_logprobs"].push_back(logprobs[i].logprob);
    // The sampled token and the top alternatives, as vLLM reports them.
    nlohmann::json top = nlohmann::json::object();
    top[text] = logprobs[i].logprob;
    for (const TokenLogprob& t : logprobs[i].top) top[model_.tokenText(t.tokenId)] = t.logprob;
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(textOffset_[choice]);
    textOffset_[choice] += text.size();
  }
  return out;
}

nlohmann::json ResponseBuilder::promptLogprobsJson(size_t promptIndex, const std::vector<std::optional<TokenLogprobs>>& logprobs) const {
  nlohmann::json out = nlohmann::json::array();
  const std::vector<TokenId>& ids = job_.prompts[promptIndex].ids;
  for (size_t i = 0; i < logprobs.size() && i < ids.size(); ++i) {
    if (!logprobs[i]) {
      out.push_back(nullptr);
      continue;
    }
    nlohmann::json entry = nlohmann::json::object();
    for (const TokenLogprob& t : logprobs[i]->top)
      entry[std::to_string(t.tokenId)] = {{"logprob", t.logprob}, {"rank", nullptr}, {"decoded_token", model_.tokenText(t.tokenId)}};
    for (size_t rank = 0; rank < logprobs[i]->top.size(); ++rank) entry[std::to_string(logprobs[i]->top[rank].tokenId)]["rank"] = rank + 1;
    entry[std::to_string(ids[i])] = {{"logprob", logprobs[i]->logprob}, {"rank", logprobs[i]->rank}, {"decoded_token", model_.tokenText(ids[i])}};
    out.push_back(std::move(entry));
  }
  return out;
}

void ResponseBuilder::addStreamChoices(size_t promptIndex, const CompletionOutput& news, nlohmann::json& choices,
                                       const std::vector<std::optional<TokenLogprobs>>& promptLogprobs) {
  const size_t choice = promptIndex * static_cast<size_t>(job_.params.n) + static_cast<size_t>(news.index);
  if (choice >= started_.size()) return;
  completionTokens_ += static_cast<int64_t>(news.tokens.size());
  std::string text = news.text;
  if (!started_[choice]) {
    started_[choice] = true;
    if (job_.echo) text = job_.prompts[promptIndex].text + text;
    if (job_.echo && job_.api == Api::Completions) textOffset_[choice] = job_.prompts[promptIndex].text.size();
    if (job_.api == Api::Chat)
      choices.push_back({{"index", choice}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"logprobs", nullptr}, {"finish_reason", nullptr}});
  }
  nlohmann::json c = {{"index", choice}, {"logprobs", logprobsJson(choice, news.tokens, news.logprobs)},
                      {"finish_reason", finishReasonJson(news.finishReason)}};
  if (news.finishReason != FinishReason::None) c["stop_reason"] = news.stopString ? nlohmann::json(*news.stopString) : nlohmann::json(nullptr);
  if (job_.api == Api::Chat) c["delta"] = text.empty() && news.finishReason != FinishReason::None ? nlohmann::json::object() : nlohmann::json{{"content", text}};
  else c["text"] = text;
  if (!promptLogprobs.empty()) c["prompt_logprobs"] = promptLogprobsJson(promptIndex, promptLogprobs);
  if (text.empty() && news.finishReason == FinishReason::None && c["logprobs"].is_null() && promptLogprobs.empty()) return;  // nothing yet
  choices.push_back(std::move(c));
}

nlohmann::json ResponseBuilder::chunk(nlohmann::json choices) const {
  nlohmann::json out = {{"id", id_}, {"object", job_.api == Api::Chat ? "chat.completion.chunk" : "text_completion"},
                        {"created", created_}, {"model", model_.name}, {"choices", std::move(choices)}};
  if (job_.continuousUsage) out["usage"] = usage();
  return out;
}

nlohmann::json ResponseBuilder::usageChunk() const {
  return {{"id", id_}, {"object", job_.api == Api::Chat ? "chat.completion.chunk" : "text_completion"}, {"created", created_},
          {"model", model_.name}, {"choices", nlohmann::json::array()}, {"usage", usage()}};
}

nlohmann::json ResponseBuilder::response(const std::vector<RequestOutput>& perPrompt) {
  std::vector<nlohmann::json> choices(started_.size());
  for (size_t p = 0; p < perPrompt.size(); ++p) {
    for (const CompletionOutput& c : perPrompt[p].completions) {
      const size_t choice = p * static_cast<size_t>(job_.params.n) + static_cast<size_t>(c.index);
      if (choice >= choices.size()) continue;
      completionTokens_ += static_cast<int64_t>(c.tokens.size());
      std::string text = job_.echo ? job_.prompts[p].text + c.text : c.text;
      if (job_.echo && job_.api == Api::Completions) textOffset_[choice] = job_.prompts[p].text.size();
      nlohmann::json j = {{"index", choice}, {"logprobs", logprobsJson(choice, c.tokens, c.logprobs)},
                          {"finish_reason", finishReasonJson(c.finishReason)},
                          {"stop_reason", c.stopString ? nlohmann::json(*c.stopString) : nlohmann::json(nullptr)}};
      if (job_.params.promptLogprobs) j["prompt_logprobs"] = promptLogprobsJson(p, perPrompt[p].promptLogprobs);
      if (job_.api == Api::Chat) j["message"] = {{"role", "assistant"}, {"content", text}};
      else j["text"] = text;
      choices[choice] = std::move(j);
    }
  }
  nlohmann::json list = nlohmann::json::array();
  for (auto& c : choices)
    if (!c.is_null()) list.push_back(std::move(c));
  return {{"id", id_}, {"object", job_.api == Api::Chat ? "chat.completion" : "text_completion"}, {"created", created_},
          {"model", model_.name}, {"choices", std::move(list)}, {"usage", usage()}};
}

}  // namespace pagedc::server
