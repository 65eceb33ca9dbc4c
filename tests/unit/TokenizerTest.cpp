// The tokenizer.json tokenizer against goldens from Hugging Face's `tokenizers` library
// (scripts/fixtures/export_tokenizer_goldens.py writes models/fixtures/tokenizers/*/goldens.json),
// the incremental detokenizer against decode(), and load errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ir/Error.h"
#include "runtime/tokenizer/Normalizer.h"
#include "runtime/tokenizer/Tokenizer.h"

namespace pagedc {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path sourceDir() { return fs::path(PAGEDC_SOURCE_DIR); }

std::vector<fs::path> goldenFiles() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(sourceDir() / "models" / "fixtures" / "tokenizers"))
    if (fs::exists(entry.path() / "goldens.json")) files.push_back(entry.path() / "goldens.json");
  for (const auto& entry : fs::directory_iterator(sourceDir() / "models" / "fixtures" / "tokenizers" / "variants"))
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

json readJson(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// The golden's tokenizer.json, with its "override" keys (a variant's pre-tokenizer / decoder) replaced.
Tokenizer loadTokenizer(const json& golden) {
  const fs::path path = sourceDir() / golden["tokenizer"].get<std::string>();
  if (!golden.contains("override")) return Tokenizer::fromFile(path);
  json data = readJson(path);
  for (const auto& [key, value] : golden["override"].items()) data[key] = value;
  return Tokenizer::fromJson(data.dump(), golden["name"].get<std::string>());
}

bool validUtf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char b = s[i];
    std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    if ((n == 2 && b < 0xC2) || (n == 3 && b == 0xE0 && static_cast<unsigned char>(s[i + 1]) < 0xA0) ||
        (n == 4 && (b > 0xF4 || (b == 0xF0 && static_cast<unsigned char>(s[i + 1]) < 0x90))))
      return false;
    i += n;
  }
  return true;
}

// Feeds ids one at a time; checks every piece is valid UTF-8 and the whole equals decode().
void expectIncrementalMatches(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool skipSpecial) {
  IncrementalDetokenizer stream(tokenizer, skipSpecial);
  std::string joined;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = stream.push(ids[i]);
    EXPECT_TRUE(validUtf8(piece)) << "step " << i << " returned invalid UTF-8";
    joined += piece;
    // Never ahead of what the ids so far decode to (prefix-stable).
    const std::string sofar = tokenizer.decode(std::span(ids).first(i + 1), skipSpecial);
    EXPECT_EQ(sofar.compare(0, joined.size(), joined), 0) << "step " << i << ": emitted text is not a prefix";
  }
  const std::string rest = stream.finish();
  EXPECT_TRUE(validUtf8(rest));
  joined += rest;
  EXPECT_EQ(joined, tokenizer.decode(ids, skipSpecial));
  EXPECT_EQ(stream.text(), joined);
}

TEST(TokenizerTest, GoldensCoverEveryFixture) {
  const auto files = goldenFiles();
  ASSERT_GE(files.size(), 30u) << "models/fixtures/tokenizers has too few goldens";
  for (const auto& file : files) {
    const json golden = readJson(file);
    EXPECT_FALSE(golden["tokenizers_version"].get<std::string>().empty()) << file;
    EXPECT_GE(golden["cases"].size(), 30u) << file;
  }
}

TEST(TokenizerTest, EncodeAndDecodeMatchHuggingFace) {
  for (const auto& file : goldenFiles()) {
    const json golden = readJson(file);
    SCOPED_TRACE(golden["name"].get<std::string>());
    const Tokenizer tokenizer = loadTokenizer(golden);
    for (const auto& c : golden["cases"]) {
      const std::string text = c["text"];
      SCOPED_TRACE("text: '" + text + "'");
      const auto ids = c["ids"].get<std::vector<int32_t>>();
      EXPECT_EQ(tokenizer.encode(text, true), ids);
      EXPECT_EQ(tokenizer.encode(text, false), c["ids_no_special"].get<std::vector<int32_t>>());
      EXPECT_EQ(tokenizer.decode(ids, true), c["decoded"].get<std::string>());
      EXPECT_EQ(tokenizer.decode(ids, false), c["decoded_with_special"].get<std::string>());
    }
    for (const auto& c : golden["decode_cases"]) {
      const auto ids = c["ids"].get<std::vector<int32_t>>();
      EXPECT_EQ(tokenizer.decode(ids, c["skip_special"].get<bool>()), c["text"].get<std::string>())
          << "ids " << c["ids"].dump();
    }
  }
}

