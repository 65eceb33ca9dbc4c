// Loading and applying tokenizer.json's normalizers (Normalizer.h).
#include "runtime/tokenizer/Normalizer.h"

#include <cstdlib>
#include <memory>

#include <utf8proc.h>

#include "ir/Error.h"

namespace pagedc::tokenizer {

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
  } else if (type == "NFC") {
    out.push_back({NormalizerStep::NFC, {}, nullptr});
  } else if (type == "NFD") {
    out.push_back({NormalizerStep::NFD, {}, nullptr});
  } else if (type == "NFKC") {
    out.push_back({NormalizerStep::NFKC, {}, nullptr});
  } else if (type == "NFKD") {
    out.push_back({NormalizerStep::NFKD, {}, nullptr});
  } else {
    L.unsupported(path, type);
  }
}

std::string applyNormalizer(const NormalizerStep& step, std::string text) {
  switch (step.kind) {
    case NormalizerStep::Prepend:
      if (!text.empty()) text = step.text + text;  // as tokenizers: nothing is prepended to ""
      return text;
    case NormalizerStep::Replace:
      return step.regex->replaceAll(text, step.text);
    case NormalizerStep::NFC:
    case NormalizerStep::NFD:
    case NormalizerStep::NFKC:
    case NormalizerStep::NFKD:
      return unicodeNormalize(text, step.kind);
  }
  return text;
}

std::string unicodeNormalize(std::string_view text, NormalizerStep::Kind kind) {
  // ASCII is the same in all four forms: skip the library for the common case.
  bool ascii = true;
  for (unsigned char c : text) ascii &= c < 0x80;
  if (ascii) return std::string(text);

  // utf8proc_NFC() and friends take NUL-terminated strings; utf8proc_map takes a length, so
  // U+0000 in the text is kept. STABLE: no characters unassigned in utf8proc's Unicode version
  // are changed (as the normalization forms require).
  int options = UTF8PROC_STABLE;
  switch (kind) {
    case NormalizerStep::NFC: options |= UTF8PROC_COMPOSE; break;
    case NormalizerStep::NFD: options |= UTF8PROC_DECOMPOSE; break;
    case NormalizerStep::NFKC: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormalizerStep::NFKD: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    default: fail("unicodeNormalize: not a Unicode normalization form");
  }
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                          static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                                          static_cast<utf8proc_option_t>(options));
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(mapped, &std::free);
  if (n < 0) fail("Unicode normalization failed: ", utf8proc_errmsg(n));
  return std::string(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(n));
}

}  // namespace pagedc::tokenizer
