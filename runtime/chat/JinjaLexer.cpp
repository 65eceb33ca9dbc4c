// Jinja template lexer: tag splitting, expression tokens, and whitespace control.
#include "runtime/chat/JinjaLexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "runtime/chat/JinjaText.h"
#include "runtime/chat/JinjaValue.h"

namespace pagedc::jinja {

namespace {

bool isAsciiSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool isNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isNameChar(char c) { return isNameStart(c) || (c >= '0' && c <= '9'); }
bool isDigitChar(char c) { return c >= '0' && c <= '9'; }

// How much of a text piece the tags around it cut away.
enum class FrontCut { None, Newline, AllSpace };
enum class BackCut { None, LineIndent, AllSpace };

struct Piece {
  SegmentKind kind;
  std::string text;
  std::vector<Token> tokens;
  int line;
  FrontCut front = FrontCut::None;
  BackCut back = BackCut::None;
  bool first = false;  // no tag precedes it
};

std::string finishText(const Piece& p) {
  const std::string& s = p.text;
  std::size_t b = 0, e = s.size();
  if (p.front == FrontCut::AllSpace) {
    while (b < e && isAsciiSpace(s[b])) ++b;
  } else if (p.front == FrontCut::Newline && !s.empty() && s[0] == '\n') {
    b = 1;
  }
  if (p.back == BackCut::AllSpace) {
    std::size_t k = s.size();
    while (k > 0 && isAsciiSpace(s[k - 1])) --k;
    e = std::min(e, k);
  } else if (p.back == BackCut::LineIndent) {
    std::size_t k = s.size();
    while (k > 0 && (s[k - 1] == ' ' || s[k - 1] == '\t')) --k;
    if (k == 0 ? p.first : s[k - 1] == '\n') e = std::min(e, k);
  }
  return b >= e ? std::string() : s.substr(b, e - b);
}

class TagLexer {
public:
  TagLexer(std::string_view src, std::size_t pos, int line) : src_(src), pos_(pos), line_(line) {}

  // Reads tokens up to the closing delimiter ("}}" or "%}"); sets stripAfter/keepAfter from a
  // '-' or '+' just before it. Returns the position after the delimiter.
  std::size_t run(std::vector<Token>& tokens, char closer, bool& stripAfter, bool& keepAfter) {
    int depth = 0;
    while (true) {
      while (pos_ < src_.size() && isAsciiSpace(src_[pos_])) {
        if (src_[pos_] == '\n') ++line_;
        ++pos_;
      }
      if (pos_ >= src_.size()) throw TemplateError(std::string("unexpected end of template, expected '") + closer + "}'", line_);
      char c = src_[pos_];
      if (depth == 0) {
        std::string_view rest = src_.substr(pos_);
        std::string close = std::string(1, closer) + "}";
        if (rest.starts_with(close)) {
          return pos_ + 2;
        }
        if ((c == '-' || c == '+') && rest.substr(1).starts_with(close)) {
          if (c == '-') stripAfter = true;
          else keepAfter = true;
          return pos_ + 3;
        }
      }
      Token t{TokenType::Operator, "", 0, 0, line_};
      if (isNameStart(c)) {
        std::size_t s = pos_;
        while (pos_ < src_.size() && isNameChar(src_[pos_])) ++pos_;
        t.type = TokenType::Name;
        t.text = std::string(src_.substr(s, pos_ - s));
      } else if (isDigitChar(c)) {
        lexNumber(t);
      } else if (c == '\'' || c == '"') {
        lexString(t);
      } else {
        static const char* twoChar[] = {"**", "//", "==", "!=", "<=", ">="};
        std::string_view rest = src_.substr(pos_);
        std::string op;
        for (const char* o : twoChar)
          if (rest.starts_with(o)) op = o;
        if (op.empty()) {
          if (std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos)
            throw TemplateError(std::string("unexpected char '") + c + "'", line_);
          op = std::string(1, c);
        }
        if (op == "(" || op == "[" || op == "{") ++depth;
        if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
        pos_ += op.size();
        t.text = op;
      }
      tokens.push_back(std::move(t));
    }
  }

