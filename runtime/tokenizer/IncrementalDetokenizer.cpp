// Streaming detokenization that holds back bytes until they are settled (IncrementalDetokenizer).
#include "runtime/tokenizer/Tokenizer.h"

#include <algorithm>

#include "ir/Error.h"
#include "runtime/tokenizer/TokenizerImpl.h"
#include "runtime/tokenizer/Utf8.h"

namespace pagedc {

using tokenizer::kReplacementChar;

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
