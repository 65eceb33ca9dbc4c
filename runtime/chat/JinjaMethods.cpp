// The Python methods of str, dict and list that Jinja's immutable sandbox lets templates call.
#include <algorithm>
#include <unordered_set>

#include "runtime/chat/JinjaBuiltins.h"
#include "runtime/chat/JinjaText.h"

namespace pagedc::jinja {

namespace {

const std::string& requireString(const Value& v, std::string_view what) {
  if (!v.isString()) throw TemplateError(std::string(what) + " must be str, not " + v.typeName());
  return v.asString();
}

// Python's (start, end) arguments of find/count/startswith, as code point bounds.
std::pair<std::size_t, std::size_t> bounds(const ArgReader& a, std::size_t first, std::size_t n) {
  auto idx = [&](const Value* v, int64_t fallback) {
    if (!v || v->isNone()) return fallback;
    int64_t i = toInt(*v, "slice index");
    if (i < 0) i = std::max<int64_t>(0, i + static_cast<int64_t>(n));
    return std::min<int64_t>(i, static_cast<int64_t>(n));
  };
  return {static_cast<std::size_t>(idx(a.get(first), 0)), static_cast<std::size_t>(idx(a.get(first + 1), static_cast<int64_t>(n)))};
}

Value listOfStrings(std::vector<std::string> parts) {
  std::vector<Value> out;
  out.reserve(parts.size());
  for (auto& p : parts) out.emplace_back(std::move(p));
  return Value::list(std::move(out));
}

std::string pythonFormat(const std::string& fmt, const CallArgs& args) {
  std::string out;
  std::size_t autoIndex = 0;
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') ++i;
      else throw TemplateError("Single '}' encountered in format string");
      out.push_back('}');
      continue;
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    std::size_t close = fmt.find('}', i);
    if (close == std::string::npos) throw TemplateError("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close;
    std::string conversion;
    if (std::size_t colon = field.find(':'); colon != std::string::npos) {
      if (colon + 1 != field.size()) throw TemplateError("format specs in str.format are not supported");
      field = field.substr(0, colon);
    }
    if (std::size_t bang = field.find('!'); bang != std::string::npos) {
      conversion = field.substr(bang + 1);
      field = field.substr(0, bang);
    }
    const Value* v = nullptr;
    if (field.empty()) {
      if (autoIndex >= args.positional.size()) throw TemplateError("Replacement index " + std::to_string(autoIndex) + " out of range for positional args tuple");
      v = &args.positional[autoIndex++];
    } else if (std::all_of(field.begin(), field.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      std::size_t k = std::stoul(field);
      if (k >= args.positional.size()) throw TemplateError("Replacement index " + field + " out of range for positional args tuple");
      v = &args.positional[k];
    } else {
      for (const auto& [name, value] : args.keyword)
        if (name == field) v = &value;
      if (!v) throw TemplateError("KeyError: '" + field + "'");
    }
    out += conversion == "r" ? v->repr() : v->str();
  }
  return out;
}

Value stringMethod(const Value& self, std::string_view name, CallArgs& args, bool& found) {
  const std::string& s = self.asString();
  found = true;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ArgReader a(args, name, {"chars"});
    const Value* chars = a.get(0);
    bool left = name != "rstrip", right = name != "lstrip";
    if (chars && !chars->isNone()) {
      std::u32string set = text::decode(requireString(*chars, "strip arg"));
      return Value(text::strip(s, &set, left, right));
    }
    return Value(text::strip(s, nullptr, left, right));
  }
  if (name == "split" || name == "rsplit") {
    ArgReader a(args, name, {"sep", "maxsplit"});
    const Value* sep = a.get(0);
    long maxsplit = static_cast<long>(toInt(a.get(1, Value(-1)), "maxsplit"));
    if (sep && !sep->isNone()) {
      const std::string& sepStr = requireString(*sep, "separator");
      if (sepStr.empty()) throw TemplateError("empty separator");
      return listOfStrings(name == "split" ? text::split(s, &sepStr, maxsplit) : text::rsplit(s, &sepStr, maxsplit));
    }
    return listOfStrings(name == "split" ? text::split(s, nullptr, maxsplit) : text::rsplit(s, nullptr, maxsplit));
  }
  if (name == "splitlines") {
    ArgReader a(args, name, {"keepends"});
    return listOfStrings(text::splitlines(s, a.get(0, Value(false)).truthy()));
  }
  if (name == "startswith" || name == "endswith") {
    ArgReader a(args, name, {"prefix", "start", "end"});
    const Value* prefix = a.get(0);
    if (!prefix) throw TemplateError(std::string(name) + "() takes at least 1 argument (0 given)");
    std::u32string cps = text::decode(s);
    auto [b, e] = bounds(a, 1, cps.size());
    std::u32string_view window = b <= e ? std::u32string_view(cps).substr(b, e - b) : std::u32string_view();
    std::vector<Value> candidates = prefix->isTuple() ? prefix->items() : std::vector<Value>{*prefix};
    for (const Value& c : candidates) {
      std::u32string p = text::decode(requireString(c, std::string(name) + " first arg"));
      if (b > e) continue;
      if (name == "startswith" ? window.starts_with(p) : window.ends_with(p)) return Value(true);
    }
    return Value(false);
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" || name == "casefold" || name == "swapcase") {
    ArgReader(args, name, {});
    if (name == "upper") return Value(text::upper(s));
    if (name == "lower" || name == "casefold") return Value(text::lower(s));
    if (name == "title") return Value(text::pythonTitle(s));
    if (name == "capitalize") return Value(text::capitalize(s));
    std::u32string out;
    for (char32_t c : text::decode(s)) {
      std::u32string one(1, c);
      out += text::isUpper(c) ? text::lower(one) : text::isLower(c) ? text::upper(one) : one;
    }
    return Value(text::encode(out));
  }
  if (name == "replace") {
    ArgReader a(args, name, {"old", "new", "count"});
    const Value* from = a.get(0);
    const Value* to = a.get(1);
    if (!from || !to) throw TemplateError("replace() takes at least 2 arguments");
    long count = static_cast<long>(toInt(a.get(2, Value(-1)), "count"));
    return Value(text::replace(s, requireString(*from, "replace arg 1"), requireString(*to, "replace arg 2"), count));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    ArgReader a(args, name, {"sub", "start", "end"});
    const Value* subV = a.get(0);
    if (!subV) throw TemplateError(std::string(name) + "() takes at least 1 argument (0 given)");
    std::u32string sub = text::decode(requireString(*subV, "substring"));
    std::u32string cps = text::decode(s);
    auto [b, e] = bounds(a, 1, cps.size());
    if (name == "count") {
      if (b > e) return Value(0);
      if (sub.empty()) return Value(static_cast<int64_t>(e - b + 1));
      int64_t n = 0;
      for (std::size_t at = cps.find(sub, b); at != std::u32string::npos && at + sub.size() <= e; at = cps.find(sub, at + sub.size())) ++n;
      return Value(n);
    }
    int64_t result = -1;
    if (b <= e) {
      std::u32string_view window = std::u32string_view(cps).substr(b, e - b);
      std::size_t at = (name == "find" || name == "index") ? window.find(sub) : window.rfind(sub);
      if (at != std::u32string_view::npos) result = static_cast<int64_t>(at + b);
    }
    if (result < 0 && (name == "index" || name == "rindex")) throw TemplateError("substring not found");
    return Value(result);
  }
  if (name == "join") {
    ArgReader a(args, name, {"iterable"});
    const Value* it = a.get(0);
    if (!it) throw TemplateError("join() takes exactly one argument (0 given)");
    std::string out;
    std::size_t i = 0;
    for (const Value& item : iterate(*it)) {
      if (!item.isString())
        throw TemplateError("sequence item " + std::to_string(i) + ": expected str instance, " + item.typeName() + " found");
      if (i++) out += s;
      out += item.asString();
    }
    return Value(std::move(out));
  }
  if (name == "format") return Value(pythonFormat(s, args));
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal" || name == "isalpha" || name == "isalnum" ||
      name == "isspace" || name == "islower" || name == "isupper") {
    ArgReader(args, name, {});
    std::u32string cps = text::decode(s);
    if (cps.empty()) return Value(false);
    if (name == "islower" || name == "isupper") {
      bool cased = false;
      for (char32_t c : cps) {
        if (name == "islower" ? text::isUpper(c) : text::isLower(c)) return Value(false);
        cased = cased || (name == "islower" ? text::isLower(c) : text::isUpper(c));
      }
      return Value(cased);
    }
    for (char32_t c : cps) {
      bool ok = name == "isalpha"  ? text::isAlpha(c)
                : name == "isalnum" ? text::isAlpha(c) || text::isDigit(c)
                : name == "isspace" ? text::isSpace(c)
                                    : text::isDigit(c);
      if (!ok) return Value(false);
    }
    return Value(true);
  }
  if (name == "center" || name == "ljust" || name == "rjust" || name == "zfill") {
    ArgReader a(args, name, {"width", "fillchar"});
    int64_t width = toInt(a.get(0, Value(0)), "width");
    std::string fill = name == "zfill" ? "0" : a.get(1, Value(" ")).str();
    auto len = static_cast<int64_t>(text::length(s));
    if (width <= len) return self;
    int64_t marg = width - len;
    auto pad = [&](int64_t n) {
      std::string p;
      for (int64_t i = 0; i < n; ++i) p += fill;
      return p;
    };
    if (name == "ljust") return Value(s + pad(marg));
    if (name == "rjust") return Value(pad(marg) + s);
    if (name == "zfill") {
      if (!s.empty() && (s[0] == '-' || s[0] == '+')) return Value(s.substr(0, 1) + pad(marg) + s.substr(1));
      return Value(pad(marg) + s);
    }
    int64_t left = marg / 2 + (marg & width & 1);
    return Value(pad(left) + s + pad(marg - left));
  }
  if (name == "partition" || name == "rpartition") {
    ArgReader a(args, name, {"sep"});
    Value sepValue = a.get(0, Value(None{}));
    const std::string& sep = requireString(sepValue, "separator");
    if (sep.empty()) throw TemplateError("empty separator");
    std::size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (at == std::string::npos)
      return name == "partition" ? Value::tuple({Value(s), Value(""), Value("")}) : Value::tuple({Value(""), Value(""), Value(s)});
    return Value::tuple({Value(s.substr(0, at)), Value(sep), Value(s.substr(at + sep.size()))});
  }
  if (name == "removeprefix" || name == "removesuffix") {
    ArgReader a(args, name, {"affix"});
    Value affixValue = a.get(0, Value(None{}));
    const std::string& affix = requireString(affixValue, std::string(name) + " arg");
    if (name == "removeprefix") return Value(s.starts_with(affix) ? s.substr(affix.size()) : s);
    return Value(s.ends_with(affix) && !affix.empty() ? s.substr(0, s.size() - affix.size()) : s);
  }
  found = false;
  return Value();
}

Value dictMethod(const Value& self, std::string_view name, CallArgs& args, bool& found) {
  const DictObject& d = *self.dictObject();
  found = true;
  if (name == "items" || name == "keys" || name == "values") {
    ArgReader(args, name, {});
    std::vector<Value> out;
    out.reserve(d.entries.size());
    for (const auto& [k, v] : d.entries) out.push_back(name == "items" ? Value::tuple({k, v}) : name == "keys" ? k : v);
    return Value::list(std::move(out));
  }
  if (name == "get") {
    ArgReader a(args, name, {"key", "default"});
    const Value* key = a.get(0);
    if (!key) throw TemplateError("get expected at least 1 argument, got 0");
    if (const Value* v = d.find(*key)) return *v;
    return a.get(1, Value(None{}));
  }
  if (name == "copy") {
    ArgReader(args, name, {});
    auto copy = std::make_shared<DictObject>(d);
    copy->isNamespace = false;
    return Value(std::move(copy));
  }
  found = false;
  return Value();
}

Value listMethod(const Value& self, std::string_view name, CallArgs& args, bool& found) {
  const auto& items = self.items();
  found = true;
  if (name == "index" || name == "count") {
    ArgReader a(args, name, {"value"});
    const Value* x = a.get(0);
    if (!x) throw TemplateError(std::string(name) + "() takes exactly one argument (0 given)");
    int64_t n = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!equals(items[i], *x)) continue;
      if (name == "index") return Value(static_cast<int64_t>(i));
      ++n;
    }
    if (name == "index") throw TemplateError(x->repr() + " is not in list");
    return Value(n);
  }
  if (name == "copy" && !self.isTuple()) {
    ArgReader(args, name, {});
    return Value::list(items);
  }
  found = false;
  return Value();
}

