// The bodies of POST /v1/completions and /v1/chat/completions, read into what the engine runs:
// token-id prompts and SamplingParams. OpenAI's parameter names, plus vLLM's extensions
// (docs/SERVING.md lists them). Every problem is an HttpError that names the field.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "runtime/SamplingParams.h"
#include "runtime/server/ServedModel.h"

namespace pagedc::server {

enum class Api { Completions, Chat };

struct PromptInput {
  std::vector<TokenId> ids;
  std::string text;  // what echo puts before the output: the prompt as given (or decoded from its
                     // ids); for chat, the final assistant message's content
};

struct ServerLimits {
  int64_t maxN = 16;            // n and best_of
  int64_t maxTokens = 0;        // 0: up to the context length
  int64_t maxLogprobs = 20;     // logprobs / top_logprobs / prompt_logprobs
  int64_t maxPrompts = 64;      // prompts in one completions request
};

struct GenerationJob {
  Api api = Api::Completions;
  std::string model;
  std::vector<PromptInput> prompts;
  SamplingParams params;  // one engine request per prompt, each with params.n completions
  bool stream = false;
  bool includeUsage = false;       // stream_options.include_usage: a last chunk with usage
  bool continuousUsage = false;    // stream_options.continuous_usage_stats: usage on every chunk
  bool echo = false;               // the prompt's text before the completion (completions), or the
                                   // last message's content (chat with continue_final_message)
  bool chatLogprobs = false;       // chat: logprobs in the chat format
};

// Throws HttpError (400) naming the field for a malformed or out-of-range request, and for a
// prompt that with max_tokens does not fit the context length.
GenerationJob parseCompletionRequest(const nlohmann::json& body, const ServedModel& model, const ServerLimits& limits);
// ordered: the same body parsed keeping its key order, which templates see (tojson of tool calls).
GenerationJob parseChatRequest(const nlohmann::json& body, const nlohmann::ordered_json& ordered, const ServedModel& model,
                               const ServerLimits& limits);

// The prompt of a chat request (for /tokenize too): the messages through the chat template. For
// templates that expect string content (most), text parts lists are joined into one string, as
// vLLM does; templates that iterate over content parts get the list. Throws HttpError naming the
// message at fault.
std::string renderChat(const nlohmann::ordered_json& messages, const ServedModel& model, bool addGenerationPrompt,
                       bool continueFinalMessage, const nlohmann::ordered_json& templateKwargs, const nlohmann::ordered_json& tools);

}  // namespace pagedc::server
