// Engine text streams backed by the incremental detokenizer.
#include "runtime/tokenizer/TokenizerDetokenizer.h"

namespace pagedc {

namespace {
class TokenizerTextStream final : public TokenTextStream {
public:
  TokenizerTextStream(const Tokenizer& tokenizer, bool skipSpecialTokens)
      : vocabSize_(tokenizer.vocabSize()), stream_(tokenizer, skipSpecialTokens) {}

  std::string push(TokenId id) override {
    if (id < 0 || static_cast<std::size_t>(id) >= vocabSize_) return {};
    return stream_.push(static_cast<int32_t>(id));
  }
  std::string finish() override { return stream_.finish(); }

private:
  std::size_t vocabSize_;
  IncrementalDetokenizer stream_;
};
}  // namespace

Detokenizer makeDetokenizer(const Tokenizer& tokenizer) {
  return [&tokenizer](const SamplingParams& params) -> std::unique_ptr<TokenTextStream> {
    return std::make_unique<TokenizerTextStream>(tokenizer, params.skipSpecialTokens);
  };
}

}  // namespace pagedc
