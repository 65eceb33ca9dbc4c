// OpenAI response bodies and stream chunks from engine outputs: completions ("text_completion")
// and chat ("chat.completion", "chat.completion.chunk"), with logprobs in each API's format.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/RequestOutput.h"
#include "runtime/server/OpenAiRequest.h"
#include "runtime/server/ServedModel.h"

namespace pagedc::server {

// "stop", "length", "abort"; null while unfinished.
nlohmann::json finishReasonJson(FinishReason reason);

class ResponseBuilder {
public:
  ResponseBuilder(const GenerationJob& job, const ServedModel& model, std::string id, int64_t created);

  // The choices a completion's news makes in one stream chunk: for chat, a first chunk with the
  // role comes before a choice's first content. promptIndex: which prompt (choice index is
  // promptIndex * n + completion index).
  void addStreamChoices(size_t promptIndex, const CompletionOutput& news, nlohmann::json& choices,
                        const std::vector<std::optional<TokenLogprobs>>& promptLogprobs = {});
  // vLLM's prompt_logprobs of one prompt: null for the first token, then {"<id>": {logprob, rank,
  // decoded_token}} for the prompt token and the top alternatives.
  nlohmann::json promptLogprobsJson(size_t promptIndex, const std::vector<std::optional<TokenLogprobs>>& logprobs) const;
  // A "data:" chunk around choices, with usage when continuous usage is asked for.
  nlohmann::json chunk(nlohmann::json choices) const;
  // The last chunk when stream_options.include_usage: no choices, the request's usage.
  nlohmann::json usageChunk() const;
  // The whole (non-streamed) response from each prompt's merged output.
  nlohmann::json response(const std::vector<RequestOutput>& perPrompt);

  const std::string& id() const { return id_; }

private:
  nlohmann::json logprobsJson(size_t choice, const std::vector<TokenId>& tokens, const std::vector<TokenLogprobs>& logprobs);
  nlohmann::json usage() const;

  const GenerationJob& job_;
  const ServedModel& model_;
  std::string id_;
  int64_t created_;
  int64_t promptTokens_ = 0;
  int64_t completionTokens_ = 0;
  std::vector<bool> started_;          // per choice: its first chunk was sent (echo, chat role)
  std::vector<size_t> textOffset_;     // per choice: completions logprobs' text_offset so far
};

}  // namespace pagedc::server
