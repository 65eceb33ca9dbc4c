// `pagedc generate`: offline batch generation. Prompts (text, through the artifact's tokenizer.json,
// or token ids) go to the engine together, which batches them continuously on the CPU backend;
// completions are printed per prompt, then throughput.
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/Commands.h"
#include "cli/EngineOptions.h"
#include "ir/Error.h"
#include "runtime/GenerationDefaults.h"
#include "runtime/tokenizer/Tokenizer.h"
#include "runtime/tokenizer/TokenizerDetokenizer.h"

namespace pagedc::cli {

namespace {

struct GenerateOptions {
  std::string artifact;
  std::vector<std::string> prompts;
  std::string promptIds;
  std::string promptsFile;
  bool printIds = false;
  bool json = false;
  bool progress = true;
  // Sampling.
  int64_t n = 1;
  int64_t bestOf = 0;
  int64_t beamWidth = 0;
  double lengthPenalty = 1.0;
  std::string earlyStopping = "false";
  double temperature = 0.0;
  int64_t topK = -1;
  double topP = 1.0;
  double minP = 0.0;
  double repetitionPenalty = 1.0;
  double presencePenalty = 0.0;
  double frequencyPenalty = 0.0;
  std::optional<int64_t> seed;
  int64_t maxTokens = 16;
  int64_t minTokens = 0;
  std::string stopTokenIds;
  std::vector<std::string> stop;
  bool ignoreEos = false;
  std::optional<int64_t> logprobs;
  std::optional<int64_t> promptLogprobs;
  EngineOptions engine;
};

std::vector<TokenId> parseIds(const std::string& text, const std::string& what) {
  std::vector<TokenId> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      ids.push_back(std::stoll(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::logic_error&) {
      fail(what, ": '", item, "' is not a token id (give comma-separated integers, e.g. 1,2,3)");
    }
  }
  return ids;
}

struct PromptRequest {
  std::vector<TokenId> ids;
  SamplingParams params;
};

SamplingParams samplingParams(const GenerateOptions& o, const GenerationDefaults& defaults) {
  SamplingParams p;
  p.n = o.n;
  if (o.bestOf > 0) p.bestOf = o.bestOf;
  if (o.beamWidth > 0) {
    p.useBeamSearch = true;
    p.bestOf = o.beamWidth;
    p.temperature = 0.0;
    p.lengthPenalty = o.lengthPenalty;
    p.earlyStopping = o.earlyStopping == "true" ? EarlyStopping::Immediate : o.earlyStopping == "never" ? EarlyStopping::Never : EarlyStopping::Heuristic;
  } else {
    p.temperature = o.temperature;
  }
  p.topK = o.topK;
  p.topP = o.topP;
  p.minP = o.minP;
  p.repetitionPenalty = o.repetitionPenalty;
  p.presencePenalty = o.presencePenalty;
  p.frequencyPenalty = o.frequencyPenalty;
  p.seed = o.seed;
  p.maxTokens = o.maxTokens;
  p.minTokens = o.minTokens;
  if (!o.stopTokenIds.empty()) p.stopTokenIds = parseIds(o.stopTokenIds, "--stop-token-ids");
  p.stop = o.stop;
  p.eosTokenIds = defaults.eosTokenIds;
  p.ignoreEos = o.ignoreEos;
  p.logprobs = o.logprobs;
  p.promptLogprobs = o.promptLogprobs;
  return p;
}

std::vector<TokenId> encodePrompt(const std::optional<Tokenizer>& tokenizer, const std::string& text, const std::string& what) {
  if (!tokenizer)
    fail(what, ": text prompts need the model's tokenizer, and this artifact has no tokenizer.json (`pagedc compile` copies it from "
         "beside the ONNX model); give token ids instead");
  std::vector<int32_t> ids = tokenizer->encode(text, true);
  return {ids.begin(), ids.end()};
}

// The text of ids; a JSON-quoted string, or why there is none (an id the tokenizer lacks: a model
// whose vocabulary is larger than its tokenizer's, as in small test exports).
std::string quotedText(const Tokenizer& tokenizer, std::span<const TokenId> ids) {
  std::vector<int32_t> narrow(ids.begin(), ids.end());
  try {
    return nlohmann::json(tokenizer.decode(narrow, true)).dump();
  } catch (const Error& e) {
    return std::string("(no text: ") + e.what() + ")";
  }
}

// One JSON object per line: {"prompt_ids": [...]} or {"prompt": text}, with optional per-prompt
// "max_tokens", "temperature", "seed", "n".
std::vector<PromptRequest> readPromptsFile(const std::string& path, const SamplingParams& base, const std::optional<Tokenizer>& tokenizer) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open the prompts file");
  std::vector<PromptRequest> requests;
  std::string line;
  for (int lineNumber = 1; std::getline(in, line); ++lineNumber) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = path + ":" + std::to_string(lineNumber);
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail(where, ": not JSON: ", e.what());
    }
    PromptRequest request{{}, base};
    try {
      if (json.contains("prompt_ids")) request.ids = json["prompt_ids"].get<std::vector<TokenId>>();
      else if (json.contains("prompt")) request.ids = encodePrompt(tokenizer, json["prompt"].get<std::string>(), where);
      else fail(where, ": needs \"prompt\" (text) or \"prompt_ids\"");
      if (json.contains("max_tokens")) request.params.maxTokens = json["max_tokens"].get<int64_t>();
      if (json.contains("temperature")) request.params.temperature = json["temperature"].get<double>();
      if (json.contains("seed")) request.params.seed = json["seed"].get<int64_t>();
      if (json.contains("n")) request.params.n = json["n"].get<int64_t>();
    } catch (const nlohmann::json::exception& e) {
      fail(where, ": ", e.what());
    }
    requests.push_back(std::move(request));
  }
  if (requests.empty()) fail(path, ": no prompts");
  return requests;
}

