#include "runtime/tokenizer/Tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "ir/Error.h"

namespace pagedc {
namespace {

using json = nlohmann::json;

// ---- UTF-8 -------------------------------------------------------------------------------------

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence at s[i], or 0 if none starts there (Unicode's well-formed table).
std::size_t validSequenceLength(std::string_view s, std::size_t i, std::size_t* validPrefix = nullptr) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b = byte(i);
  std::size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) need = 1;
  else if (b == 0xE0) need = 2, lo = 0xA0;
  else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) need = 2;
  else if (b == 0xED) need = 2, hi = 0x9F;
  else if (b == 0xF0) need = 3, lo = 0x90;
  else if (b >= 0xF1 && b <= 0xF3) need = 3;
  else if (b == 0xF4) need = 3, hi = 0x8F;
  else {
    if (validPrefix) *validPrefix = 1;
    return 0;
  }
  std::size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= s.size()) break;
    const unsigned char c = byte(i + k);
    if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) break;
  }
  if (k == need + 1) return need + 1;
  if (validPrefix) *validPrefix = k;  // the maximal subpart: the bytes that could still start a character
  return 0;
}

std::size_t firstInvalidUtf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = validSequenceLength(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

// Rust's String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
std::string lossyUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    std::size_t bad = 1;
    const std::size_t n = validSequenceLength(s, i, &bad);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append(kReplacementChar);
      i += bad;
    }
  }
  return out;
}

// Splits valid UTF-8 into its characters.
std::vector<std::string_view> utf8Chars(std::string_view s) {
  std::vector<std::string_view> chars;
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = validSequenceLength(s, i);
    if (n == 0) n = 1;
    chars.push_back(s.substr(i, n));
    i += n;
  }
  return chars;
}

char32_t codepoint(std::string_view c) {
  const auto b = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(c[k])); };
  switch (c.size()) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

std::string encodeUtf8(char32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

std::string replaceAll(std::string_view s, std::string_view from, std::string_view to) {
  if (from.empty()) return std::string(s);
  std::string out;
  std::size_t pos = 0;
  for (std::size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(s.substr(pos, hit - pos));
    out.append(to);
  }
  out.append(s.substr(pos));
  return out;
}

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards.
struct ByteLevelTables {
  std::array<std::string, 256> byteToChar;
  std::unordered_map<char32_t, unsigned char> charToByte;
  ByteLevelTables() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      const char32_t cp = printable ? static_cast<char32_t>(b) : next++;
      byteToChar[b] = encodeUtf8(cp);
      charToByte[cp] = static_cast<unsigned char>(b);
    }
  }
};
const ByteLevelTables& byteLevel() {
  static const ByteLevelTables tables;
  return tables;
}

// ---- PCRE2 -------------------------------------------------------------------------------------

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

class Regex {
public:
  Regex(const std::string& pattern, bool literal, const std::string& where) {
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
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() { pcre2_code_free(code_); }

  // [start, end) of every non-overlapping match, left to right. The subject must be valid UTF-8.
  std::vector<std::pair<std::size_t, std::size_t>> findAll(std::string_view subject) const {
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

private:
  pcre2_code* code_ = nullptr;
};

// ---- JSON access with paths --------------------------------------------------------------------

struct Loader {
  std::string source;

  [[noreturn]] void bad(const std::string& path, const std::string& what) const { fail(source, ": ", path, " ", what); }

  const json& field(const json& j, const std::string& path, const char* key) const {
    if (!j.is_object()) bad(path, "is not an object");
    auto it = j.find(key);
    if (it == j.end()) bad(path + "." + key, "is missing");
    return *it;
  }
  std::string string(const json& j, const std::string& path) const {
    if (!j.is_string()) bad(path, "is not a string");
    return j.get<std::string>();
  }
  std::string stringField(const json& j, const std::string& path, const char* key) const {
    return string(field(j, path, key), path + "." + key);
  }
  bool boolOr(const json& j, const std::string& path, const char* key, bool fallback) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) bad(path + "." + key, "is not a boolean");
    return it->get<bool>();
  }
  int64_t integer(const json& j, const std::string& path) const {
    if (!j.is_number_integer()) bad(path, "is not an integer");
    return j.get<int64_t>();
  }
  int32_t id(const json& j, const std::string& path) const {
    const int64_t v = integer(j, path);
    if (v < 0 || v > INT32_MAX) bad(path, "is not a valid token id");
    return static_cast<int32_t>(v);
  }
  std::string type(const json& j, const std::string& path) const { return stringField(j, path, "type"); }
  [[noreturn]] void unsupported(const std::string& path, const std::string& type) const {
    bad(path + ".type", "'" + type + "' is not supported");
  }
  // {"String": s} or {"Regex": r}, as used by Split, Replace.
  std::shared_ptr<Regex> pattern(const json& j, const std::string& path, std::string* literal = nullptr) const {
    const json& p = field(j, path, "pattern");
    if (p.is_object() && p.contains("String")) {
      const std::string s = string(p["String"], path + ".pattern.String");
      if (literal) *literal = s;
      return std::make_shared<Regex>(s, true, source + ": " + path + ".pattern.String");
    }
    if (p.is_object() && p.contains("Regex"))
      return std::make_shared<Regex>(string(p["Regex"], path + ".pattern.Regex"), false,
                                     source + ": " + path + ".pattern.Regex");
    bad(path + ".pattern", "must be {\"String\": ...} or {\"Regex\": ...}");
  }
};

