// Loading tokenizer.json's decoders (Decoder.h).
#include "runtime/tokenizer/Decoder.h"

#include <utility>

#include "runtime/tokenizer/PreTokenizer.h"
#include "runtime/tokenizer/Utf8.h"

namespace pagedc::tokenizer {

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

}  // namespace pagedc::tokenizer
