// The names and shapes of a compiled graph's inputs and outputs: the contract between the compiler's
// ragged I/O rewrite and every runtime that feeds the compiled graph.
//
// A step runs num_seqs sequences whose new tokens are concatenated token-major (num_tokens in all):
//   input_ids       i64[num_tokens]            the new tokens
//   positions       i64[num_tokens]            each token's position in its sequence
//   slot_mapping    i64[num_tokens]            cache slot (block * block_size + offset) each token's K/V goes to; -1 skips
//   block_tables    i64[num_seqs, max_blocks]  physical block of each logical block, per sequence
//   context_lens    i64[num_seqs]              tokens in the cache after this step, per sequence
//   query_start_loc i64[num_seqs + 1]          where each sequence's tokens start in the step (prefix sums)
//   logits_indices  i64[num_logits]            the token rows whose logits are wanted (usually each sequence's last)
//   key_cache.<L>, value_cache.<L>  kv[num_blocks, kv_heads, block_size, head_dim], one pair per layer L
// Outputs:
//   logits          f32[num_logits, vocab]
//   key_cache_out.<L>, value_cache_out.<L>  the caches after this step's writes (a runtime aliases them in place)
#pragma once

#include <string>

namespace pagedc::ragged {

inline constexpr const char* kInputIds = "input_ids";
inline constexpr const char* kPositions = "positions";
inline constexpr const char* kSlotMapping = "slot_mapping";
inline constexpr const char* kBlockTables = "block_tables";
inline constexpr const char* kContextLens = "context_lens";
inline constexpr const char* kQueryStartLoc = "query_start_loc";
inline constexpr const char* kLogitsIndices = "logits_indices";
inline constexpr const char* kLogits = "logits";

inline constexpr const char* kNumTokens = "num_tokens";
inline constexpr const char* kNumSeqs = "num_seqs";
inline constexpr const char* kMaxBlocks = "max_blocks";
inline constexpr const char* kNumLogits = "num_logits";
inline constexpr const char* kNumBlocks = "num_blocks";

inline std::string keyCache(int layer) { return "key_cache." + std::to_string(layer); }
inline std::string valueCache(int layer) { return "value_cache." + std::to_string(layer); }
inline std::string keyCacheOut(int layer) { return "key_cache_out." + std::to_string(layer); }
inline std::string valueCacheOut(int layer) { return "value_cache_out." + std::to_string(layer); }

}  // namespace pagedc::ragged
