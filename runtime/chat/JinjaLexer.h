// Splits a Jinja template into text, {{ output }} and {% statement %} segments (comments dropped),
// applying Jinja2's whitespace control: '-' and '+' markers, trim_blocks and lstrip_blocks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pagedc::jinja {

struct LexerOptions {
  bool trimBlocks = true;    // drop the first newline after a block tag or comment
  bool lstripBlocks = true;  // drop spaces and tabs before a block tag or comment that starts a line
  bool keepTrailingNewline = false;
};

enum class TokenType { Name, String, Integer, Float, Operator };

struct Token {
  TokenType type;
  std::string text;  // the name, the operator, or the string literal's value (escapes decoded)
  int64_t intValue = 0;
  double floatValue = 0;
  int line = 0;
};

enum class SegmentKind { Text, Output, Statement };

struct Segment {
  SegmentKind kind;
  std::string text;           // Text
  std::vector<Token> tokens;  // Output, Statement
  int line = 0;
};

// Throws TemplateError (with its line) on an unterminated tag, string or comment.
std::vector<Segment> lexTemplate(std::string_view source, const LexerOptions& options);

}  // namespace pagedc::jinja
