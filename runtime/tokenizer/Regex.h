// A compiled PCRE2 regex (UTF, with Oniguruma's \w as Hugging Face's tokenizers use) that finds all
// non-overlapping matches in a string.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// pcre2_code for 8-bit code units; declared here so that pcre2.h stays out of this header.
struct pcre2_real_code_8;

namespace pagedc::tokenizer {

class Regex {
public:
  // literal: match the pattern as a plain string. where: prefixes the error if it does not compile.
  Regex(const std::string& pattern, bool literal, const std::string& where);
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex();

  // [start, end) of every non-overlapping match, left to right. The subject must be valid UTF-8.
  std::vector<std::pair<std::size_t, std::size_t>> findAll(std::string_view subject) const;
  // subject with every match replaced by replacement (normalizer and decoder Replace steps).
  std::string replaceAll(std::string_view subject, std::string_view replacement) const;

private:
  pcre2_real_code_8* code_ = nullptr;
};

}  // namespace pagedc::tokenizer
