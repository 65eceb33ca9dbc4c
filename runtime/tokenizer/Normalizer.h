// Normalizers of tokenizer.json (Prepend, Replace, Sequence of them), loaded as a flat list of steps.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/tokenizer/JsonPath.h"
#include "runtime/tokenizer/Regex.h"

namespace pagedc::tokenizer {

struct NormalizerStep {
  enum Kind { Prepend, Replace } kind;
  std::string text;  // Prepend: what; Replace: the content
  std::shared_ptr<Regex> regex;  // Replace
};

// Appends the steps of the normalizer j (null: none) at path to out.
void loadNormalizer(const Loader& L, const json& j, const std::string& path, std::vector<NormalizerStep>& out);

}  // namespace pagedc::tokenizer