TEST(TokenizerTest, IncrementalDetokenizerEqualsDecode) {
  for (const auto& file : goldenFiles()) {
    const json golden = readJson(file);
    SCOPED_TRACE(golden["name"].get<std::string>());
    const Tokenizer tokenizer = loadTokenizer(golden);
    for (const auto& c : golden["cases"])
      for (bool skip : {true, false}) expectIncrementalMatches(tokenizer, c["ids"].get<std::vector<int32_t>>(), skip);
    for (const auto& c : golden["decode_cases"])
      expectIncrementalMatches(tokenizer, c["ids"].get<std::vector<int32_t>>(), c["skip_special"].get<bool>());
  }
}

TEST(TokenizerTest, IncrementalDetokenizerHoldsBackPartialCharacters) {
  const fs::path dir = sourceDir() / "models" / "fixtures" / "tokenizers";
  // Byte-level: the emoji's four bytes are separate tokens in this small vocabulary.
  {
    const Tokenizer tokenizer = Tokenizer::fromFile(dir / "bytelevel-gpt2" / "tokenizer.json");
    const auto ids = tokenizer.encode("a\xF0\x9F\x98\x80", false);
    ASSERT_GE(ids.size(), 3u);
    IncrementalDetokenizer stream(tokenizer);
    EXPECT_EQ(stream.push(ids[0]), "a");
    for (std::size_t i = 1; i + 1 < ids.size(); ++i) EXPECT_EQ(stream.push(ids[i]), "") << i;
    EXPECT_EQ(stream.push(ids.back()), "\xF0\x9F\x98\x80");
    EXPECT_EQ(stream.finish(), "");
  }
  // SentencePiece byte fallback: <0xE4><0xB8><0xAD> is one character, held until the run ends.
  {
    const Tokenizer tokenizer = Tokenizer::fromFile(dir / "sentencepiece-bpe" / "tokenizer.json");
    const int32_t e4 = *tokenizer.tokenToId("<0xE4>"), b8 = *tokenizer.tokenToId("<0xB8>"),
                  ad = *tokenizer.tokenToId("<0xAD>");
    const int32_t a = *tokenizer.tokenToId("\u2581The");  // "▁The"
    IncrementalDetokenizer stream(tokenizer);
    EXPECT_EQ(stream.push(a), "The");  // the leading space is stripped, as decode() does
    EXPECT_EQ(stream.push(e4), "");
    EXPECT_EQ(stream.push(b8), "");
    EXPECT_EQ(stream.push(ad), "");
    EXPECT_EQ(stream.push(a), "\xE4\xB8\xAD The");
    EXPECT_EQ(stream.finish(), "");
    EXPECT_EQ(stream.text(), tokenizer.decode(std::vector<int32_t>{a, e4, b8, ad, a}));
    // An invalid run decodes to one U+FFFD per byte, also incrementally.
    IncrementalDetokenizer bad(tokenizer);
    bad.push(e4);
    bad.push(a);
    EXPECT_EQ(bad.text(), "\xEF\xBF\xBD The");
  }
}