const std::string kMetaspace = "\xE2\x96\x81";  // U+2581 '▁'

// ---- pipeline pieces ---------------------------------------------------------------------------

struct NormalizerStep {
  enum Kind { Prepend, Replace } kind;
  std::string text;  // Prepend: what; Replace: the content
  std::shared_ptr<Regex> regex;  // Replace
};

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

struct DecoderStep {
  enum Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace } kind;
  std::string from, to;  // Replace (string patterns); Metaspace replacement in `from`
  std::shared_ptr<Regex> regex;  // Replace with a regex
  std::string content;  // Strip
  std::size_t start = 0, stop = 0;  // Strip
  bool prependFirst = true;  // Metaspace: prepend_scheme != never
};

struct AddedToken {
  std::string content;
  int32_t id;
  bool special;
  bool normalized;
};

struct Piece {
  std::string text;
  bool atInputStart;  // begins at offset 0 of the original text (Metaspace prepend_scheme "first")
};

const std::string& gpt2Pattern() {
  static const std::string p =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  return p;
}

// Hugging Face's Split: the pieces a regex's matches cut `piece` into.
std::vector<Piece> splitPiece(const Piece& piece, const Regex& regex, SplitBehavior behavior, bool invert) {
  std::vector<std::pair<std::pair<std::size_t, std::size_t>, bool>> spans;  // (range, is a match)
  std::size_t prev = 0;
  for (auto [s, e] : regex.findAll(piece.text)) {
    if (s > prev) spans.push_back({{prev, s}, false});
    spans.push_back({{s, e}, true});
    prev = e;
  }
  if (prev < piece.text.size()) spans.push_back({{prev, piece.text.size()}, false});
  if (invert)
    for (auto& span : spans) span.second = !span.second;

  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  switch (behavior) {
    case SplitBehavior::Removed:
      for (auto& [r, isMatch] : spans)
        if (!isMatch) ranges.push_back(r);
      break;
    case SplitBehavior::Isolated:
      for (auto& [r, isMatch] : spans) ranges.push_back(r);
      break;
    case SplitBehavior::MergedWithPrevious: {
      bool previousWasMatch = false;
      for (auto& [r, isMatch] : spans) {
        if (isMatch && !ranges.empty() && !previousWasMatch) ranges.back().second = r.second;
        else ranges.push_back(r);
        previousWasMatch = isMatch;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool previousWasMatch = false;
      for (auto& [r, isMatch] : spans) {
        if (previousWasMatch && !isMatch && !ranges.empty()) ranges.back().second = r.second;
        else ranges.push_back(r);
        previousWasMatch = isMatch;
      }
      break;
    }
    case SplitBehavior::Contiguous: {
      bool previousWasMatch = false;
      for (auto& [r, isMatch] : spans) {
        if (isMatch && previousWasMatch && !ranges.empty()) ranges.back().second = r.second;
        else ranges.push_back(r);
        previousWasMatch = isMatch;
      }
      break;
    }
  }
  std::vector<Piece> out;
  for (auto [s, e] : ranges)
    if (e > s) out.push_back({piece.text.substr(s, e - s), piece.atInputStart && s == 0});
  return out;
}

}  // namespace

