// GPT-2's byte-level alphabet (ByteLevel.h).
#include "runtime/tokenizer/ByteLevel.h"

#include "runtime/tokenizer/Utf8.h"

namespace pagedc::tokenizer {

ByteLevelTables::ByteLevelTables() {
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const char32_t cp = printable ? static_cast<char32_t>(b) : next++;
    byteToChar[b] = encodeUtf8(cp);
    charToByte[cp] = static_cast<unsigned char>(b);
  }
}

const ByteLevelTables& byteLevel() {
  static const ByteLevelTables tables;
  return tables;
}

}  // namespace pagedc::tokenizer