std::string joinIds(const std::vector<TokenId>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out;
}

void run(const GenerateOptions& options) {
  Artifact artifact = loadModelForCommand(options.artifact);
  GenerationDefaults defaults = readGenerationDefaults(artifact.path);
  std::optional<Tokenizer> tokenizer;
  if (const auto file = std::filesystem::path(artifact.path) / "tokenizer.json"; std::filesystem::exists(file)) tokenizer = Tokenizer::fromFile(file);
  SamplingParams base = samplingParams(options, defaults);
  std::vector<PromptRequest> requests;
  for (const std::string& text : options.prompts) requests.push_back({encodePrompt(tokenizer, text, "--prompt"), base});
  if (!options.promptIds.empty()) requests.push_back({parseIds(options.promptIds, "--prompt-ids"), base});
  if (!options.promptsFile.empty())
    for (auto& r : readPromptsFile(options.promptsFile, base, tokenizer)) requests.push_back(std::move(r));
  if (requests.empty()) fail("give a prompt: --prompt TEXT, --prompt-ids 1,2,3 or --prompts FILE.jsonl");

  // Stop strings need the engine to see text: it detokenizes each sequence incrementally. The
  // printed text is decoded once, at the end, here.
  Detokenizer detokenize;
  const bool anyStopStrings = std::ranges::any_of(requests, [](const PromptRequest& r) { return !r.params.stop.empty(); });
  if (anyStopStrings && !tokenizer)
    fail("--stop: stop strings are matched in the text, which needs the model's tokenizer, and this artifact has no tokenizer.json");
  if (anyStopStrings) detokenize = makeDetokenizer(*tokenizer);
  LoadedEngine loaded = buildEngine(std::move(artifact), options.engine, detokenize);
  Engine& engine = *loaded.engine;
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      engine.addRequest(std::to_string(i), requests[i].ids, requests[i].params);
    } catch (const Error& e) {
      fail(requests.size() > 1 ? "prompt " + std::to_string(i) + ": " : "", e.what());
    }
  }

  const auto start = std::chrono::steady_clock::now();
  std::map<RequestId, RequestOutput> results;
  const bool showProgress = options.progress && requests.size() > 1 && ::isatty(STDERR_FILENO);
  int64_t generated = 0;
  while (engine.hasUnfinished()) {
    for (const RequestOutput& out : engine.step()) {
      for (const CompletionOutput& c : out.completions) generated += static_cast<int64_t>(c.tokens.size());
      auto [it, inserted] = results.try_emplace(out.requestId, out);
      if (!inserted) it->second.append(out);
    }
    if (showProgress) {
      size_t done = 0;
      for (const auto& [id, r] : results) done += r.finished ? 1 : 0;
      const int width = 30;
      const int filled = static_cast<int>(width * static_cast<double>(done) / static_cast<double>(requests.size()));
      std::fprintf(stderr, "\r[%s%s] %zu/%zu requests, %lld tokens", std::string(static_cast<size_t>(filled), '#').c_str(),
                   std::string(static_cast<size_t>(width - filled), ' ').c_str(), done, requests.size(), static_cast<long long>(generated));
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (showProgress) std::fprintf(stderr, "\n");

  for (size_t i = 0; i < requests.size(); ++i) {
    const RequestOutput& r = results.at(std::to_string(i));
    if (options.json) {
      nlohmann::ordered_json line;
      line["index"] = i;
      line["prompt_ids"] = requests[i].ids;
      line["completions"] = nlohmann::json::array();
      for (const CompletionOutput& c : r.completions) {
        nlohmann::ordered_json completion;
        completion["index"] = c.index;
        completion["token_ids"] = c.tokens;
        if (tokenizer) {
          std::vector<int32_t> narrow(c.tokens.begin(), c.tokens.end());
          try {
            completion["text"] = tokenizer->decode(narrow, true);
          } catch (const Error& e) {
            completion["text_error"] = e.what();
          }
        }
        completion["finish_reason"] = finishReasonName(c.finishReason);
        completion["cumulative_logprob"] = c.cumulativeLogprob;
        if (c.beamScore) completion["beam_score"] = *c.beamScore;
        if (!c.logprobs.empty()) {
          completion["logprobs"] = nlohmann::json::array();
          for (const TokenLogprobs& lp : c.logprobs) completion["logprobs"].push_back(lp.logprob);
        }
        line["completions"].push_back(completion);
      }
      if (!r.message.empty()) line["error"] = r.message;
      std::cout << line.dump() << "\n";
      continue;
    }
    std::cout << "prompt " << i;
    if (tokenizer) std::cout << " " << quotedText(*tokenizer, requests[i].ids);
    if (!tokenizer || options.printIds) std::cout << " [" << joinIds(requests[i].ids) << "]";
    std::cout << "\n";
    if (!r.message.empty()) std::cout << "  rejected: " << r.message << "\n";
    for (const CompletionOutput& c : r.completions) {
      std::cout << "  completion " << c.index << " (" << finishReasonName(c.finishReason) << ", " << c.tokens.size() << " tokens";
      if (c.beamScore) std::cout << ", beam score " << *c.beamScore;
      std::cout << "):";
      if (tokenizer) std::cout << " " << quotedText(*tokenizer, c.tokens);
      if (!tokenizer || options.printIds) std::cout << " [" << joinIds(c.tokens) << "]";
      std::cout << "\n";
    }
  }
  EngineStats stats = engine.stats();
  std::fprintf(stderr,
               "generate: %zu prompts, %lld prompt tokens computed, %lld tokens generated in %.3f s: %.1f generated tokens/s, "
               "%.1f tokens/s computed; %lld steps, %lld preemptions, peak %lld of %lld KV blocks\n",
               requests.size(), static_cast<long long>(stats.promptTokensComputed), static_cast<long long>(generated), seconds,
               static_cast<double>(generated) / seconds,
               static_cast<double>(stats.promptTokensComputed + stats.decodeTokensComputed) / seconds, static_cast<long long>(stats.numSteps),
               static_cast<long long>(stats.numPreemptions), static_cast<long long>(stats.peakUsedBlocks),
               static_cast<long long>(stats.blocks.totalBlocks));
}
}  // namespace

