// A compiled PCRE2 regex (Regex.h).
#include "runtime/tokenizer/Regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <memory>

#include "ir/Error.h"
#include "runtime/tokenizer/Utf8.h"

namespace pagedc::tokenizer {
namespace {

// `tokenizers` runs its regexes with Oniguruma, whose Unicode \w is Alphabetic, Mark,
// Decimal_Number, Connector_Punctuation and Join_Control; PCRE2's (10.42, UCP) lacks marks and
// ZWJ, which splits emoji sequences differently. Rewrites \w (and \W outside classes) to the
// Oniguruma set.
std::string onigurumaWordClasses(const std::string& pattern) {
  static const std::string word = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control})";
  std::string out;
  bool inClass = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      if (e == 'w') out += inClass ? word : "[" + word + "]";
      else if (e == 'W' && !inClass) out += "[^" + word + "]";
      else out.append(pattern, i, 2);
      ++i;
      continue;
    }
    if (!inClass && c == '[') {
      inClass = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (inClass && c == ']') inClass = false;
    out += c;
  }
  return out;
}

}  // namespace

Regex::Regex(const std::string& pattern, bool literal, const std::string& where) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  // PCRE2_LITERAL admits UTF but not UCP (which only matters for escapes anyway).
  const uint32_t options = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
  const std::string translated = literal ? pattern : onigurumaWordClasses(pattern);
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), options, &code,
                        &offset, nullptr);
  if (!code_) {
    std::array<PCRE2_UCHAR, 256> message{};
    pcre2_get_error_message(code, message.data(), message.size());
    fail(where, ": regex does not compile at offset ", offset, ": ", reinterpret_cast<const char*>(message.data()));
  }
  pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // optional: the interpreter is used if JIT is unavailable
}

Regex::~Regex() { pcre2_code_free(code_); }

std::vector<std::pair<std::size_t, std::size_t>> Regex::findAll(std::string_view subject) const {
  std::vector<std::pair<std::size_t, std::size_t>> matches;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
      pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
  const auto* text = reinterpret_cast<PCRE2_SPTR>(subject.data());
  std::size_t start = 0;
  while (start <= subject.size()) {
    const int rc = pcre2_match(code_, text, subject.size(), start, PCRE2_NO_UTF_CHECK, data.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail("tokenizer: regex match failed with PCRE2 error ", rc);
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    const std::size_t s = ovector[0], e = ovector[1];
    if (e > s) matches.emplace_back(s, e);
    if (e > start) {
      start = e;
    } else {  // an empty match: step over one character
      if (start >= subject.size()) break;
      std::size_t n = validSequenceLength(subject, start);
      start += n ? n : 1;
    }
  }
  return matches;
}

std::string Regex::replaceAll(std::string_view subject, std::string_view replacement) const {
  std::string out;
  std::size_t prev = 0;
  for (auto [start, end] : findAll(subject)) {
    out.append(subject, prev, start - prev);
    out.append(replacement);
    prev = end;
  }
  out.append(subject, prev);
  return out;
}

}  // namespace pagedc::tokenizer
