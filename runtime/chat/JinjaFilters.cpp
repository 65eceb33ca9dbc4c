// Jinja2's built-in filters (and transformers' tojson), as Jinja2 3.1 defines them.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "runtime/chat/JinjaBuiltins.h"
#include "runtime/chat/JinjaInterpreter.h"
#include "runtime/chat/JinjaText.h"

namespace pagedc::jinja {

namespace {

// Jinja's attribute getter for attribute="a.b.0" arguments (subscript first, as environment.getitem).
Value attributeOf(Interpreter& in, const Value& item, const std::string& path) {
  Value v = item;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    v = in.getItem(v, digits ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

std::vector<std::string> attributePaths(const Value& attribute) {
  std::vector<std::string> paths;
  if (attribute.isInt()) return {std::to_string(attribute.asInt())};
  std::string s = attribute.str();
  std::size_t start = 0;
  while (true) {
    std::size_t comma = s.find(',', start);
    paths.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return paths;
    start = comma + 1;
  }
}

// The sort/unique/min/max key: the attribute (if any), lower-cased unless case sensitive.
Value sortKey(Interpreter& in, const Value& item, const std::vector<std::string>& paths, bool caseSensitive) {
  auto fold = [&](Value v) {
    if (!caseSensitive && v.isString()) return Value(text::lower(v.asString()));
    return v;
  };
  if (paths.empty()) return fold(item);
  if (paths.size() == 1) return fold(attributeOf(in, item, paths[0]));
  std::vector<Value> parts;
  for (const auto& p : paths) parts.push_back(fold(attributeOf(in, item, p)));
  return Value::list(std::move(parts));
}

Value filterAbs(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "abs", {});
  if (v.isFloat()) return Value(std::fabs(v.asDouble()));
  if (v.isInt() || v.isBool()) return Value(static_cast<int64_t>(std::llabs(v.asInt())));
  if (v.isUndefined()) failUndefined(v);
  throw TemplateError("bad operand type for abs(): '" + v.typeName() + "'");
}

Value filterAttr(Interpreter& in, const Value& v, CallArgs& args) {
  ArgReader a(args, "attr", {"name"});
  return in.getAttr(v, a.get(0, Value("")).str());
}

Value filterBatch(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "batch", {"linecount", "fill_with"});
  int64_t n = toInt(a.get(0, Value(1)), "batch linecount");
  if (n <= 0) throw TemplateError("batch linecount must be positive");
  const Value* fill = a.get(1);
  std::vector<Value> out, current;
  for (Value& item : iterate(v)) {
    current.push_back(std::move(item));
    if (static_cast<int64_t>(current.size()) == n) {
      out.push_back(Value::list(std::move(current)));
      current.clear();
    }
  }
  if (!current.empty()) {
    if (fill && !fill->isNone())
      while (static_cast<int64_t>(current.size()) < n) current.push_back(*fill);
    out.push_back(Value::list(std::move(current)));
  }
  return Value::list(std::move(out));
}

Value filterCapitalize(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "capitalize", {});
  return Value(text::capitalize(v.str()));
}

Value filterCenter(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "center", {"width"});
  int64_t width = toInt(a.get(0, Value(80)), "center width");
  std::string s = v.str();
  auto len = static_cast<int64_t>(text::length(s));
  if (width <= len) return Value(s);
  int64_t marg = width - len;
  int64_t left = marg / 2 + (marg & width & 1);
  return Value(std::string(static_cast<std::size_t>(left), ' ') + s + std::string(static_cast<std::size_t>(marg - left), ' '));
}

Value filterDefault(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "default", {"default_value", "boolean"});
  bool boolean = a.get(1, Value(false)).truthy();
  if (v.isUndefined() || (boolean && !v.truthy())) return a.get(0, Value(""));
  return v;
}

Value filterDictsort(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "dictsort", {"case_sensitive", "by", "reverse"});
  bool caseSensitive = a.get(0, Value(false)).truthy();
  std::string by = a.get(1, Value("key")).str();
  bool reverse = a.get(2, Value(false)).truthy();
  if (!v.isDict() || v.isNamespace()) throw TemplateError("You can only sort by either \"key\" or \"value\"");
  if (by != "key" && by != "value") throw TemplateError("You can only sort by either \"key\" or \"value\"");
  std::vector<std::pair<Value, Value>> entries = v.dictObject()->entries;
  std::size_t idx = by == "key" ? 0 : 1;
  auto key = [&](const std::pair<Value, Value>& e) {
    const Value& k = idx == 0 ? e.first : e.second;
    return !caseSensitive && k.isString() ? Value(text::lower(k.asString())) : k;
  };
  std::stable_sort(entries.begin(), entries.end(), [&](const auto& x, const auto& y) {
    return reverse ? lessThan(key(y), key(x)) : lessThan(key(x), key(y));
  });
  std::vector<Value> out;
  for (auto& [k, val] : entries) out.push_back(Value::tuple({k, val}));
  return Value::list(std::move(out));
}