// ---- the tokenizer -----------------------------------------------------------------------------

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
  std::vector<AddedToken> added;  // longest first
  std::unordered_map<std::string, int32_t> addedByContent;
  std::unordered_set<int32_t> specialIds;
  std::unordered_map<int32_t, std::string> addedById;
  // id -> model token.
  std::vector<std::string> idToToken;
  std::vector<bool> hasToken;
  // Pipeline.
  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> preTokenizer;
  bool hasDecoder = false;
  std::vector<DecoderStep> decoder;
  bool decoderHasByteFallback = false;
  std::vector<std::vector<int32_t>> templateSingle;  // empty vector marks $A
  bool hasTemplate = false;

  std::string normalize(std::string text) const {
    for (const auto& step : normalizer) {
      if (step.kind == NormalizerStep::Prepend) {
        if (!text.empty()) text = step.text + text;
      } else {
        std::string out;
        std::size_t prev = 0;
        for (auto [s, e] : step.regex->findAll(text)) {
          out.append(text, prev, s - prev);
          out.append(step.text);
          prev = e;
        }
        out.append(text, prev);
        text = std::move(out);
      }
    }
    return text;
  }

  std::vector<Piece> preTokenize(std::vector<Piece> pieces) const {
    for (const auto& step : preTokenizer) {
      std::vector<Piece> next;
      for (auto& piece : pieces) {
        switch (step.kind) {
          case PreTokenizerStep::ByteLevel: {
            Piece p = piece;
            if (step.addPrefixSpace && (p.text.empty() || p.text[0] != ' ')) p.text = " " + p.text;
            std::vector<Piece> parts = step.regex ? splitPiece(p, *step.regex, SplitBehavior::Isolated, false)
                                                  : std::vector<Piece>{p};
            for (auto& part : parts) {
              std::string mapped;
              for (unsigned char b : part.text) mapped += byteLevel().byteToChar[b];
              next.push_back({std::move(mapped), part.atInputStart});
            }
            break;
          }
          case PreTokenizerStep::Split:
          case PreTokenizerStep::Whitespace:
          case PreTokenizerStep::WhitespaceSplit:
            for (auto& part : splitPiece(piece, *step.regex, step.behavior, step.invert))
              next.push_back(std::move(part));
            break;
          case PreTokenizerStep::Metaspace: {
            Piece p{replaceAll(piece.text, " ", step.replacement), piece.atInputStart};
            const bool startsWith = p.text.starts_with(step.replacement);
            if (!startsWith && (step.prepend == PreTokenizerStep::Prepend::Always ||
                                (step.prepend == PreTokenizerStep::Prepend::First && p.atInputStart)))
              p.text = step.replacement + p.text;
            if (step.split) {
              // MergedWithNext on the replacement character.
              std::size_t begin = 0;
              for (std::size_t hit = p.text.find(step.replacement, 1); hit != std::string::npos;
                   hit = p.text.find(step.replacement, hit + step.replacement.size())) {
                next.push_back({p.text.substr(begin, hit - begin), p.atInputStart && begin == 0});
                begin = hit;
              }
              if (begin < p.text.size()) next.push_back({p.text.substr(begin), p.atInputStart && begin == 0});
            } else if (!p.text.empty()) {
              next.push_back(std::move(p));
            }
            break;
          }
        }
      }
      pieces = std::move(next);
    }
    return pieces;
  }

  void bpeWord(const std::string& word, std::vector<int32_t>& out) const {
    if (wordLevel) {
      if (auto it = vocab.find(word); it != vocab.end()) out.push_back(it->second);
      else if (unk) out.push_back(*unk);
      else fail(source, ": WordLevel has no token for '", word, "' and no unk_token");
      return;
    }
    if (ignoreMerges)
      if (auto it = vocab.find(word); it != vocab.end()) {
        out.push_back(it->second);
        return;
      }
    struct Symbol {
      int32_t id;
      int prev, next;
      bool alive;
    };
    std::vector<Symbol> symbols;
    bool lastWasUnk = false;
    for (std::string_view c : utf8Chars(word)) {
      if (auto it = vocab.find(std::string(c)); it != vocab.end()) {
        symbols.push_back({it->second, 0, 0, true});
        lastWasUnk = false;
        continue;
      }
      if (byteFallback && std::all_of(c.begin(), c.end(), [&](char b) {
            return byteTokens[static_cast<unsigned char>(b)] >= 0;
          })) {
        for (char b : c) symbols.push_back({byteTokens[static_cast<unsigned char>(b)], 0, 0, true});
        lastWasUnk = false;
        continue;
      }
      if (unk) {
        if (!(fuseUnk && lastWasUnk)) symbols.push_back({*unk, 0, 0, true});
        lastWasUnk = true;
      }
      // No unk token: Hugging Face drops the character.
    }
    const int n = static_cast<int>(symbols.size());
    for (int i = 0; i < n; ++i) {
      symbols[i].prev = i - 1;
      symbols[i].next = i + 1 < n ? i + 1 : -1;
    }
    struct Candidate {
      int32_t rank;
      int left;
      int32_t leftId, rightId, merged;
      bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
    std::string key;
    const auto consider = [&](int left) {
      if (left < 0) return;
      const int right = symbols[left].next;
      if (right < 0) return;
      key.clear();
      key.append(idToToken[symbols[left].id]).push_back('\0');
      key.append(idToToken[symbols[right].id]);
      if (auto it = merges.find(key); it != merges.end())
        queue.push({it->second.first, left, symbols[left].id, symbols[right].id, it->second.second});
    };
    for (int i = 0; i + 1 < n; ++i) consider(i);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Symbol& left = symbols[c.left];
      if (!left.alive || left.id != c.leftId || left.next < 0) continue;
      Symbol& right = symbols[left.next];
      if (right.id != c.rightId) continue;
      left.id = c.merged;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = c.left;
      consider(left.prev);
      consider(c.left);
    }
    for (int i = n ? 0 : -1; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
  }

  // Splits text at the added tokens (leftmost, longest first); pieces between are (nullopt, text).
  std::vector<std::pair<std::optional<int32_t>, std::string>> splitAdded(const std::string& text,
                                                                         bool normalizedOnes) const {
    std::vector<std::pair<std::optional<int32_t>, std::string>> out;
    std::size_t pieceStart = 0;
    for (std::size_t i = 0; i < text.size();) {
      const AddedToken* hit = nullptr;
      for (const auto& token : added)
        if (token.normalized == normalizedOnes && !token.content.empty() &&
            text.compare(i, token.content.size(), token.content) == 0) {
          hit = &token;
          break;
        }
      if (!hit) {
        ++i;
        continue;
      }
      if (i > pieceStart) out.push_back({std::nullopt, text.substr(pieceStart, i - pieceStart)});
      out.push_back({hit->id, hit->content});
      i += hit->content.size();
      pieceStart = i;
    }
    if (pieceStart < text.size()) out.push_back({std::nullopt, text.substr(pieceStart)});
    return out;
  }

  std::string tokenString(int32_t id) const {
    if (auto it = addedById.find(id); it != addedById.end()) return it->second;
    if (id >= 0 && static_cast<std::size_t>(id) < idToToken.size() && hasToken[id]) return idToToken[id];
    fail(source, ": decode: id ", id, " is not in the vocabulary (size ", idToToken.size(), ")");
  }

  std::vector<std::string> tokensFor(std::span<const int32_t> ids, bool skipSpecial) const {
    std::vector<std::string> tokens;
    for (int32_t id : ids) {
      std::string t = tokenString(id);
      if (skipSpecial && specialIds.count(id)) continue;
      tokens.push_back(std::move(t));
    }
    return tokens;
  }

  static bool isByteToken(const std::string& t) {
    return t.size() == 6 && t.starts_with("<0x") && t[5] == '>' && std::isxdigit(static_cast<unsigned char>(t[3])) &&
           std::isxdigit(static_cast<unsigned char>(t[4]));
  }

  // The decoder chain on tokens. `continuation`: tokens precede these (in an incremental decode),
  // so the rules for the very first token (Metaspace, Strip after Fuse, the " " join) do not apply.
  std::string decodeTokens(std::vector<std::string> tokens, bool continuation) const {
    if (!hasDecoder) {
      std::string out;
      for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (i > 0 || continuation) out += ' ';
        out += tokens[i];
      }
      return out;
    }
    bool fused = false;  // tokens[0] holds everything decoded so far
    for (const auto& step : decoder) {
      switch (step.kind) {
        case DecoderStep::ByteLevel: {
          std::string bytes;
          for (const auto& t : tokens) {
            std::string mapped;
            bool ok = true;
            for (std::string_view c : utf8Chars(t)) {
              auto it = byteLevel().charToByte.find(codepoint(c));
              if (it == byteLevel().charToByte.end()) {
                ok = false;
                break;
              }
              mapped += static_cast<char>(it->second);
            }
            bytes += ok ? mapped : t;
          }
          tokens = {lossyUtf8(bytes)};
          fused = true;
          break;
        }
        case DecoderStep::Replace:
          for (auto& t : tokens) {
            if (!step.regex) {
              t = replaceAll(t, step.from, step.to);
              continue;
            }
            std::string out;
            std::size_t prev = 0;
            for (auto [s, e] : step.regex->findAll(t)) {
              out.append(t, prev, s - prev);
              out.append(step.to);
              prev = e;
            }
            out.append(t, prev);
            t = std::move(out);
          }
          break;
        case DecoderStep::ByteFallback: {
          std::vector<std::string> next;
          std::string pending;
          const auto flush = [&] {
            if (pending.empty()) return;
            if (firstInvalidUtf8(pending) == std::string_view::npos) next.push_back(pending);
            else
              for (std::size_t i = 0; i < pending.size(); ++i) next.emplace_back(kReplacementChar);
            pending.clear();
          };
          for (auto& t : tokens) {
            if (isByteToken(t)) {
              pending += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
            } else {
              flush();
              next.push_back(std::move(t));
            }
          }
          flush();
          tokens = std::move(next);
          break;
        }
        case DecoderStep::Fuse: {
          std::string all;
          for (auto& t : tokens) all += t;
          tokens = {std::move(all)};
          fused = true;
          break;
        }
        case DecoderStep::Strip:
          for (std::size_t i = 0; i < tokens.size(); ++i) {
            if (fused && continuation) break;  // the fused text does not begin the output
            auto chars = utf8Chars(tokens[i]);
            std::size_t cut = 0;
            while (cut < step.start && cut < chars.size() && chars[cut] == step.content) ++cut;
            std::string out;
            for (std::size_t k = cut; k < chars.size(); ++k) out += chars[k];
            tokens[i] = std::move(out);
          }
          break;
        case DecoderStep::Metaspace:
          for (std::size_t i = 0; i < tokens.size(); ++i) {
            const bool first = i == 0 && !continuation && !fused;
            tokens[i] = replaceAll(tokens[i], step.from, first && step.prependFirst ? "" : " ");
          }
          break;
      }
    }
    std::string out;
    for (auto& t : tokens) out += t;
    return out;
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::fromFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open the tokenizer file");
  std::ostringstream text;
  text << in.rdbuf();
  return fromJson(text.str(), path.string());
}