// Byte-level and byte-fallback tokenizers lose nothing: decode(encode(text)) == text, also for a
// long text (one SentencePiece "word" of ~100 KB: the merge loop must not be quadratic).
TEST(TokenizerTest, RoundTripsLongText) {
  std::string text;
  const json golden = readJson(sourceDir() / "models" / "fixtures" / "tokenizers" / "bytelevel-gpt2" / "goldens.json");
  for (int repeat = 0; text.size() < 100000; ++repeat)
    for (const auto& c : golden["cases"])
      if (c["text"].get<std::string>().find('<') == std::string::npos) text += c["text"].get<std::string>() + " ";
  for (const char* name : {"bytelevel-gpt2", "bytelevel-llama3", "sentencepiece-bpe"}) {
    SCOPED_TRACE(name);
    const Tokenizer tokenizer =
        Tokenizer::fromFile(sourceDir() / "models" / "fixtures" / "tokenizers" / name / "tokenizer.json");
    for (const auto& c : golden["cases"]) {
      const std::string small = c["text"];
      if (small.find('<') == std::string::npos) {
        EXPECT_EQ(tokenizer.decode(tokenizer.encode(small, false)), small);
      }
    }
    const auto ids = tokenizer.encode(text, false);
    EXPECT_GT(ids.size(), 10000u);
    EXPECT_EQ(tokenizer.decode(ids), text);
    IncrementalDetokenizer stream(tokenizer);
    for (int32_t id : ids) stream.push(id);
    stream.finish();
    EXPECT_EQ(stream.text(), text);
  }
}

TEST(TokenizerTest, SpecialTokensAndLookups) {
  const Tokenizer tokenizer =
      Tokenizer::fromFile(sourceDir() / "models" / "fixtures" / "tokenizers" / "sentencepiece-bpe" / "tokenizer.json");
  const int32_t bos = *tokenizer.tokenToId("<s>");
  EXPECT_TRUE(tokenizer.isSpecial(bos));
  EXPECT_EQ(tokenizer.idToToken(bos), "<s>");
  EXPECT_FALSE(tokenizer.isSpecial(*tokenizer.tokenToId("<0x41>")));
  EXPECT_FALSE(tokenizer.tokenToId("no such token").has_value());
  EXPECT_EQ(tokenizer.encode("hi", true).front(), bos);
  EXPECT_NE(tokenizer.encode("hi", false).front(), bos);
  EXPECT_GE(tokenizer.vocabSize(), 256u + 3u);
}

void expectError(const std::string& jsonText, const std::string& expected) {
  try {
    Tokenizer::fromJson(jsonText, "t/tokenizer.json");
    ADD_FAILURE() << "no error; expected: " << expected;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

TEST(TokenizerTest, LoadErrorsNameFileAndPath) {
  const std::string bpe = R"("model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
  expectError(R"({"model": {"type": "Unigram", "vocab": []}})",
              "t/tokenizer.json: model.type 'Unigram' is not supported");
  expectError(R"({"model": {"type": "BPE", "vocab": {"a": 0}, )", "t/tokenizer.json: malformed JSON");
  expectError(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}})",
              "t/tokenizer.json: model.merges[0] makes 'ab', which is not in model.vocab");
  expectError(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}})",
              "model.merges[0] 'a' is not two tokens separated by one space");
  expectError(R"({"model": {"type": "BPE", "vocab": {"a": 0}}})", "t/tokenizer.json: model.merges is missing");
  expectError("{" + bpe + R"(, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"},
              {"type": "Punctuation"}]}})",
              "t/tokenizer.json: pre_tokenizer.pretokenizers[1].type 'Punctuation' is not supported");
  expectError("{" + bpe + R"(, "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"},
              {"type": "StripAccents"}]}})",
              "normalizer.normalizers[1].type 'StripAccents' is not supported");
  expectError("{" + bpe + R"(, "decoder": {"type": "Sequence", "decoders": [{"type": "WordPiece"}]}})",
              "decoder.decoders[0].type 'WordPiece' is not supported");
  expectError("{" + bpe + R"(, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"},
              "behavior": "Isolated", "invert": false}})",
              "pre_tokenizer.pattern.Regex: regex does not compile");
  expectError("{" + bpe + R"(, "added_tokens": [{"id": 3, "content": "<x>", "lstrip": true}]})",
              "added_tokens[0].lstrip = true is not supported");
}