  int line() const { return line_; }

private:
  void lexNumber(Token& t) {
    std::size_t s = pos_;
    bool afterDot = s > 0 && src_[s - 1] == '.';
    auto digits = [&] {
      while (pos_ < src_.size() && (isDigitChar(src_[pos_]) || (src_[pos_] == '_' && pos_ + 1 < src_.size() && isDigitChar(src_[pos_ + 1]))))
        ++pos_;
    };
    digits();
    bool isFloat = false;
    if (!afterDot && pos_ + 1 < src_.size() && src_[pos_] == '.' && isDigitChar(src_[pos_ + 1])) {
      isFloat = true;
      ++pos_;
      digits();
    }
    if (!afterDot && pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      std::size_t save = pos_;
      ++pos_;
      if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) ++pos_;
      if (pos_ < src_.size() && isDigitChar(src_[pos_])) {
        isFloat = true;
        digits();
      } else {
        pos_ = save;
      }
    }
    std::string text;
    for (char ch : src_.substr(s, pos_ - s))
      if (ch != '_') text.push_back(ch);
    if (isFloat) {
      t.type = TokenType::Float;
      t.floatValue = std::strtod(text.c_str(), nullptr);
    } else {
      t.type = TokenType::Integer;
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(text.c_str(), &end, 10);
      if (errno == ERANGE) throw TemplateError("integer literal " + text + " is too large", line_);
      t.intValue = v;
    }
    t.text = text;
  }

  void lexString(Token& t) {
    char quote = src_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) throw TemplateError("unterminated string literal", t.line);
      char c = src_[pos_++];
      if (c == quote) break;
      if (c == '\n') ++line_;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= src_.size()) throw TemplateError("unterminated string literal", t.line);
      char e = src_[pos_++];
      auto hex = [&](int n) {
        if (pos_ + static_cast<std::size_t>(n) > src_.size()) throw TemplateError("truncated escape in string literal", line_);
        std::string h(src_.substr(pos_, static_cast<std::size_t>(n)));
        for (char ch : h)
          if (!std::isxdigit(static_cast<unsigned char>(ch))) throw TemplateError("bad escape in string literal", line_);
        pos_ += static_cast<std::size_t>(n);
        return static_cast<char32_t>(std::strtoul(h.c_str(), nullptr, 16));
      };
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'v': out.push_back('\v'); break;
        case 'a': out.push_back('\a'); break;
        case '0': out.push_back('\0'); break;
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case '\n': ++line_; break;  // line continuation
        case 'x': text::appendUtf8(out, hex(2)); break;
        case 'u': text::appendUtf8(out, hex(4)); break;
        case 'U': text::appendUtf8(out, hex(8)); break;
        default:  // Python keeps unknown escapes as written
          out.push_back('\\');
          out.push_back(e);
      }
    }
    t.type = TokenType::String;
    t.text = std::move(out);
  }

  std::string_view src_;
  std::size_t pos_;
  int line_;
};