Value filterEscape(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "escape", {});
  std::string out;
  for (char c : v.str()) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return Value(std::move(out));
}

Value filterFirst(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "first", {});
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No first item, sequence was empty.");
  return items.front();
}

Value filterLast(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "last", {});
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

bool parsePythonFloat(std::string s, double& out) {
  s = text::strip(s, nullptr, true, true);
  std::string cleaned;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
        std::isdigit(static_cast<unsigned char>(s[i + 1])))
      continue;
    cleaned.push_back(s[i]);
  }
  if (cleaned.empty()) return false;
  std::string lower = text::lower(cleaned);
  std::string body = lower[0] == '+' || lower[0] == '-' ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    out = body == "nan" ? NAN : (lower[0] == '-' ? -INFINITY : INFINITY);
    return true;
  }
  for (char c : body)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' || c == '-')) return false;
  char* end = nullptr;
  out = std::strtod(cleaned.c_str(), &end);
  return end && *end == '\0';
}

bool parsePythonInt(std::string s, int64_t base, int64_t& out) {
  s = text::strip(s, nullptr, true, true);
  std::string cleaned;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && std::isalnum(static_cast<unsigned char>(s[i - 1])) &&
        std::isalnum(static_cast<unsigned char>(s[i + 1])))
      continue;
    cleaned.push_back(s[i]);
  }
  if (cleaned.empty()) return false;
  std::size_t i = cleaned[0] == '+' || cleaned[0] == '-' ? 1 : 0;
  if (i == cleaned.size()) return false;
  for (std::size_t k = i; k < cleaned.size(); ++k)
    if (!std::isalnum(static_cast<unsigned char>(cleaned[k]))) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(cleaned.c_str(), &end, static_cast<int>(base));
  if (!end || *end != '\0' || errno == ERANGE) return false;
  out = v;
  return true;
}

Value filterInt(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "int", {"default", "base"});
  Value fallback = a.get(0, Value(0));
  int64_t base = toInt(a.get(1, Value(10)), "int base");
  if (v.isInt() || v.isBool()) return Value(v.asInt());
  if (v.isFloat()) {
    double d = v.asDouble();
    if (std::isnan(d) || std::isinf(d)) return fallback;
    return Value(static_cast<int64_t>(std::trunc(d)));
  }
  if (v.isString()) {
    int64_t i;
    if (parsePythonInt(v.asString(), base, i)) return Value(i);
    double d;
    if (parsePythonFloat(v.asString(), d) && std::isfinite(d)) return Value(static_cast<int64_t>(std::trunc(d)));
  }
  return fallback;
}

Value filterFloat(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "float", {"default"});
  Value fallback = a.get(0, Value(0.0));
  if (v.isNumber()) return Value(v.asDouble());
  double d;
  if (v.isString() && parsePythonFloat(v.asString(), d)) return Value(d);
  return fallback;
}

Value filterFormat(Interpreter&, const Value& v, CallArgs& args) {
  if (!args.keyword.empty() && !args.positional.empty())
    throw TemplateError("can't handle positional and keyword arguments at the same time");
  if (!args.keyword.empty()) throw TemplateError("format with keyword arguments is not supported");
  return Value(percentFormat(v.str(), args.positional));
}

Value filterIndent(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "indent", {"width", "first", "blank"});
  Value width = a.get(0, Value(4));
  std::string indention = width.isString() ? width.asString() : std::string(static_cast<std::size_t>(std::max<int64_t>(0, toInt(width, "indent width"))), ' ');
  bool first = a.get(1, Value(false)).truthy();
  bool blank = a.get(2, Value(false)).truthy();
  std::vector<std::string> lines = text::splitlines(v.str() + "\n", false);
  std::string rv;
  if (blank) {
    for (std::size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : std::string()) + lines[i];
  } else {
    rv = lines.empty() ? std::string() : lines[0];
    if (lines.size() > 1) {
      rv += "\n";
      for (std::size_t i = 1; i < lines.size(); ++i) {
        if (i > 1) rv += "\n";
        rv += lines[i].empty() ? lines[i] : indention + lines[i];
      }
    }
  }
  if (first) rv = indention + rv;
  return Value(std::move(rv));
}