// The Unicode normalization forms (utf8proc) beyond what the goldens cover: U+0000 inside the text
// is kept (utf8proc_map with a length, not the NUL-terminated utf8proc_NFC), ASCII passes through,
// and the one known difference from `tokenizers` (docs/TOKENIZER.md): characters assigned after
// Unicode 9.0 are normalized by Unicode 15.0's data, where `tokenizers` leaves them as they are.
TEST(TokenizerTest, UnicodeNormalizationForms) {
  using tokenizer::NormalizerStep;
  using tokenizer::unicodeNormalize;
  EXPECT_EQ(unicodeNormalize("plain ASCII\n", NormalizerStep::NFKD), "plain ASCII\n");
  EXPECT_EQ(unicodeNormalize("", NormalizerStep::NFC), "");
  EXPECT_EQ(unicodeNormalize(std::string("e\xCC\x81\0e\xCC\x81", 7), NormalizerStep::NFC),
            std::string("\xC3\xA9\0\xC3\xA9", 5));
  EXPECT_EQ(unicodeNormalize("\xC3\xA9", NormalizerStep::NFD), "e\xCC\x81");  // é
  EXPECT_EQ(unicodeNormalize("\xEF\xAC\x81", NormalizerStep::NFC), "\xEF\xAC\x81");  // ﬁ
  EXPECT_EQ(unicodeNormalize("\xEF\xAC\x81", NormalizerStep::NFKC), "fi");
  EXPECT_EQ(unicodeNormalize("\xE2\x84\xAB", NormalizerStep::NFC), "\xC3\x85");  // U+212B ANGSTROM SIGN -> Å
  EXPECT_EQ(unicodeNormalize("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB", NormalizerStep::NFC),
            "\xED\x95\x9C");  // jamo -> 한
  EXPECT_EQ(unicodeNormalize("\xEA\x9F\xB2", NormalizerStep::NFKC), "C");  // U+A7F2 (Unicode 14); tokenizers: unchanged
  // Through a tokenizer: NFKC, then WhitespaceSplit, on a WordLevel model.
  const Tokenizer tokenizer = Tokenizer::fromJson(R"({"normalizer": {"type": "NFKC"}, "pre_tokenizer":
      {"type": "WhitespaceSplit"}, "model": {"type": "WordLevel", "vocab": {"fi": 0, "ABC": 1, "[UNK]": 2},
      "unk_token": "[UNK]"}})");
  EXPECT_EQ(tokenizer.encode("\xEF\xAC\x81 \xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3 x"), (std::vector<int32_t>{0, 1, 2}));
  // A normalized added token ("ﬁx") is matched, decoded and named by its normalized form ("fix") and
  // looked up by its original content, as `tokenizers` 0.23.3 does.
  const Tokenizer added = Tokenizer::fromJson(R"({"normalizer": {"type": "NFKC"}, "pre_tokenizer":
      {"type": "WhitespaceSplit"}, "model": {"type": "WordLevel", "vocab": {"a": 0, "[UNK]": 1},
      "unk_token": "[UNK]"}, "added_tokens": [{"id": 2, "content": "\uFB01x", "normalized": true}]})");
  EXPECT_EQ(added.encode("\xEF\xAC\x81x fix a"), (std::vector<int32_t>{2, 2, 0}));
  EXPECT_EQ(added.idToToken(2), "fix");
  EXPECT_EQ(added.tokenToId("\xEF\xAC\x81x"), std::optional<int32_t>(2));
  EXPECT_FALSE(added.tokenToId("fix").has_value());
}

TEST(TokenizerTest, RuntimeErrors) {
  const Tokenizer tokenizer = Tokenizer::fromJson(
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}})");
  EXPECT_EQ(tokenizer.encode("abab"), (std::vector<int32_t>{2, 2}));
  EXPECT_THROW(tokenizer.encode("a\xFF"), Error);
  EXPECT_THROW(tokenizer.decode(std::vector<int32_t>{7}), Error);
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{2, 0}), "ab a");  // no decoder: tokens joined by spaces
}

}  // namespace
}  // namespace pagedc