int countNewlines(std::string_view s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

std::vector<Segment> lexTemplate(std::string_view rawSource, const LexerOptions& options) {
  // Jinja normalizes \r\n and \r to \n, and drops one trailing newline unless told to keep it.
  std::string source;
  source.reserve(rawSource.size());
  for (std::size_t i = 0; i < rawSource.size(); ++i) {
    if (rawSource[i] == '\r') {
      source.push_back('\n');
      if (i + 1 < rawSource.size() && rawSource[i + 1] == '\n') ++i;
    } else {
      source.push_back(rawSource[i]);
    }
  }
  if (!options.keepTrailingNewline && !source.empty() && source.back() == '\n') source.pop_back();

  std::vector<Piece> pieces;
  FrontCut pendingFront = FrontCut::None;
  bool sawTag = false;
  std::size_t pos = 0;
  int line = 1;

  auto addText = [&](std::string text, int textLine) {
    Piece p{SegmentKind::Text, std::move(text), {}, textLine};
    p.front = pendingFront;
    p.first = !sawTag;
    pendingFront = FrontCut::None;
    pieces.push_back(std::move(p));
  };
  // A tag starts: it may cut the text before it.
  auto openTag = [&](bool stripBefore, bool keepBefore, bool isBlockLike) {
    if (pieces.empty() || pieces.back().kind != SegmentKind::Text) return;
    Piece& prev = pieces.back();
    if (stripBefore) prev.back = BackCut::AllSpace;
    else if (isBlockLike && options.lstripBlocks && !keepBefore) prev.back = BackCut::LineIndent;
  };

  while (pos < source.size()) {
    std::size_t at = pos;
    while (true) {
      at = source.find('{', at);
      if (at == std::string::npos || at + 1 >= source.size()) {
        at = std::string::npos;
        break;
      }
      char n = source[at + 1];
      if (n == '{' || n == '%' || n == '#') break;
      ++at;
    }
    std::size_t textEnd = at == std::string::npos ? source.size() : at;
    if (textEnd > pos || pendingFront != FrontCut::None) addText(source.substr(pos, textEnd - pos), line);
    line += countNewlines(std::string_view(source).substr(pos, textEnd - pos));
    if (at == std::string::npos) break;

    char kind = source[at + 1];
    std::size_t inner = at + 2;
    bool stripBefore = false, keepBefore = false;
    if (inner < source.size() && source[inner] == '-') {
      stripBefore = true;
      ++inner;
    } else if (inner < source.size() && source[inner] == '+') {
      keepBefore = true;
      ++inner;
    }
    int tagLine = line;

    if (kind == '#') {
      std::size_t end = source.find("#}", inner);
      if (end == std::string::npos) throw TemplateError("unterminated comment", tagLine);
      bool stripAfter = end > inner && source[end - 1] == '-';
      bool keepAfter = end > inner && source[end - 1] == '+';
      openTag(stripBefore, keepBefore, true);
      line += countNewlines(std::string_view(source).substr(at, end + 2 - at));
      pos = end + 2;
      pendingFront = stripAfter ? FrontCut::AllSpace : (options.trimBlocks && !keepAfter) ? FrontCut::Newline : FrontCut::None;
      sawTag = true;
      continue;
    }

    TagLexer tagLexer(source, inner, line);
    std::vector<Token> tokens;
    bool stripAfter = false, keepAfter = false;
    std::size_t after = tagLexer.run(tokens, kind == '{' ? '}' : '%', stripAfter, keepAfter);
    line = tagLexer.line();
    openTag(stripBefore, keepBefore, kind == '%');
    sawTag = true;
    pos = after;

    if (kind == '{') {
      pieces.push_back(Piece{SegmentKind::Output, {}, std::move(tokens), tagLine});
      pendingFront = stripAfter ? FrontCut::AllSpace : FrontCut::None;
      continue;
    }
    if (tokens.size() == 1 && tokens[0].type == TokenType::Name && tokens[0].text == "raw") {
      // Everything up to {% endraw %} is text; the newline after {% raw %} is kept.
      std::size_t search = pos;
      while (true) {
        std::size_t open = source.find("{%", search);
        if (open == std::string::npos) throw TemplateError("missing {% endraw %} for {% raw %}", tagLine);
        std::size_t k = open + 2;
        bool endStrip = false;
        if (k < source.size() && (source[k] == '-' || source[k] == '+')) endStrip = source[k++] == '-';
        while (k < source.size() && isAsciiSpace(source[k])) ++k;
        if (source.compare(k, 6, "endraw") != 0) {
          search = open + 2;
          continue;
        }
        k += 6;
        while (k < source.size() && isAsciiSpace(source[k])) ++k;
        bool endStripAfter = false, endKeepAfter = false;
        if (k < source.size() && (source[k] == '-' || source[k] == '+')) {
          endStripAfter = source[k] == '-';
          endKeepAfter = source[k] == '+';
          ++k;
        }
        if (source.compare(k, 2, "%}") != 0) {
          search = open + 2;
          continue;
        }
        pendingFront = stripAfter ? FrontCut::AllSpace : FrontCut::None;
        addText(source.substr(pos, open - pos), line);
        openTag(endStrip, false, true);
        line += countNewlines(std::string_view(source).substr(pos, k + 2 - pos));
        pos = k + 2;
        pendingFront = endStripAfter ? FrontCut::AllSpace : (options.trimBlocks && !endKeepAfter) ? FrontCut::Newline : FrontCut::None;
        break;
      }
      continue;
    }
    pieces.push_back(Piece{SegmentKind::Statement, {}, std::move(tokens), tagLine});
    pendingFront = stripAfter ? FrontCut::AllSpace : (options.trimBlocks && !keepAfter) ? FrontCut::Newline : FrontCut::None;
  }

  std::vector<Segment> segments;
  segments.reserve(pieces.size());
  for (Piece& p : pieces) {
    if (p.kind == SegmentKind::Text) {
      std::string t = finishText(p);
      if (t.empty()) continue;
      if (!segments.empty() && segments.back().kind == SegmentKind::Text) {
        segments.back().text += t;
        continue;
      }
      segments.push_back(Segment{SegmentKind::Text, std::move(t), {}, p.line});
    } else {
      segments.push_back(Segment{p.kind, {}, std::move(p.tokens), p.line});
    }
  }
  return segments;
}

}  // namespace pagedc::jinja
