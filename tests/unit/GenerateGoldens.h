// Shared by the engine tests: the sampling parameters of a transformers generate() golden
// (models/*/golden/generate.json), and stepping an engine while collecting its streamed text.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/Engine.h"

namespace pagedc::testing {

// A "beam" entry of generate.json as vLLM-style beam search parameters.
inline SamplingParams beamParams(const nlohmann::json& c, int64_t eos) {
  SamplingParams p;
  p.temperature = 0.0;
  p.useBeamSearch = true;
  p.bestOf = c["num_beams"].get<int64_t>();
  p.n = c["num_return_sequences"].get<int64_t>();
  p.lengthPenalty = c["length_penalty"].get<double>();
  const auto& es = c["early_stopping"];
  p.earlyStopping = es.is_string() ? EarlyStopping::Never : (es.get<bool>() ? EarlyStopping::Immediate : EarlyStopping::Heuristic);
  p.maxTokens = c["max_new_tokens"].get<int64_t>();
  p.eosTokenIds = {eos};
  return p;
}

// Steps until every request has finished; streamed receives every output's text in order.
inline std::map<RequestId, RequestOutput> runCollectingText(Engine& engine, std::string& streamed) {
  std::map<RequestId, RequestOutput> all;
  while (engine.hasUnfinished())
    for (const RequestOutput& o : engine.step()) {
      for (const auto& c : o.completions) streamed += c.text;
      all[o.requestId].append(o);
    }
  return all;
}

}  // namespace pagedc::testing
