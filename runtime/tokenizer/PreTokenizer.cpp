// Pre-tokenizers of tokenizer.json: loading them, and Split (PreTokenizer.h).
#include "runtime/tokenizer/PreTokenizer.h"

#include <utility>

namespace pagedc::tokenizer {
namespace {

SplitBehavior behavior(const Loader& L, const json& j, const std::string& path) {
  const std::string b = L.stringField(j, path, "behavior");
  if (b == "Removed") return SplitBehavior::Removed;
  if (b == "Isolated") return SplitBehavior::Isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (b == "Contiguous") return SplitBehavior::Contiguous;
  L.bad(path + ".behavior", "'" + b + "' is not a split behavior");
}

}  // namespace

const std::string& gpt2Pattern() {
  static const std::string p =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  return p;
}

std::vector<Piece> splitPiece(const Piece& piece, const Regex& regex, SplitBehavior behavior, bool invert) {
  std::vector<std::pair<std::pair<std::size_t, std::size_t>, bool>> spans;  // (range, is a match)
  std::size_t prev = 0;
  for (auto [s, e] : regex.findAll(piece.text)) {
    if (s > prev) spans.push_back({{prev, s}, false});
    spans.push_back({{s, e}, true});
    prev = e;
  }
  if (prev < piece.text.size()) spans.push_back({{prev, piece.text.size()}, false});
  if (invert)
    for (auto& span : spans) span.second = !span.second;

  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  switch (behavior) {
    case SplitBehavior::Removed:
      for (auto& [r, isMatch] : spans)
        if (!isMatch) ranges.push_back(r);
      break;
    case SplitBehavior::Isolated:
      for (auto& [r, isMatch] : spans) ranges.push_back(r);
      break;
    case SplitBehavior::MergedWithPrevious: {
      bool previousWasMatch = false;
      for (auto& [r, isMatch] : spans) {
        if (isMatch && !ranges.empty() && !previousWasMatch) ranges.back().second = r.second;
        else ranges.push_back(r);
        previousWasMatch = isMatch;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool previousWasMatch = false;
      for (auto& [r, isMatch] : spans) {
        if (previousWasMatch && !isMatch && !ranges.empty()) ranges.back().second = r.second;
        else ranges.push_back(r);
        previousWasMatch = isMatch;
      }
      break;
    }
    case SplitBehavior::Contiguous: {
      bool previousWasMatch = false;
      for (auto& [r, isMatch] : spans) {
        if (isMatch && previousWasMatch && !ranges.empty()) ranges.back().second = r.second;
        else ranges.push_back(r);
        previousWasMatch = isMatch;
      }
      break;
    }
  }
  std::vector<Piece> out;
  for (auto [s, e] : ranges)
    if (e > s) out.push_back({piece.text.substr(s, e - s), piece.atInputStart && s == 0});
  return out;
}

PreTokenizerStep::Prepend prependScheme(const Loader& L, const json& j, const std::string& path) {
  if (j.contains("prepend_scheme")) {
    const std::string s = L.stringField(j, path, "prepend_scheme");
    if (s == "always") return PreTokenizerStep::Prepend::Always;
    if (s == "first") return PreTokenizerStep::Prepend::First;
    if (s == "never") return PreTokenizerStep::Prepend::Never;
    L.bad(path + ".prepend_scheme", "'" + s + "' is not one of always, first, never");
  }
  return L.boolOr(j, path, "add_prefix_space", true) ? PreTokenizerStep::Prepend::Always
                                                      : PreTokenizerStep::Prepend::Never;
}

void loadPreTokenizer(const Loader& L, const json& j, const std::string& path, std::vector<PreTokenizerStep>& out) {
  if (j.is_null()) return;
  const std::string type = L.type(j, path);
  PreTokenizerStep step{PreTokenizerStep::Split};
  if (type == "Sequence") {
    const json& list = L.field(j, path, "pretokenizers");
    if (!list.is_array()) L.bad(path + ".pretokenizers", "is not an array");
    for (std::size_t i = 0; i < list.size(); ++i)
      loadPreTokenizer(L, list[i], path + ".pretokenizers[" + std::to_string(i) + "]", out);
    return;
  } else if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::ByteLevel;
    step.addPrefixSpace = L.boolOr(j, path, "add_prefix_space", true);
    if (L.boolOr(j, path, "use_regex", true)) step.regex = std::make_shared<Regex>(gpt2Pattern(), false, path);
  } else if (type == "Split") {
    step.regex = L.pattern(j, path);
    step.behavior = behavior(L, j, path);
    step.invert = L.boolOr(j, path, "invert", false);
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::Metaspace;
    step.replacement = L.stringField(j, path, "replacement");
    step.prepend = prependScheme(L, j, path);
    step.split = L.boolOr(j, path, "split", true);
  } else if (type == "Whitespace") {
    step.kind = PreTokenizerStep::Whitespace;
    step.regex = std::make_shared<Regex>(R"(\w+|[^\w\s]+)", false, path);
    step.behavior = SplitBehavior::Removed;
    step.invert = true;
  } else if (type == "WhitespaceSplit") {
    step.kind = PreTokenizerStep::WhitespaceSplit;
    step.regex = std::make_shared<Regex>(R"(\s+)", false, path);
    step.behavior = SplitBehavior::Removed;
  } else {
    L.unsupported(path, type);
  }
  out.push_back(std::move(step));
}

}  // namespace pagedc::tokenizer