bool isUnsafe(const Value& self, std::string_view name) {
  static const std::unordered_set<std::string_view> listMutators = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"};
  static const std::unordered_set<std::string_view> dictMutators = {"pop", "popitem", "setdefault", "update", "clear"};
  if (self.isList() && !self.isTuple()) return listMutators.count(name) != 0;
  if (self.isDict() && !self.isNamespace()) return dictMutators.count(name) != 0;
  return false;
}

bool hasMethod(const Value& self, std::string_view name) {
  static const std::unordered_set<std::string_view> str = {
      "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper", "lower",
      "title", "capitalize", "casefold", "swapcase", "replace", "find", "rfind", "index", "rindex", "count", "join",
      "format", "isdigit", "isnumeric", "isdecimal", "isalpha", "isalnum", "isspace", "islower", "isupper",
      "center", "ljust", "rjust", "zfill", "partition", "rpartition", "removeprefix", "removesuffix"};
  static const std::unordered_set<std::string_view> dict = {"items", "keys", "values", "get", "copy"};
  static const std::unordered_set<std::string_view> list = {"index", "count", "copy"};
  if (self.isString()) return str.count(name) != 0;
  if (self.isDict() && !self.isNamespace()) return dict.count(name) != 0;
  if (self.isList()) return list.count(name) != 0 && !(self.isTuple() && name == "copy");
  return false;
}

}  // namespace

Value callMethod(Interpreter&, const Value& self, std::string_view name, CallArgs& args, bool& found) {
  if (isUnsafe(self, name))
    throw TemplateError("access to attribute '" + std::string(name) + "' of '" + self.typeName() + "' object is unsafe.");
  if (self.isString()) return stringMethod(self, name, args, found);
  if (self.isDict() && !self.isNamespace()) return dictMethod(self, name, args, found);
  if (self.isList()) return listMethod(self, name, args, found);
  found = false;
  return Value();
}

Value boundMethod(const Value& self, std::string_view name) {
  if (isUnsafe(self, name))
    throw TemplateError("access to attribute '" + std::string(name) + "' of '" + self.typeName() + "' object is unsafe.");
  if (!hasMethod(self, name)) return Value::undefined("");
  std::string method(name);
  return Value::function(method, [self, method](Interpreter& in, CallArgs& args) {
    bool found = false;
    return callMethod(in, self, method, args, found);
  });
}

}  // namespace pagedc::jinja
