// Normalizers of tokenizer.json (Prepend, Replace, the Unicode forms NFC / NFD / NFKC / NFKD, and
// Sequence of them), loaded as a flat list of steps.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/JsonPath.h"
#include "runtime/tokenizer/Regex.h"

namespace pagedc::tokenizer {

struct NormalizerStep {
  enum Kind { Prepend, Replace, NFC, NFD, NFKC, NFKD } kind;
  std::string text;  // Prepend: what; Replace: the content
  std::shared_ptr<Regex> regex;  // Replace
};

// Appends the steps of the normalizer j (null: none) at path to out.
void loadNormalizer(const Loader& L, const json& j, const std::string& path, std::vector<NormalizerStep>& out);

// One step on text (valid UTF-8, checked by the caller).
std::string applyNormalizer(const NormalizerStep& step, std::string text);

// text (valid UTF-8) in the Unicode normalization form of kind (NFC, NFD, NFKC or NFKD), by
// utf8proc (docs/TOKENIZER.md says which Unicode version and how it differs from `tokenizers`).
std::string unicodeNormalize(std::string_view text, NormalizerStep::Kind kind);

}  // namespace pagedc::tokenizer