Value filterItems(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "items", {});
  if (v.isUndefined()) return Value::list();
  if (!v.isDict() || v.isNamespace()) throw TemplateError("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, val] : v.dictObject()->entries) out.push_back(Value::tuple({k, val}));
  return Value::list(std::move(out));
}

Value filterJoin(Interpreter& in, const Value& v, CallArgs& args) {
  ArgReader a(args, "join", {"d", "attribute"});
  std::string sep = a.get(0, Value("")).str();
  const Value* attribute = a.get(1);
  std::string out;
  bool firstItem = true;
  for (const Value& item : iterate(v)) {
    if (!firstItem) out += sep;
    firstItem = false;
    out += (attribute && !attribute->isNone() ? attributeOf(in, item, attribute->str()) : item).str();
  }
  return Value(std::move(out));
}

Value filterLength(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "length", {});
  return Value(static_cast<int64_t>(lengthOf(v)));
}

Value filterList(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "list", {});
  return Value::list(iterate(v));
}

Value filterLower(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "lower", {});
  return Value(text::lower(v.str()));
}

Value filterUpper(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "upper", {});
  return Value(text::upper(v.str()));
}

Value filterMap(Interpreter& in, const Value& v, CallArgs& args) {
  std::vector<Value> out;
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, val] : args.keyword) {
    if (k == "attribute") attribute = &val;
    else if (k == "default") fallback = &val;
  }
  if (attribute) {
    if (!args.positional.empty()) throw TemplateError("map(attribute=...) takes no positional arguments");
    for (const Value& item : iterate(v)) {
      Value r = attributeOf(in, item, attribute->str());
      out.push_back(r.isUndefined() && fallback ? *fallback : r);
    }
    return Value::list(std::move(out));
  }
  if (args.positional.empty()) throw TemplateError("map requires a filter argument");
  std::string name = args.positional[0].str();
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : iterate(v)) {
    CallArgs copy = rest;
    out.push_back(in.applyFilter(name, item, copy));
  }
  return Value::list(std::move(out));
}

// select / reject / selectattr / rejectattr.
Value selectOrReject(Interpreter& in, const Value& v, CallArgs& args, bool byAttribute, bool keepWhen) {
  std::size_t next = 0;
  std::string attribute;
  if (byAttribute) {
    if (args.positional.empty()) throw TemplateError("selectattr/rejectattr need an attribute name");
    attribute = args.positional[next++].str();
  }
  std::string test;
  if (next < args.positional.size()) test = args.positional[next++].str();
  CallArgs testArgs;
  testArgs.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next), args.positional.end());
  testArgs.keyword = args.keyword;
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    Value subject = byAttribute ? attributeOf(in, item, attribute) : item;
    bool passed;
    if (test.empty()) {
      passed = subject.truthy();
    } else {
      CallArgs copy = testArgs;
      passed = in.applyTest(test, subject, copy);
    }
    if (passed == keepWhen) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value filterSelect(Interpreter& in, const Value& v, CallArgs& args) { return selectOrReject(in, v, args, false, true); }
Value filterReject(Interpreter& in, const Value& v, CallArgs& args) { return selectOrReject(in, v, args, false, false); }
Value filterSelectattr(Interpreter& in, const Value& v, CallArgs& args) { return selectOrReject(in, v, args, true, true); }
Value filterRejectattr(Interpreter& in, const Value& v, CallArgs& args) { return selectOrReject(in, v, args, true, false); }

Value minOrMax(Interpreter& in, const Value& v, CallArgs& args, bool wantMax) {
  ArgReader a(args, wantMax ? "max" : "min", {"case_sensitive", "attribute"});
  bool caseSensitive = a.get(0, Value(false)).truthy();
  const Value* attribute = a.get(1);
  std::vector<std::string> paths = attribute && !attribute->isNone() ? attributePaths(*attribute) : std::vector<std::string>{};
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
  std::size_t best = 0;
  Value bestKey = sortKey(in, items[0], paths, caseSensitive);
  for (std::size_t i = 1; i < items.size(); ++i) {
    Value k = sortKey(in, items[i], paths, caseSensitive);
    if (wantMax ? lessThan(bestKey, k) : lessThan(k, bestKey)) {
      best = i;
      bestKey = k;
    }
  }
  return items[best];
}