namespace {

void loadNormalizer(const Loader& L, const json& j, const std::string& path, std::vector<NormalizerStep>& out) {
  if (j.is_null()) return;
  const std::string type = L.type(j, path);
  if (type == "Sequence") {
    const json& list = L.field(j, path, "normalizers");
    if (!list.is_array()) L.bad(path + ".normalizers", "is not an array");
    for (std::size_t i = 0; i < list.size(); ++i)
      loadNormalizer(L, list[i], path + ".normalizers[" + std::to_string(i) + "]", out);
  } else if (type == "Prepend") {
    out.push_back({NormalizerStep::Prepend, L.stringField(j, path, "prepend"), nullptr});
  } else if (type == "Replace") {
    out.push_back({NormalizerStep::Replace, L.stringField(j, path, "content"), L.pattern(j, path)});
  } else {
    L.unsupported(path, type);
  }
}

SplitBehavior behavior(const Loader& L, const json& j, const std::string& path) {
  const std::string b = L.stringField(j, path, "behavior");
  if (b == "Removed") return SplitBehavior::Removed;
  if (b == "Isolated") return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return SplitBehavior::Contiguous;
  L.bad(path + ".behavior", "'" + b + "' is not a split behavior");
}

PreTokenizerStep::Prepend prependScheme(const Loader& L, const json& j, const std::string& path) {
  if (j.contains("prepend_scheme")) {
    const std::string s = L.stringField(j, path, "prepend_scheme");
    if (s == "always") return PreTokenizerStep::Prepend::Always;
    if (s == "first") return PreTokenizerStep::Prepend::First;
    if (s == "never") return PreTokenizerStep::Prepend::Never;
    L.bad(path + ".prepend_scheme", "'" + s + "' is not one of always, first, never");
  }
  return L.boolOr(j, path, "add_prefix_space", true) ? PreTokenizerStep::Prepend::Always
                                                      : PreTokenizerStep::Prepend::Never;
}

void loadPreTokenizer(const Loader& L, const json& j, const std::string& path, std::vector<PreTokenizerStep>& out) {
  if (j.is_null()) return;
  const std::string type = L.type(j, path);
  PreTokenizerStep step{PreTokenizerStep::Split};
  if (type == "Sequence") {
    const json& list = L.field(j, path, "pretokenizers");
    if (!list.is_array()) L.bad(path + ".pretokenizers", "is not an array");
    for (std::size_t i = 0; i < list.size(); ++i)
      loadPreTokenizer(L, list[i], path + ".pretokenizers[" + std::to_string(i) + "]", out);
    return;
  } else if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::ByteLevel;
    step.addPrefixSpace = L.boolOr(j, path, "add_prefix_space", true);
    if (L.boolOr(j, path, "use_regex", true)) step.regex = std::make_shared<Regex>(gpt2Pattern(), false, path);
  } else if (type == "Split") {
    step.regex = L.pattern(j, path);
    step.behavior = behavior(L, j, path);
    step.invert = L.boolOr(j, path, "invert", false);
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::Metaspace;
    step.replacement = L.stringField(j, path, "replacement");
    step.prepend = prependScheme(L, j, path);
    step.split = L.boolOr(j, path, "split", true);
  } else if (type == "Whitespace") {
    step.kind = PreTokenizerStep::Whitespace;
    step.regex = std::make_shared<Regex>(R"(\w+|[^\w\s]+)", false, path);
    step.behavior = SplitBehavior::Removed;
    step.invert = true;
  } else if (type == "WhitespaceSplit") {
    step.kind = PreTokenizerStep::WhitespaceSplit;
    step.regex = std::make_shared<Regex>(R"(\s+)", false, path);
    step.behavior = SplitBehavior::Removed;
  } else {
    L.unsupported(path, type);
  }
  out.push_back(std::move(step));
}

