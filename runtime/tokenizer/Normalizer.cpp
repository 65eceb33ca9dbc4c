// Loading tokenizer.json's normalizers (Normalizer.h).
#include "runtime/tokenizer/Normalizer.h"

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
  } else {
    L.unsupported(path, type);
  }
}

}  // namespace pagedc::tokenizer