void addGenerateCommand(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  auto* command = app.add_subcommand("generate", "generate completions for prompts on the CPU backend, batched continuously");
  command->add_option("artifact", o->artifact, "the compiled model (default: the bundled model)");
  command->add_option("--prompt", o->prompts, "a text prompt, tokenized with the artifact's tokenizer.json (repeatable)");
  command->add_option("--prompt-ids", o->promptIds, "a prompt as comma-separated token ids, e.g. 1,2,3");
  command->add_option("--prompts", o->promptsFile, "a JSONL file of prompts: {\"prompt\": \"text\"} or {\"prompt_ids\": [...]}, optionally \"max_tokens\", \"temperature\", \"seed\", \"n\"");
  command->add_flag("--json", o->json, "print one JSON object per prompt");
  command->add_flag("--ids", o->printIds, "print token ids next to the text (ids only when the artifact has no tokenizer)");
  command->add_flag("--progress,!--no-progress", o->progress, "show a progress bar for many prompts (on a terminal)");
  command->add_option("-n,--n", o->n, "completions per prompt")->capture_default_str()->check(CLI::PositiveNumber);
  command->add_option("--best-of", o->bestOf, "candidates sampled per prompt, the n most likely returned")->check(CLI::PositiveNumber);
  command->add_option("--beam-width", o->beamWidth, "beam search with this many beams (returns the n best)")->check(CLI::PositiveNumber);
  command->add_option("--length-penalty", o->lengthPenalty, "beam search: score = logprob / length^penalty")->capture_default_str();
  command->add_option("--early-stopping", o->earlyStopping, "beam search: true, false (heuristic) or never")
      ->capture_default_str()
      ->check(CLI::IsMember({"true", "false", "never"}));
  command->add_option("--temperature", o->temperature, "0 is greedy")->capture_default_str();
  command->add_option("--top-k", o->topK, "-1: off")->capture_default_str();
  command->add_option("--top-p", o->topP, "nucleus sampling; 1: off")->capture_default_str();
  command->add_option("--min-p", o->minP, "0: off")->capture_default_str();
  command->add_option("--repetition-penalty", o->repetitionPenalty, "1: off")->capture_default_str();
  command->add_option("--presence-penalty", o->presencePenalty, "0: off")->capture_default_str();
  command->add_option("--frequency-penalty", o->frequencyPenalty, "0: off")->capture_default_str();
  command->add_option("--seed", o->seed, "per-request seed: the same seed gives the same output whatever the batch");
  command->add_option("--max-tokens", o->maxTokens, "tokens to generate per completion")->capture_default_str();
  command->add_option("--min-tokens", o->minTokens, "EOS and stop tokens are ignored until this many")->capture_default_str();
  command->add_option("--stop-token-ids", o->stopTokenIds, "comma-separated token ids that end a completion");
  command->add_option("--stop", o->stop, "a string that ends a completion (repeatable; needs the tokenizer)");
  command->add_flag("--ignore-eos", o->ignoreEos, "keep generating after the model's EOS token");
  command->add_option("--logprobs", o->logprobs, "report the sampled token's logprob and the top N (with --json)");
  command->add_option("--prompt-logprobs", o->promptLogprobs, "report prompt tokens' logprobs");
  o->engine.addTo(*command);
  command->callback([o] { run(*o); });
}

}  // namespace pagedc::cli