void loadDecoder(const Loader& L, const json& j, const std::string& path, std::vector<DecoderStep>& out) {
  const std::string type = L.type(j, path);
  DecoderStep step{DecoderStep::Fuse};
  if (type == "Sequence") {
    const json& list = L.field(j, path, "decoders");
    if (!list.is_array()) L.bad(path + ".decoders", "is not an array");
    for (std::size_t i = 0; i < list.size(); ++i)
      loadDecoder(L, list[i], path + ".decoders[" + std::to_string(i) + "]", out);
    return;
  } else if (type == "ByteLevel") {
    step.kind = DecoderStep::ByteLevel;
  } else if (type == "Replace") {
    step.kind = DecoderStep::Replace;
    step.to = L.stringField(j, path, "content");
    std::string literal;
    auto regex = L.pattern(j, path, &literal);
    if (L.field(j, path, "pattern").contains("String")) step.from = literal;
    else step.regex = regex;
  } else if (type == "ByteFallback") {
    step.kind = DecoderStep::ByteFallback;
  } else if (type == "Fuse") {
    step.kind = DecoderStep::Fuse;
  } else if (type == "Strip") {
    step.kind = DecoderStep::Strip;
    step.content = L.stringField(j, path, "content");
    if (utf8Chars(step.content).size() != 1) L.bad(path + ".content", "must be one character");
    step.start = static_cast<std::size_t>(L.integer(L.field(j, path, "start"), path + ".start"));
    step.stop = static_cast<std::size_t>(L.integer(L.field(j, path, "stop"), path + ".stop"));
    if (step.stop != 0) L.bad(path + ".stop", "other than 0 is not supported");
  } else if (type == "Metaspace") {
    step.kind = DecoderStep::Metaspace;
    step.from = L.stringField(j, path, "replacement");
    step.prependFirst = prependScheme(L, j, path) != PreTokenizerStep::Prepend::Never;
  } else {
    L.unsupported(path, type);
  }
  out.push_back(std::move(step));
}

