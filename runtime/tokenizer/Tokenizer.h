// A Hugging Face tokenizer.json tokenizer: BPE (byte-level as in GPT-2 / Llama 3 / Qwen, and
// SentencePiece-style with byte fallback as in Llama 2 / Mistral) and WordLevel models, the common
// normalizers, pre-tokenizers, post-processors and decoders. docs/TOKENIZER.md lists what is
// supported; anything else is refused at load time with an Error naming the file and JSON path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pagedc {

class Tokenizer {
public:
  // Reads and checks a tokenizer.json; throws Error ("<path>: model.type 'Unigram' is not supported").
  static Tokenizer fromFile(const std::filesystem::path& path);
  // The same from JSON text; sourceName prefixes error messages.
  static Tokenizer fromJson(std::string_view jsonText, const std::string& sourceName = "tokenizer.json");

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Text (valid UTF-8, else Error) to ids. Added tokens in the text are always matched;
  // addSpecialTokens applies the post-processor (e.g. Llama's "<s> $A").
  std::vector<int32_t> encode(std::string_view text, bool addSpecialTokens = true) const;
  // Ids to text, through the decoder (invalid byte sequences become U+FFFD as in Hugging Face).
  // Throws Error for an id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids, bool skipSpecialTokens = true) const;

  std::optional<int32_t> tokenToId(std::string_view token) const;
  // The token's string as stored in tokenizer.json (byte-level tokens stay in their mapped form).
  std::string_view idToToken(int32_t id) const;
  // Largest id + 1 (model vocabulary and added tokens).
  std::size_t vocabSize() const;
  // True for added tokens marked "special" (skipped by decode(ids, true)).
  bool isSpecial(int32_t id) const;

  struct Impl;

private:
  friend class IncrementalDetokenizer;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Streaming detokenization: feed ids one at a time, get the new text. Every returned piece is
// valid UTF-8; bytes that may still change (an incomplete UTF-8 sequence, an open run of <0xNN>
// byte-fallback tokens) are held back until they are settled. The concatenation of all push()
// results and finish() equals tokenizer.decode(all ids, skipSpecialTokens). The tokenizer must
// outlive the detokenizer. Work per push is proportional to the ids since the last settled point.
class IncrementalDetokenizer {
public:
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skipSpecialTokens = true);

  // The text that id adds (possibly empty while bytes are held back).
  std::string push(int32_t id);
  // Whatever is still held back, decoded as decode() would (U+FFFD for incomplete sequences).
  std::string finish();
  // Everything returned so far.
  const std::string& text() const { return text_; }

private:
  const Tokenizer* tokenizer_;
  bool skipSpecial_;
  std::vector<int32_t> window_;  // ids since the last settled point
  std::size_t windowEmitted_ = 0;  // bytes of the window's decoded text already returned
  bool continuation_ = false;  // some non-skipped token precedes the window
  std::string text_;
};

}  // namespace pagedc