Value filterMax(Interpreter& in, const Value& v, CallArgs& args) { return minOrMax(in, v, args, true); }
Value filterMin(Interpreter& in, const Value& v, CallArgs& args) { return minOrMax(in, v, args, false); }

Value filterReplace(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "replace", {"old", "new", "count"});
  const Value* count = a.get(2);
  long n = count && !count->isNone() ? static_cast<long>(toInt(*count, "replace count")) : -1;
  return Value(text::replace(v.str(), a.get(0, Value("")).str(), a.get(1, Value("")).str(), n));
}

Value filterReverse(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "reverse", {});
  if (v.isString()) {
    std::u32string cps = text::decode(v.asString());
    std::reverse(cps.begin(), cps.end());
    return Value(text::encode(cps));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

double pythonRound(double x, int64_t digits) {
  if (!std::isfinite(x)) return x;
  if (digits >= 0 && digits <= 300) {
    // printf rounds the exact binary value half-to-even, as Python's round() does.
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(digits), x);
    return std::strtod(buf, nullptr);
  }
  double scale = std::pow(10.0, static_cast<double>(-digits));
  return std::nearbyint(x / scale) * scale;
}

Value filterRound(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "round", {"precision", "method"});
  int64_t precision = toInt(a.get(0, Value(0)), "round precision");
  std::string method = a.get(1, Value("common")).str();
  if (method != "common" && method != "ceil" && method != "floor")
    throw TemplateError("method must be 'common', 'ceil' or 'floor'");
  if (!v.isNumber()) throw TemplateError("type " + v.typeName() + " doesn't define __round__ method");
  if (method == "common") {
    if (!v.isFloat()) return Value(v.asInt());
    return Value(pythonRound(v.asDouble(), precision));
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.asDouble() * scale;
  return Value((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value filterSafe(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "safe", {});
  return v.isString() ? v : Value(v.str());
}

Value filterSort(Interpreter& in, const Value& v, CallArgs& args) {
  ArgReader a(args, "sort", {"reverse", "case_sensitive", "attribute"});
  bool reverse = a.get(0, Value(false)).truthy();
  bool caseSensitive = a.get(1, Value(false)).truthy();
  const Value* attribute = a.get(2);
  std::vector<std::string> paths = attribute && !attribute->isNone() ? attributePaths(*attribute) : std::vector<std::string>{};
  std::vector<Value> items = iterate(v);
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& item : items) keyed.emplace_back(sortKey(in, item, paths, caseSensitive), std::move(item));
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? lessThan(y.first, x.first) : lessThan(x.first, y.first);
  });
  std::vector<Value> out;
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return Value::list(std::move(out));
}

Value filterString(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "string", {});
  return Value(v.str());
}

Value filterSum(Interpreter& in, const Value& v, CallArgs& args) {
  ArgReader a(args, "sum", {"attribute", "start"});
  const Value* attribute = a.get(0);
  Value total = a.get(1, Value(0));
  for (const Value& item : iterate(v)) {
    Value x = attribute && !attribute->isNone() ? attributeOf(in, item, attribute->str()) : item;
    if (!total.isNumber() || !x.isNumber()) throw TemplateError("unsupported operand type(s) for +: '" + total.typeName() + "' and '" + x.typeName() + "'");
    total = total.isFloat() || x.isFloat() ? Value(total.asDouble() + x.asDouble()) : Value(total.asInt() + x.asInt());
  }
  return total;
}

Value filterTitle(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "title", {});
  // Jinja's title: words start after runs of whitespace, '-', '(', '{', '[' or '<'.
  std::u32string out;
  bool wordStart = true;
  for (char32_t c : text::decode(v.str())) {
    bool separator = text::isSpace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (separator) {
      out.push_back(c);
      wordStart = true;
      continue;
    }
    out += wordStart ? text::upper(std::u32string_view(&c, 1)) : text::lower(std::u32string_view(&c, 1));
    wordStart = false;
  }
  return Value(text::encode(out));
}

// transformers replaces Jinja's tojson with json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False): no HTML escaping.
Value filterTojson(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions o;
  o.ensureAscii = a.get(0, Value(false)).truthy();
  Value indent = a.get(1, Value(None{}));
  if (indent.isString()) {
    o.hasIndent = true;
    o.indent = indent.asString();
  } else if (indent.isInt()) {
    o.hasIndent = true;
    o.indent = std::string(static_cast<std::size_t>(std::max<int64_t>(0, indent.asInt())), ' ');
  } else if (!indent.isNone()) {
    throw TemplateError("tojson indent must be an int or a string");
  }
  o.itemSeparator = o.hasIndent ? "," : ", ";
  Value separators = a.get(2, Value(None{}));
  if (!separators.isNone()) {
    std::vector<Value> parts = iterate(separators);
    if (parts.size() != 2) throw TemplateError("tojson separators must be an (item, key) pair");
    o.itemSeparator = parts[0].str();
    o.keySeparator = parts[1].str();
  }
  o.sortKeys = a.get(3, Value(false)).truthy();
  return Value(dumpJson(v, o));
}

