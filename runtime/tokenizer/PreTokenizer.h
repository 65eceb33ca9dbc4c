// Pre-tokenizers of tokenizer.json (ByteLevel, Split, Metaspace, Whitespace, WhitespaceSplit,
// Sequence of them), loaded as a flat list of steps, and Hugging Face's Split of a piece by a regex.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "runtime/tokenizer/JsonPath.h"
#include "runtime/tokenizer/Regex.h"

namespace pagedc::tokenizer {

inline const std::string kMetaspace = "\xE2\x96\x81";  // U+2581 '▁'

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct PreTokenizerStep {
  enum Kind { ByteLevel, Split, Metaspace, Whitespace, WhitespaceSplit } kind;
  std::shared_ptr<Regex> regex;  // Split; ByteLevel with use_regex; Whitespace
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  bool addPrefixSpace = false;  // ByteLevel
  std::string replacement = kMetaspace;  // Metaspace
  enum class Prepend { Always, First, Never } prepend = Prepend::Always;  // Metaspace
  bool split = true;  // Metaspace
};

struct Piece {
  std::string text;
  bool atInputStart;  // begins at offset 0 of the original text (Metaspace prepend_scheme "first")
};

// GPT-2's pre-tokenization regex, used by ByteLevel with use_regex.
const std::string& gpt2Pattern();

// Hugging Face's Split: the pieces a regex's matches cut `piece` into.
std::vector<Piece> splitPiece(const Piece& piece, const Regex& regex, SplitBehavior behavior, bool invert);

// Metaspace's prepend_scheme (or, in older files, add_prefix_space) of the object j at path.
PreTokenizerStep::Prepend prependScheme(const Loader& L, const json& j, const std::string& path);

// Appends the steps of the pre-tokenizer j (null: none) at path to out.
void loadPreTokenizer(const Loader& L, const json& j, const std::string& path, std::vector<PreTokenizerStep>& out);

}  // namespace pagedc::tokenizer