void loadPostProcessor(const Loader& L, const json& j, const std::string& path, Tokenizer::Impl& t) {
  if (j.is_null()) return;
  const std::string type = L.type(j, path);
  if (type == "Sequence") {
    const json& list = L.field(j, path, "processors");
    if (!list.is_array()) L.bad(path + ".processors", "is not an array");
    for (std::size_t i = 0; i < list.size(); ++i)
      loadPostProcessor(L, list[i], path + ".processors[" + std::to_string(i) + "]", t);
  } else if (type == "ByteLevel") {
    // Offsets only; the ids are unchanged.
  } else if (type == "TemplateProcessing") {
    if (t.hasTemplate) L.bad(path, "is a second template post-processor");
    t.hasTemplate = true;
    const json& specials = L.field(j, path, "special_tokens");
    const json& single = L.field(j, path, "single");
    if (!single.is_array()) L.bad(path + ".single", "is not an array");
    for (std::size_t i = 0; i < single.size(); ++i) {
      const std::string at = path + ".single[" + std::to_string(i) + "]";
      if (single[i].contains("Sequence")) {
        if (L.stringField(single[i]["Sequence"], at + ".Sequence", "id") != "A") L.bad(at, "is not sequence A");
        t.templateSingle.emplace_back();
      } else if (single[i].contains("SpecialToken")) {
        const std::string name = L.stringField(single[i]["SpecialToken"], at + ".SpecialToken", "id");
        const std::string sp = path + ".special_tokens";
        if (!specials.contains(name)) L.bad(sp, "has no '" + name + "'");
        const json& ids = L.field(specials[name], sp + "." + name, "ids");
        std::vector<int32_t> piece;
        for (std::size_t k = 0; k < ids.size(); ++k) piece.push_back(L.id(ids[k], sp + "." + name + ".ids"));
        if (piece.empty()) L.bad(sp + "." + name + ".ids", "is empty");
        t.templateSingle.push_back(std::move(piece));
      } else {
        L.bad(at, "is neither a Sequence nor a SpecialToken");
      }
    }
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    if (t.hasTemplate) L.bad(path, "is a second template post-processor");
    t.hasTemplate = true;
    const json& cls = L.field(j, path, "cls");
    const json& sep = L.field(j, path, "sep");
    if (!cls.is_array() || cls.size() != 2) L.bad(path + ".cls", "is not [token, id]");
    if (!sep.is_array() || sep.size() != 2) L.bad(path + ".sep", "is not [token, id]");
    t.templateSingle = {{L.id(cls[1], path + ".cls[1]")}, {}, {L.id(sep[1], path + ".sep[1]")}};
  } else {
    L.unsupported(path, type);
  }
}

}  // namespace

