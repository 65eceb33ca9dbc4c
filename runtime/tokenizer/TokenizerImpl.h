// Tokenizer::Impl, the loaded tokenizer (model, added tokens, pipeline), shared by Tokenizer.cpp and
// IncrementalDetokenizer.cpp.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "runtime/tokenizer/Decoder.h"
#include "runtime/tokenizer/Normalizer.h"
#include "runtime/tokenizer/PreTokenizer.h"
#include "runtime/tokenizer/Tokenizer.h"

namespace pagedc {
namespace tokenizer {

struct AddedToken {
  std::string content;
  int32_t id;
  bool special;
  bool normalized;
};

}  // namespace tokenizer

struct Tokenizer::Impl {
  std::string source;
  // Model.
  bool wordLevel = false;
  std::unordered_map<std::string, int32_t> vocab;
  std::unordered_map<std::string, std::pair<int32_t, int32_t>> merges;  // "a\0b" -> (rank, merged id)
  std::optional<int32_t> unk;
  bool byteFallback = false, fuseUnk = false, ignoreMerges = false;
  std::array<int32_t, 256> byteTokens{};  // <0xNN> ids, -1 where absent
  // Added tokens.
  std::vector<tokenizer::AddedToken> added;  // longest first
  std::unordered_map<std::string, int32_t> addedByContent;
  std::unordered_set<int32_t> specialIds;
  std::unordered_map<int32_t, std::string> addedById;
  // id -> model token.
  std::vector<std::string> idToToken;
  std::vector<bool> hasToken;
  // Pipeline.
  std::vector<tokenizer::NormalizerStep> normalizer;
  std::vector<tokenizer::PreTokenizerStep> preTokenizer;
  bool hasDecoder = false;
  std::vector<tokenizer::DecoderStep> decoder;
  bool decoderHasByteFallback = false;
  std::vector<std::vector<int32_t>> templateSingle;  // empty vector marks $A
  bool hasTemplate = false;

  std::string normalize(std::string text) const;
  std::vector<tokenizer::Piece> preTokenize(std::vector<tokenizer::Piece> pieces) const;
  // The model on one pre-tokenized word; appends its ids to out.
  void bpeWord(const std::string& word, std::vector<int32_t>& out) const;
  // Splits text at the added tokens (leftmost, longest first); pieces between are (nullopt, text).
  std::vector<std::pair<std::optional<int32_t>, std::string>> splitAdded(const std::string& text,
                                                                         bool normalizedOnes) const;
  std::string tokenString(int32_t id) const;
  std::vector<std::string> tokensFor(std::span<const int32_t> ids, bool skipSpecial) const;
  static bool isByteToken(const std::string& t);
  // The decoder chain on tokens. `continuation`: tokens precede these (in an incremental decode),
  // so the rules for the very first token (Metaspace, Strip after Fuse, the " " join) do not apply.
  std::string decodeTokens(std::vector<std::string> tokens, bool continuation) const;
};

}  // namespace pagedc
