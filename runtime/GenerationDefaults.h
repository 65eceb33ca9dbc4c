// The generation defaults a model ships with: its end-of-sequence token ids, from the Hugging Face
// files `pagedc compile` copies into the artifact (generation_config.json, then config.json).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pagedc {

struct GenerationDefaults {
  std::vector<int64_t> eosTokenIds;  // empty when the model names none
  // The context the model was trained for (config.json's max_position_embeddings, or n_positions /
  // max_sequence_length / seq_length), which can be shorter than its position table.
  std::optional<int64_t> maxPositionEmbeddings;
};

// Reads the artifact directory's generation_config.json, else config.json; eos_token_id may be an
// integer or a list. Missing files give empty defaults; malformed JSON throws Error naming the file.
GenerationDefaults readGenerationDefaults(const std::string& artifactDir);

}  // namespace pagedc