Tokenizer Tokenizer::fromJson(std::string_view jsonText, const std::string& sourceName) {
  Loader L{sourceName};
  json root;
  try {
    root = json::parse(jsonText);
  } catch (const json::parse_error& e) {
    fail(sourceName, ": malformed JSON: ", e.what());
  }
  if (!root.is_object()) fail(sourceName, ": the top level is not a JSON object");
  auto impl = std::make_unique<Impl>();
  Impl& t = *impl;
  t.source = sourceName;
  t.byteTokens.fill(-1);

  // Model.
  const json& model = L.field(root, "", "model");
  const std::string modelType = model.contains("type") ? L.type(model, "model")
                                : model.contains("merges") ? "BPE"
                                                           : "";
  if (modelType != "BPE" && modelType != "WordLevel")
    L.bad("model.type", "'" + modelType + "' is not supported (BPE and WordLevel are)");
  t.wordLevel = modelType == "WordLevel";
  const json& vocab = L.field(model, "model", "vocab");
  if (!vocab.is_object()) L.bad("model.vocab", "is not an object");
  int32_t maxId = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int32_t id = L.id(it.value(), "model.vocab['" + it.key() + "']");
    t.vocab[it.key()] = id;
    maxId = std::max(maxId, id);
  }
  t.idToToken.assign(maxId + 1, {});
  t.hasToken.assign(maxId + 1, false);
  for (auto& [token, id] : t.vocab) {
    t.idToToken[id] = token;
    t.hasToken[id] = true;
  }
  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    const std::string unk = L.stringField(model, "model", "unk_token");
    auto it = t.vocab.find(unk);
    if (it == t.vocab.end()) L.bad("model.unk_token", "'" + unk + "' is not in model.vocab");
    t.unk = it->second;
  }
  if (!t.wordLevel) {
    if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
      L.bad("model.dropout", "is not supported (it makes encoding random)");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(key) && !model[key].is_null() && !L.string(model[key], std::string("model.") + key).empty())
        L.bad(std::string("model.") + key, "is not supported");
    t.byteFallback = L.boolOr(model, "model", "byte_fallback", false);
    t.fuseUnk = L.boolOr(model, "model", "fuse_unk", false);
    t.ignoreMerges = L.boolOr(model, "model", "ignore_merges", false);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      if (auto it = t.vocab.find(name); it != t.vocab.end()) t.byteTokens[b] = it->second;
    }
    const json& merges = L.field(model, "model", "merges");
    if (!merges.is_array()) L.bad("model.merges", "is not an array");
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
      const std::string at = "model.merges[" + std::to_string(rank) + "]";
      const json& m = merges[rank];
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const std::size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          L.bad(at, "'" + s + "' is not two tokens separated by one space");
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2) {
        a = L.string(m[0], at + "[0]");
        b = L.string(m[1], at + "[1]");
      } else {
        L.bad(at, "is neither \"a b\" nor [a, b]");
      }
      for (const auto* part : {&a, &b})
        if (!t.vocab.count(*part)) L.bad(at, "uses '" + *part + "', which is not in model.vocab");
      auto merged = t.vocab.find(a + b);
      if (merged == t.vocab.end()) L.bad(at, "makes '" + a + b + "', which is not in model.vocab");
      t.merges.emplace(a + '\0' + b, std::make_pair(static_cast<int32_t>(rank), merged->second));
    }
  }

  // Added tokens.
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    const json& list = root["added_tokens"];
    if (!list.is_array()) L.bad("added_tokens", "is not an array");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string at = "added_tokens[" + std::to_string(i) + "]";
      AddedToken token{L.stringField(list[i], at, "content"), L.id(L.field(list[i], at, "id"), at + ".id"),
                       L.boolOr(list[i], at, "special", false), L.boolOr(list[i], at, "normalized", false)};
      for (const char* key : {"single_word", "lstrip", "rstrip"})
        if (L.boolOr(list[i], at, key, false)) L.bad(at + "." + key, "= true is not supported");
      t.addedByContent[token.content] = token.id;
      t.addedById[token.id] = token.content;
      if (token.special) t.specialIds.insert(token.id);
      t.added.push_back(std::move(token));
    }
    std::stable_sort(t.added.begin(), t.added.end(),
                     [](const AddedToken& x, const AddedToken& y) { return x.content.size() > y.content.size(); });
    for (auto& [id, content] : t.addedById) {
      if (static_cast<std::size_t>(id) >= t.idToToken.size()) {
        t.idToToken.resize(id + 1);
        t.hasToken.resize(id + 1, false);
      }
    }
  }

  // Pipeline.
  if (root.contains("normalizer")) loadNormalizer(L, root["normalizer"], "normalizer", t.normalizer);
  if (root.contains("pre_tokenizer")) loadPreTokenizer(L, root["pre_tokenizer"], "pre_tokenizer", t.preTokenizer);
  if (root.contains("post_processor")) loadPostProcessor(L, root["post_processor"], "post_processor", t);
  if (root.contains("decoder") && !root["decoder"].is_null()) {
    t.hasDecoder = true;
    loadDecoder(L, root["decoder"], "decoder", t.decoder);
    for (const auto& step : t.decoder) t.decoderHasByteFallback |= step.kind == DecoderStep::ByteFallback;
  }
  // Normalized added tokens are matched in normalized text, as their normalized form.
  for (auto& token : t.added)
    if (token.normalized) token.content = t.normalize(token.content);
  std::stable_sort(t.added.begin(), t.added.end(),
                   [](const AddedToken& x, const AddedToken& y) { return x.content.size() > y.content.size(); });
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool addSpecialTokens) const {
  const Impl& t = *impl_;
  if (std::size_t bad = firstInvalidUtf8(text); bad != std::string_view::npos)
    fail(t.source, ": encode: the text is not valid UTF-8 at byte ", bad);
  std::vector<int32_t> ids;
  std::size_t offset = 0;
  for (auto& [addedId, piece] : t.splitAdded(std::string(text), false)) {
    const bool atStart = offset == 0;
    offset += piece.size();
    if (addedId) {
      ids.push_back(*addedId);
      continue;
    }
    const std::string normalized = t.normalize(piece);
    bool first = atStart;
    for (auto& [id2, sub] : t.splitAdded(normalized, true)) {
      if (id2) {
        ids.push_back(*id2);
        first = false;
        continue;
      }
      for (const Piece& word : t.preTokenize({Piece{sub, first}})) t.bpeWord(word.text, ids);
      first = false;
    }
  }
  if (!addSpecialTokens || !t.hasTemplate) return ids;
  std::vector<int32_t> out;
  for (const auto& item : t.templateSingle) {
    if (item.empty()) out.insert(out.end(), ids.begin(), ids.end());
    else out.insert(out.end(), item.begin(), item.end());
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skipSpecialTokens) const {
  return impl_->decodeTokens(impl_->tokensFor(ids, skipSpecialTokens), false);
}

std::optional<int32_t> Tokenizer::tokenToId(std::string_view token) const {
  if (auto it = impl_->addedByContent.find(std::string(token)); it != impl_->addedByContent.end()) return it->second;
  if (auto it = impl_->vocab.find(std::string(token)); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

std::string_view Tokenizer::idToToken(int32_t id) const {
  if (auto it = impl_->addedById.find(id); it != impl_->addedById.end()) return it->second;
  if (id >= 0 && static_cast<std::size_t>(id) < impl_->idToToken.size() && impl_->hasToken[id])
    return impl_->idToToken[id];
  fail(impl_->source, ": id ", id, " is not in the vocabulary");
}

std::size_t Tokenizer::vocabSize() const { return impl_->idToToken.size(); }

bool Tokenizer::isSpecial(int32_t id) const { return impl_->specialIds.count(id) > 0; }

// ---- incremental detokenization ----------------------------------------------------------------

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skipSpecialTokens)
    : tokenizer_(&tokenizer), skipSpecial_(skipSpecialTokens) {}

std::string IncrementalDetokenizer::push(int32_t id) {
  const Tokenizer::Impl& t = *tokenizer_->impl_;
  window_.push_back(id);
  std::vector<std::string> tokens = t.tokensFor(window_, skipSpecial_);
  std::size_t settledTokens = tokens.size();
  // An open run of <0xNN> tokens may still turn valid or invalid as a whole: hold it back.
  if (t.decoderHasByteFallback)
    while (settledTokens > 0 && Tokenizer::Impl::isByteToken(tokens[settledTokens - 1])) --settledTokens;
  const bool open = settledTokens < tokens.size();
  tokens.resize(settledTokens);
  std::string decoded = t.decodeTokens(std::move(tokens), continuation_);
  // A trailing U+FFFD may be an incomplete UTF-8 sequence that later bytes complete.
  std::size_t stable = decoded.size();
  while (stable >= kReplacementChar.size() &&
         std::string_view(decoded).substr(stable - kReplacementChar.size()) == kReplacementChar)
    stable -= kReplacementChar.size();
  if (stable < windowEmitted_ || decoded.compare(0, windowEmitted_, text_, text_.size() - windowEmitted_) != 0)
    fail(t.source, ": incremental decoding is not prefix-stable for this decoder");
  std::string piece = decoded.substr(windowEmitted_, stable - windowEmitted_);
  windowEmitted_ = stable;
  text_ += piece;
  if (!open && stable == decoded.size()) {  // everything settled: start a new window
    for (int32_t w : window_)
      if (!(skipSpecial_ && t.specialIds.count(w))) continuation_ = true;
    window_.clear();
    windowEmitted_ = 0;
  }
  return piece;
}

std::string IncrementalDetokenizer::finish() {
  const Tokenizer::Impl& t = *tokenizer_->impl_;
  std::string decoded = t.decodeTokens(t.tokensFor(window_, skipSpecial_), continuation_);
  std::string piece = decoded.substr(std::min(windowEmitted_, decoded.size()));
  text_ += piece;
  window_.clear();
  windowEmitted_ = 0;
  return piece;
}

}  // namespace pagedc
