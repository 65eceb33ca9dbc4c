// Decoders of tokenizer.json (ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence
// of them), loaded as a flat list of steps.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "runtime/tokenizer/JsonPath.h"
#include "runtime/tokenizer/Regex.h"

namespace pagedc::tokenizer {

struct DecoderStep {
  enum Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace } kind;
  std::string from, to;  // Replace (string patterns); Metaspace replacement in `from`
  std::shared_ptr<Regex> regex;  // Replace with a regex
  std::string content;  // Strip
  std::size_t start = 0, stop = 0;  // Strip
  bool prependFirst = true;  // Metaspace: prepend_scheme != never
};

// Appends the steps of the decoder j at path to out.
void loadDecoder(const Loader& L, const json& j, const std::string& path, std::vector<DecoderStep>& out);

}  // namespace pagedc::tokenizer
