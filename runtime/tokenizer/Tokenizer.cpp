// The tokenizer: loading tokenizer.json, the BPE / WordLevel model, and running the pipeline.
#include "runtime/tokenizer/Tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <queue>
#include <sstream>

#include "ir/Error.h"
#include "runtime/tokenizer/ByteLevel.h"
#include "runtime/tokenizer/JsonPath.h"
#include "runtime/tokenizer/TokenizerImpl.h"
#include "runtime/tokenizer/Utf8.h"

namespace pagedc {

using namespace tokenizer;

std::string Tokenizer::Impl::normalize(std::string text) const {
  for (const auto& step : normalizer) text = applyNormalizer(step, std::move(text));
  return text;
}

std::vector<Piece> Tokenizer::Impl::preTokenize(std::vector<Piece> pieces) const {
  for (const auto& step : preTokenizer) {
    std::vector<Piece> next;
    for (auto& piece : pieces) {
      switch (step.kind) {
        case PreTokenizerStep::ByteLevel: {
          Piece p = piece;
          if (step.addPrefixSpace && (p.text.empty() || p.text[0] != ' ')) p.text = " " + p.text;
          std::vector<Piece> parts = step.regex ? splitPiece(p, *step.regex, SplitBehavior::Isolated, false)
                                                : std::vector<Piece>{p};
          for (auto& part : parts) {
            std::string mapped;
            for (unsigned char b : part.text) mapped += byteLevel().byteToChar[b];
            next.push_back({std::move(mapped), part.atInputStart});
          }
          break;
        }
        case PreTokenizerStep::Split:
        case PreTokenizerStep::Whitespace:
        case PreTokenizerStep::WhitespaceSplit:
          for (auto& part : splitPiece(piece, *step.regex, step.behavior, step.invert))
            next.push_back(std::move(part));
          break;
        case PreTokenizerStep::Metaspace: {
          Piece p{replaceAll(piece.text, " ", step.replacement), piece.atInputStart};
          const bool startsWith = p.text.starts_with(step.replacement);
          if (!startsWith && (step.prepend == PreTokenizerStep::Prepend::Always ||
                              (step.prepend == PreTokenizerStep::Prepend::First && p.atInputStart)))
            p.text = step.replacement + p.text;
          if (step.split) {
            // MergedWithNext on the replacement character.
            std::size_t begin = 0;
            for (std::size_t hit = p.text.find(step.replacement, 1); hit != std::string::npos;
                 hit = p.text.find(step.replacement, hit + step.replacement.size())) {
              next.push_back({p.text.substr(begin, hit - begin), p.atInputStart && begin == 0});
              begin = hit;
            }
            if (begin < p.text.size()) next.push_back({p.text.substr(begin), p.atInputStart && begin == 0});
          } else if (!p.text.empty()) {
            next.push_back(std::move(p));
          }
          break;
        }
      }
    }
    pieces = std::move(next);
  }
  return pieces;
}

void Tokenizer::Impl::bpeWord(const std::string& word, std::vector<int32_t>& out) const {
  if (wordLevel) {
    if (auto it = vocab.find(word); it != vocab.end()) out.push_back(it->second);
    else if (unk) out.push_back(*unk);
    else fail(source, ": WordLevel has no token for '", word, "' and no unk_token");
    return;
  }
  if (ignoreMerges)
    if (auto it = vocab.find(word); it != vocab.end()) {
      out.push_back(it->second);
      return;
    }
  struct Symbol {
    int32_t id;
    int prev, next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  bool lastWasUnk = false;
  for (std::string_view c : utf8Chars(word)) {
    if (auto it = vocab.find(std::string(c)); it != vocab.end()) {
      symbols.push_back({it->second, 0, 0, true});
      lastWasUnk = false;
      continue;
    }
    if (byteFallback && std::all_of(c.begin(), c.end(), [&](char b) {
          return byteTokens[static_cast<unsigned char>(b)] >= 0;
        })) {
      for (char b : c) symbols.push_back({byteTokens[static_cast<unsigned char>(b)], 0, 0, true});
      lastWasUnk = false;
      continue;
    }
    if (unk) {
      if (!(fuseUnk && lastWasUnk)) symbols.push_back({*unk, 0, 0, true});
      lastWasUnk = true;
    }
    // No unk token: Hugging Face drops the character.
  }
  const int n = static_cast<int>(symbols.size());
  for (int i = 0; i < n; ++i) {
    symbols[i].prev = i - 1;
    symbols[i].next = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int left;
    int32_t leftId, rightId, merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  std::string key;
  const auto consider = [&](int left) {
    if (left < 0) return;
    const int right = symbols[left].next;
    if (right < 0) return;
    key.clear();
    key.append(idToToken[symbols[left].id]).push_back('\0');
    key.append(idToToken[symbols[right].id]);
    if (auto it = merges.find(key); it != merges.end())
      queue.push({it->second.first, left, symbols[left].id, symbols[right].id, it->second.second});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[c.left];
    if (!left.alive || left.id != c.leftId || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    if (right.id != c.rightId) continue;
    left.id = c.merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    consider(left.prev);
    consider(c.left);
  }
  for (int i = n ? 0 : -1; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

std::vector<std::pair<std::optional<int32_t>, std::string>> Tokenizer::Impl::splitAdded(
    const std::string& text, bool normalizedOnes) const {
  std::vector<std::pair<std::optional<int32_t>, std::string>> out;
  std::size_t pieceStart = 0;
  for (std::size_t i = 0; i < text.size();) {
    const AddedToken* hit = nullptr;
    for (const auto& token : added)
      if (token.normalized == normalizedOnes && !token.content.empty() &&
          text.compare(i, token.content.size(), token.content) == 0) {
        hit = &token;
        break;
      }
    if (!hit) {
      ++i;
      continue;
    }
    if (i > pieceStart) out.push_back({std::nullopt, text.substr(pieceStart, i - pieceStart)});
    out.push_back({hit->id, hit->content});
    i += hit->content.size();
    pieceStart = i;
  }
  if (pieceStart < text.size()) out.push_back({std::nullopt, text.substr(pieceStart)});
  return out;
}

std::string Tokenizer::Impl::tokenString(int32_t id) const {
  if (auto it = addedById.find(id); it != addedById.end()) return it->second;
  if (id >= 0 && static_cast<std::size_t>(id) < idToToken.size() && hasToken[id]) return idToToken[id];
  fail(source, ": decode: id ", id, " is not in the vocabulary (size ", idToToken.size(), ")");
}

std::vector<std::string> Tokenizer::Impl::tokensFor(std::span<const int32_t> ids, bool skipSpecial) const {
  std::vector<std::string> tokens;
  for (int32_t id : ids) {
    std::string t = tokenString(id);
    if (skipSpecial && specialIds.count(id)) continue;
    tokens.push_back(std::move(t));
  }
  return tokens;
}

bool Tokenizer::Impl::isByteToken(const std::string& t) {
  return t.size() == 6 && t.starts_with("<0x") && t[5] == '>' && std::isxdigit(static_cast<unsigned char>(t[3])) &&
         std::isxdigit(static_cast<unsigned char>(t[4]));
}

std::string Tokenizer::Impl::decodeTokens(std::vector<std::string> tokens, bool continuation) const {
  if (!hasDecoder) {
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 || continuation) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  bool fused = false;  // tokens[0] holds everything decoded so far
  for (const auto& step : decoder) {
    switch (step.kind) {
      case DecoderStep::ByteLevel: {
        std::string bytes;
        for (const auto& t : tokens) {
          std::string mapped;
          bool ok = true;
          for (std::string_view c : utf8Chars(t)) {
            auto it = byteLevel().charToByte.find(codepoint(c));
            if (it == byteLevel().charToByte.end()) {
              ok = false;
              break;
            }
            mapped += static_cast<char>(it->second);
          }
          bytes += ok ? mapped : t;
        }
        tokens = {lossyUtf8(bytes)};
        fused = true;
        break;
      }
      case DecoderStep::Replace:
        for (auto& t : tokens) {
          if (!step.regex) {
            t = replaceAll(t, step.from, step.to);
            continue;
          }
          t = step.regex->replaceAll(t, step.to);
        }
        break;
      case DecoderStep::ByteFallback: {
        std::vector<std::string> next;
        std::string pending;
        const auto flush = [&] {
          if (pending.empty()) return;
          if (firstInvalidUtf8(pending) == std::string_view::npos) next.push_back(pending);
          else
            for (std::size_t i = 0; i < pending.size(); ++i) next.emplace_back(kReplacementChar);
          pending.clear();
        };
        for (auto& t : tokens) {
          if (isByteToken(t)) {
            pending += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
          } else {
            flush();
            next.push_back(std::move(t));
          }
        }
        flush();
        tokens = std::move(next);
        break;
      }
      case DecoderStep::Fuse: {
        std::string all;
        for (auto& t : tokens) all += t;
        tokens = {std::move(all)};
        fused = true;
        break;
      }
      case DecoderStep::Strip:
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          if (fused && continuation) break;  // the fused text does not begin the output
          auto chars = utf8Chars(tokens[i]);
          std::size_t cut = 0;
          while (cut < step.start && cut < chars.size() && chars[cut] == step.content) ++cut;
          std::string out;
          for (std::size_t k = cut; k < chars.size(); ++k) out += chars[k];
          tokens[i] = std::move(out);
        }
        break;
      case DecoderStep::Metaspace:
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          const bool first = i == 0 && !continuation && !fused;
          tokens[i] = replaceAll(tokens[i], step.from, first && step.prependFirst ? "" : " ");
        }
        break;
    }
  }
  std::string out;
  for (auto& t : tokens) out += t;
  return out;
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::fromFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open the tokenizer file");
  std::ostringstream text;
  text << in.rdbuf();
  return fromJson(text.str(), path.string());
}

namespace {

void loadPostProcessor(const Loader& L, const json& j, const std::string& path, Tokenizer::Impl& t) {
  if (j.is_null()) return;
  const std::string type = L.type(j, path);
  if (type == "Sequence") {
    const json& list = L.field(j, path, "processors");
    if (!list.is_array()) L.bad(path + ".processors", "is not an array");
    for (std::size_t i = 0; i < list.size(); ++i)
      loadPostProcessor(L, list[i], path + ".processors[" + std::to_string(i) + "]", t);
  } else if (type == "ByteLevel") {
    // Offsets only; the ids are unchanged.
  } else if (type == "TemplateProcessing") {
    if (t.hasTemplate) L.bad(path, "is a second template post-processor");
    t.hasTemplate = true;
    const json& specials = L.field(j, path, "special_tokens");
    const json& single = L.field(j, path, "single");
    if (!single.is_array()) L.bad(path + ".single", "is not an array");
    for (std::size_t i = 0; i < single.size(); ++i) {
      const std::string at = path + ".single[" + std::to_string(i) + "]";
      if (single[i].contains("Sequence")) {
        if (L.stringField(single[i]["Sequence"], at + ".Sequence", "id") != "A") L.bad(at, "is not sequence A");
        t.templateSingle.emplace_back();
      } else if (single[i].contains("SpecialToken")) {
        const std::string name = L.stringField(single[i]["SpecialToken"], at + ".SpecialToken", "id");
        const std::string sp = path + ".special_tokens";
        if (!specials.contains(name)) L.bad(sp, "has no '" + name + "'");
        const json& ids = L.field(specials[name], sp + "." + name, "ids");
        std::vector<int32_t> piece;
        for (std::size_t k = 0; k < ids.size(); ++k) piece.push_back(L.id(ids[k], sp + "." + name + ".ids"));
        if (piece.empty()) L.bad(sp + "." + name + ".ids", "is empty");
        t.templateSingle.push_back(std::move(piece));
      } else {
        L.bad(at, "is neither a Sequence nor a SpecialToken");
      }
    }
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    if (t.hasTemplate) L.bad(path, "is a second template post-processor");
    t.hasTemplate = true;
    const json& cls = L.field(j, path, "cls");
    const json& sep = L.field(j, path, "sep");
    if (!cls.is_array() || cls.size() != 2) L.bad(path + ".cls", "is not [token, id]");
    if (!sep.is_array() || sep.size() != 2) L.bad(path + ".sep", "is not [token, id]");
    t.templateSingle = {{L.id(cls[1], path + ".cls[1]")}, {}, {L.id(sep[1], path + ".sep[1]")}};
  } else {
    L.unsupported(path, type);
  }
}

}  // namespace

Tokenizer Tokenizer::fromJson(std::string_view jsonText, const std::string& sourceName) {
  Loader L{sourceName};
  json root;
  try {
    root = json::parse(jsonText);
  } catch (const json::parse_error& e) {
    fail(sourceName, ": malformed JSON: ", e.what());
  }
  if (!root.is_object()) fail(sourceName, ": the top level is not a JSON object");
  auto impl = std::make_unique<Impl>();
  Impl& t = *impl;
  t.source = sourceName;
  t.byteTokens.fill(-1);

  // Model.
  const json& model = L.field(root, "", "model");
  const std::string modelType = model.contains("type") ? L.type(model, "model")
                                : model.contains("merges") ? "BPE"
                                                           : "";
  if (modelType != "BPE" && modelType != "WordLevel")
    L.bad("model.type", "'" + modelType + "' is not supported (BPE and WordLevel are)");
  t.wordLevel = modelType == "WordLevel";
  const json& vocab = L.field(model, "model", "vocab");
  if (!vocab.is_object()) L.bad("model.vocab", "is not an object");
  int32_t maxId = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int32_t id = L.id(it.value(), "model.vocab['" + it.key() + "']");
    t.vocab[it.key()] = id;
    maxId = std::max(maxId, id);
  }
  t.idToToken.assign(maxId + 1, {});
  t.hasToken.assign(maxId + 1, false);
  for (auto& [token, id] : t.vocab) {
    t.idToToken[id] = token;
    t.hasToken[id] = true;
  }
  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    const std::string unk = L.stringField(model, "model", "unk_token");
    auto it = t.vocab.find(unk);
    if (it == t.vocab.end()) L.bad("model.unk_token", "'" + unk + "' is not in model.vocab");
    t.unk = it->second;
  }
  if (!t.wordLevel) {
    if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
      L.bad("model.dropout", "is not supported (it makes encoding random)");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(key) && !model[key].is_null() && !L.string(model[key], std::string("model.") + key).empty())
        L.bad(std::string("model.") + key, "is not supported");
    t.byteFallback = L.boolOr(model, "model", "byte_fallback", false);
    t.fuseUnk = L.boolOr(model, "model", "fuse_unk", false);
    t.ignoreMerges = L.boolOr(model, "model", "ignore_merges", false);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      if (auto it = t.vocab.find(name); it != t.vocab.end()) t.byteTokens[b] = it->second;
    }
    const json& merges = L.field(model, "model", "merges");
    if (!merges.is_array()) L.bad("model.merges", "is not an array");
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
      const std::string at = "model.merges[" + std::to_string(rank) + "]";
      const json& m = merges[rank];
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const std::size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          L.bad(at, "'" + s + "' is not two tokens separated by one space");
        a = s.substr(0, space);
        b = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2) {
        a = L.string(m[0], at + "[0]");
        b = L.string(m[1], at + "[1]");
      } else {
        L.bad(at, "is neither \"a b\" nor [a, b]");
      }
      for (const auto* part : {&a, &b})
        if (!t.vocab.count(*part)) L.bad(at, "uses '" + *part + "', which is not in model.vocab");
      auto merged = t.vocab.find(a + b);
      if (merged == t.vocab.end()) L.bad(at, "makes '" + a + b + "', which is not in model.vocab");
      t.merges.emplace(a + '\0' + b, std::make_pair(static_cast<int32_t>(rank), merged->second));
    }
  }

  // Added tokens.
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    const json& list = root["added_tokens"];
    if (!list.is_array()) L.bad("added_tokens", "is not an array");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string at = "added_tokens[" + std::to_string(i) + "]";
      AddedToken token{L.stringField(list[i], at, "content"), L.id(L.field(list[i], at, "id"), at + ".id"),
                       L.boolOr(list[i], at, "special", false), L.boolOr(list[i], at, "normalized", false)};
      for (const char* key : {"single_word", "lstrip", "rstrip"})
        if (L.boolOr(list[i], at, key, false)) L.bad(at + "." + key, "= true is not supported");
      t.addedByContent[token.content] = token.id;
      t.addedById[token.id] = token.content;
      if (token.special) t.specialIds.insert(token.id);
      t.added.push_back(std::move(token));
    }
    std::stable_sort(t.added.begin(), t.added.end(),
                     [](const AddedToken& x, const AddedToken& y) { return x.content.size() > y.content.size(); });
    for (auto& [id, content] : t.addedById) {
      if (static_cast<std::size_t>(id) >= t.idToToken.size()) {
        t.idToToken.resize(id + 1);
        t.hasToken.resize(id + 1, false);
      }
    }
  }

  // Pipeline.
  if (root.contains("normalizer")) loadNormalizer(L, root["normalizer"], "normalizer", t.normalizer);
  if (root.contains("pre_tokenizer")) loadPreTokenizer(L, root["pre_tokenizer"], "pre_tokenizer", t.preTokenizer);
  if (root.contains("post_processor")) loadPostProcessor(L, root["post_processor"], "post_processor", t);
  if (root.contains("decoder") && !root["decoder"].is_null()) {
    t.hasDecoder = true;
    loadDecoder(L, root["decoder"], "decoder", t.decoder);
    for (const auto& step : t.decoder) t.decoderHasByteFallback |= step.kind == DecoderStep::ByteFallback;
  }
  // Normalized added tokens are matched in normalized text, as their normalized form, and (as in
  // `tokenizers`) decode and idToToken give that form; tokenToId takes the original content.
  for (auto& token : t.added) {
    if (!token.normalized) continue;
    token.content = t.normalize(token.content);
    t.addedById[token.id] = token.content;
  }
  std::stable_sort(t.added.begin(), t.added.end(),
                   [](const AddedToken& x, const AddedToken& y) { return x.content.size() > y.content.size(); });
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool addSpecialTokens) const {
  const Impl& t = *impl_;
  if (std::size_t bad = firstInvalidUtf8(text); bad != std::string_view::npos)
    fail(t.source, ": encode: the text is not valid UTF-8 at byte ", bad);
  std::vector<int32_t> ids;
  std::size_t offset = 0;
  for (auto& [addedId, piece] : t.splitAdded(std::string(text), false)) {
    const bool atStart = offset == 0;
    offset += piece.size();
    if (addedId) {
      ids.push_back(*addedId);
      continue;
    }
    const std::string normalized = t.normalize(piece);
    bool first = atStart;
    for (auto& [id2, sub] : t.splitAdded(normalized, true)) {
      if (id2) {
        ids.push_back(*id2);
        first = false;
        continue;
      }
      for (const Piece& word : t.preTokenize({Piece{sub, first}})) t.bpeWord(word.text, ids);
      first = false;
    }
  }
  if (!addSpecialTokens || !t.hasTemplate) return ids;
  std::vector<int32_t> out;
  for (const auto& item : t.templateSingle) {
    if (item.empty()) out.insert(out.end(), ids.begin(), ids.end());
    else out.insert(out.end(), item.begin(), item.end());
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skipSpecialTokens) const {
  return impl_->decodeTokens(impl_->tokensFor(ids, skipSpecialTokens), false);
}

std::optional<int32_t> Tokenizer::tokenToId(std::string_view token) const {
  if (auto it = impl_->addedByContent.find(std::string(token)); it != impl_->addedByContent.end()) return it->second;
  if (auto it = impl_->vocab.find(std::string(token)); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

std::string_view Tokenizer::idToToken(int32_t id) const {
  if (auto it = impl_->addedById.find(id); it != impl_->addedById.end()) return it->second;
  if (id >= 0 && static_cast<std::size_t>(id) < impl_->idToToken.size() && impl_->hasToken[id])
    return impl_->idToToken[id];
  fail(impl_->source, ": id ", id, " is not in the vocabulary");
}

std::size_t Tokenizer::vocabSize() const { return impl_->idToToken.size(); }

bool Tokenizer::isSpecial(int32_t id) const { return impl_->specialIds.count(id) > 0; }

}  // namespace pagedc
