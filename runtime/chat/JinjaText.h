// Python str semantics on UTF-8 text for the Jinja interpreter: code points, whitespace, case.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pagedc::jinja::text {

// Code points of UTF-8 text (an invalid byte becomes U+FFFD).
std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
void appendUtf8(std::string& out, char32_t cp);
// Number of code points (Python's len()).
std::size_t length(std::string_view s);

// Python's str.isspace() for one code point.
bool isSpace(char32_t c);
// Python's line boundaries (str.splitlines).
bool isLineBreak(char32_t c);
// Letters and digits as far as the case tables below know them, plus any other non-ASCII
// letter-like code point (CJK, ...); used by isalpha/isalnum/title/wordcount.
bool isAlpha(char32_t c);
bool isDigit(char32_t c);
bool isUpper(char32_t c);
bool isLower(char32_t c);

// Case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic (ß upper-cases to SS).
std::u32string upper(std::u32string_view s);
std::u32string lower(std::u32string_view s);
std::string upper(std::string_view s);
std::string lower(std::string_view s);

// Python's str.strip/lstrip/rstrip: without chars, Unicode whitespace.
std::string strip(std::string_view s, const std::u32string* chars, bool left, bool right);
// Python's str.split(sep=None) (whitespace runs) and str.split(sep) with maxsplit (-1: all).
std::vector<std::string> split(std::string_view s, const std::string* sep, long maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::string* sep, long maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
std::string replace(std::string_view s, std::string_view from, std::string_view to, long count);
// Python's str.capitalize and str.title.
std::string capitalize(std::string_view s);
std::string pythonTitle(std::string_view s);

}  // namespace pagedc::jinja::text