Value filterTrim(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "trim", {"chars"});
  const Value* chars = a.get(0);
  if (chars && !chars->isNone()) {
    std::u32string set = text::decode(chars->str());
    return Value(text::strip(v.str(), &set, true, true));
  }
  return Value(text::strip(v.str(), nullptr, true, true));
}

Value filterTruncate(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader a(args, "truncate", {"length", "killwords", "end", "leeway"});
  auto length = static_cast<std::size_t>(std::max<int64_t>(0, toInt(a.get(0, Value(255)), "truncate length")));
  bool killwords = a.get(1, Value(false)).truthy();
  std::u32string end = text::decode(a.get(2, Value("...")).str());
  auto leeway = static_cast<std::size_t>(std::max<int64_t>(0, toInt(a.get(3, Value(5)), "truncate leeway")));
  std::u32string s = text::decode(v.str());
  if (length < end.size()) throw TemplateError("expected length >= " + std::to_string(end.size()) + ", got " + std::to_string(length));
  if (s.size() <= length + leeway) return Value(v.str());
  std::u32string cut = s.substr(0, length - end.size());
  if (killwords) return Value(text::encode(cut + end));
  std::size_t sp = cut.rfind(U' ');
  if (sp != std::u32string::npos) cut = cut.substr(0, sp);
  return Value(text::encode(cut + end));
}

Value filterUnique(Interpreter& in, const Value& v, CallArgs& args) {
  ArgReader a(args, "unique", {"case_sensitive", "attribute"});
  bool caseSensitive = a.get(0, Value(false)).truthy();
  const Value* attribute = a.get(1);
  std::vector<std::string> paths = attribute && !attribute->isNone() ? attributePaths(*attribute) : std::vector<std::string>{};
  std::vector<Value> seen, out;
  for (const Value& item : iterate(v)) {
    Value k = sortKey(in, item, paths, caseSensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, k); })) continue;
    seen.push_back(k);
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value filterWordcount(Interpreter&, const Value& v, CallArgs& args) {
  ArgReader(args, "wordcount", {});
  int64_t n = 0;
  bool inWord = false;
  for (char32_t c : text::decode(v.str())) {
    bool word = text::isAlpha(c) || text::isDigit(c) || c == '_';
    if (word && !inWord) ++n;
    inWord = word;
  }
  return Value(n);
}

const std::unordered_map<std::string_view, FilterFn>& filterTable() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"abs", filterAbs},
      {"attr", filterAttr},
      {"batch", filterBatch},
      {"capitalize", filterCapitalize},
      {"center", filterCenter},
      {"count", filterLength},
      {"d", filterDefault},
      {"default", filterDefault},
      {"dictsort", filterDictsort},
      {"e", filterEscape},
      {"escape", filterEscape},
      {"first", filterFirst},
      {"float", filterFloat},
      {"forceescape", filterEscape},
      {"format", filterFormat},
      {"indent", filterIndent},
      {"int", filterInt},
      {"items", filterItems},
      {"join", filterJoin},
      {"last", filterLast},
      {"length", filterLength},
      {"list", filterList},
      {"lower", filterLower},
      {"map", filterMap},
      {"max", filterMax},
      {"min", filterMin},
      {"reject", filterReject},
      {"rejectattr", filterRejectattr},
      {"replace", filterReplace},
      {"reverse", filterReverse},
      {"round", filterRound},
      {"safe", filterSafe},
      {"select", filterSelect},
      {"selectattr", filterSelectattr},
      {"sort", filterSort},
      {"string", filterString},
      {"sum", filterSum},
      {"title", filterTitle},
      {"tojson", filterTojson},
      {"trim", filterTrim},
      {"truncate", filterTruncate},
      {"unique", filterUnique},
      {"upper", filterUpper},
      {"wordcount", filterWordcount},
  };
  return table;
}

}  // namespace

FilterFn findFilter(std::string_view name) {
  const auto& table = filterTable();
  auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

}  // namespace pagedc::jinja
