// UTF-8 helpers of the tokenizer: validation, lossy repair, splitting into characters, code points.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pagedc::tokenizer {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence at s[i], or 0 if none starts there (Unicode's well-formed table).
// Where none does, *validPrefix is the length of the maximal subpart (the bytes that could still
// start a character).
std::size_t validSequenceLength(std::string_view s, std::size_t i, std::size_t* validPrefix = nullptr);
// Offset of the first byte that does not begin a valid sequence, or npos.
std::size_t firstInvalidUtf8(std::string_view s);
// Rust's String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
std::string lossyUtf8(std::string_view s);
// Splits valid UTF-8 into its characters.
std::vector<std::string_view> utf8Chars(std::string_view s);
// The code point of one valid UTF-8 character.
char32_t codepoint(std::string_view c);
std::string encodeUtf8(char32_t cp);
std::string replaceAll(std::string_view s, std::string_view from, std::string_view to);

}  // namespace pagedc::tokenizer
