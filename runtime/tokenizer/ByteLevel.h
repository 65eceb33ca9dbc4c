// GPT-2's byte-level alphabet: each byte as a printable character, used by the ByteLevel
// pre-tokenizer and decoder.
#pragma once

#include <array>
#include <string>
#include <unordered_map>

namespace pagedc::tokenizer {

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards.
struct ByteLevelTables {
  std::array<std::string, 256> byteToChar;
  std::unordered_map<char32_t, unsigned char> charToByte;
  ByteLevelTables();
};
const ByteLevelTables& byteLevel();

}  // namespace pagedc::tokenizer
