// Jinja values: construction from JSON, Python's str/repr/==/<, and json.dumps.
#include "runtime/chat/JinjaValue.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "runtime/chat/JinjaText.h"

namespace pagedc::jinja {

const Value* DictObject::find(const Value& key) const {
  for (const auto& [k, v] : entries)
    if (equals(k, key)) return &v;
  return nullptr;
}

const Value* DictObject::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k.isString() && k.asString() == key) return &v;
  return nullptr;
}

void DictObject::set(Value key, Value value) {
  for (auto& [k, v] : entries) {
    if (equals(k, key)) {
      v = std::move(value);
      return;
    }
  }
  entries.emplace_back(std::move(key), std::move(value));
}

Value Value::list(std::vector<Value> items) {
  auto l = std::make_shared<ListObject>();
  l->items = std::move(items);
  return Value(std::move(l));
}

Value Value::tuple(std::vector<Value> items) {
  auto l = std::make_shared<ListObject>();
  l->items = std::move(items);
  l->tuple = true;
  return Value(std::move(l));
}

Value Value::dict() { return Value(std::make_shared<DictObject>()); }

Value Value::namespaceObject() {
  auto d = std::make_shared<DictObject>();
  d->isNamespace = true;
  return Value(std::move(d));
}

Value Value::function(std::string name, std::function<Value(Interpreter&, CallArgs&)> call) {
  return Value(CallablePtr(std::make_shared<const Callable>(Callable{std::move(name), std::move(call)})));
}

Value Value::fromJson(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value(None{});
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<double>(u));
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(fromJson(e));
      return list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<DictObject>();
      d->entries.reserve(j.size());
      for (const auto& [k, v] : j.items()) d->entries.emplace_back(Value(k), fromJson(v));
      return Value(std::move(d));
    }
    default: return Value(None{});
  }
}

int64_t Value::asInt() const {
  if (isBool()) return asBool() ? 1 : 0;
  return std::get<int64_t>(v_);
}

double Value::asDouble() const {
  if (isFloat()) return std::get<double>(v_);
  return static_cast<double>(asInt());
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::Undefined:
    case Kind::None: return false;
    case Kind::Bool: return asBool();
    case Kind::Int: return asInt() != 0;
    case Kind::Float: return asDouble() != 0.0;
    case Kind::String: return !asString().empty();
    case Kind::List: return !items().empty();
    case Kind::Dict: return dictObject()->isNamespace || !dictObject()->entries.empty();
    case Kind::Callable: return true;
  }
  return false;
}

std::string formatPythonFloat(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  // sci is "[-]d[.ddd]e[+-]XX": split into digits and exponent.
  bool negative = sci[0] == '-';
  std::size_t ePos = sci.find('e');
  std::string mantissa = sci.substr(negative ? 1 : 0, ePos - (negative ? 1 : 0));
  int exponent = std::stoi(sci.substr(ePos + 1));
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits.push_back(c);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = negative ? "-" : "";
  if (exponent >= -5 + 1 && exponent < 16) {
    if (exponent >= 0) {
      std::string intPart = digits.substr(0, std::min<std::size_t>(digits.size(), static_cast<std::size_t>(exponent) + 1));
      while (intPart.size() < static_cast<std::size_t>(exponent) + 1) intPart.push_back('0');
      std::string frac = digits.size() > static_cast<std::size_t>(exponent) + 1 ? digits.substr(static_cast<std::size_t>(exponent) + 1) : "0";
      out += intPart;
      out += '.';
      out += frac;
    } else {
      out += "0.";
      out.append(static_cast<std::size_t>(-exponent - 1), '0');
      out += digits;
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) {
    out += '.';
    out.append(digits, 1, std::string::npos);
  }
  char expBuf[16];
  std::snprintf(expBuf, sizeof expBuf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + expBuf;
}

std::string pythonStringRepr(std::string_view s) {
  bool hasSingle = s.find('\'') != std::string_view::npos;
  bool hasDouble = s.find('"') != std::string_view::npos;
  char quote = hasSingle && !hasDouble ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : text::decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      out += buf;
    } else if ((c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F) ||
               c == 0x3000 || c == 0xFEFF || c == 0x1680 || (c >= 0xD800 && c <= 0xDFFF)) {
      char buf[12];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      text::appendUtf8(out, c);
    }
  }
  out.push_back(quote);
  return out;
}

std::string Value::str() const {
  switch (kind()) {
    case Kind::Undefined: return "";
    case Kind::String: return asString();
    default: return repr();
  }
}

std::string Value::repr() const {
  switch (kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "None";
    case Kind::Bool: return asBool() ? "True" : "False";
    case Kind::Int: return std::to_string(asInt());
    case Kind::Float: return formatPythonFloat(asDouble());
    case Kind::String: return pythonStringRepr(asString());
    case Kind::List: {
      const auto& l = *listObject();
      std::string out = l.tuple ? "(" : "[";
      for (std::size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += ", ";
        out += l.items[i].repr();
      }
      if (l.tuple && l.items.size() == 1) out += ",";
      out += l.tuple ? ")" : "]";
      return out;
    }
    case Kind::Dict: {
      const auto& d = *dictObject();
      std::string out = d.isNamespace ? "<Namespace {" : "{";
      for (std::size_t i = 0; i < d.entries.size(); ++i) {
        if (i) out += ", ";
        out += d.entries[i].first.repr() + ": " + d.entries[i].second.repr();
      }
      out += d.isNamespace ? "}>" : "}";
      return out;
    }
    case Kind::Callable: return "<function " + callable().name + ">";
  }
  return "";
}

std::string Value::typeName() const {
  switch (kind()) {
    case Kind::Undefined: return "Undefined";
    case Kind::None: return "NoneType";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::List: return isTuple() ? "tuple" : "list";
    case Kind::Dict: return isNamespace() ? "Namespace" : "dict";
    case Kind::Callable: return "function";
  }
  return "object";
}

bool equals(const Value& a, const Value& b) {
  if (a.isNumber() && b.isNumber()) {
    if (a.isFloat() || b.isFloat()) return a.asDouble() == b.asDouble();
    return a.asInt() == b.asInt();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None: return true;
    case Value::Kind::String: return a.asString() == b.asString();
    case Value::Kind::List: {
      if (a.isTuple() != b.isTuple()) return false;
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!equals(x[i], y[i])) return false;
      return true;
    }
    case Value::Kind::Dict: {
      if (a.isNamespace() || b.isNamespace()) return a.dictObject() == b.dictObject();
      const auto& x = a.dictObject()->entries;
      if (x.size() != b.dictObject()->entries.size()) return false;
      for (const auto& [k, v] : x) {
        const Value* other = b.dictObject()->find(k);
        if (!other || !equals(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::Callable: return &a.callable() == &b.callable();
    default: return false;
  }
}

bool lessThan(const Value& a, const Value& b) {
  if (a.isNumber() && b.isNumber()) {
    if (a.isFloat() || b.isFloat()) return a.asDouble() < b.asDouble();
    return a.asInt() < b.asInt();
  }
  if (a.isString() && b.isString()) return a.asString() < b.asString();  // UTF-8 order is code point order
  if (a.isList() && b.isList() && a.isTuple() == b.isTuple()) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i])) return lessThan(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  throw TemplateError("'<' not supported between instances of '" + a.typeName() + "' and '" + b.typeName() + "'");
}

namespace {

void dumpString(std::string& out, std::string_view s, bool ensureAscii) {
  out.push_back('"');
  for (char32_t c : text::decode(s)) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        char buf[16];
        if (c < 0x20 || (ensureAscii && c >= 0x7F)) {
          if (c >= 0x10000) {
            char32_t v = c - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                          static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          }
          out += buf;
        } else {
          text::appendUtf8(out, c);
        }
      }
    }
  }
  out.push_back('"');
}

void dumpValue(std::string& out, const Value& v, const JsonDumpOptions& o, int depth) {
  auto newline = [&](int level) {
    out.push_back('\n');
    for (int i = 0; i < level; ++i) out += o.indent;
  };
  switch (v.kind()) {
    case Value::Kind::None: out += "null"; return;
    case Value::Kind::Bool: out += v.asBool() ? "true" : "false"; return;
    case Value::Kind::Int: out += std::to_string(v.asInt()); return;
    case Value::Kind::Float: {
      double d = v.asDouble();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d < 0 ? "-Infinity" : "Infinity";
      else out += formatPythonFloat(d);
      return;
    }
    case Value::Kind::String: dumpString(out, v.asString(), o.ensureAscii); return;
    case Value::Kind::List: {
      const auto& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += o.itemSeparator;
        if (o.hasIndent) newline(depth + 1);
        dumpValue(out, items[i], o, depth + 1);
      }
      if (o.hasIndent) newline(depth);
      out.push_back(']');
      return;
    }
    case Value::Kind::Dict: {
      if (v.isNamespace()) throw TemplateError("Object of type Namespace is not JSON serializable");
      std::vector<const std::pair<Value, Value>*> entries;
      for (const auto& e : v.dictObject()->entries) entries.push_back(&e);
      if (o.sortKeys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto* a, const auto* b) { return lessThan(a->first, b->first); });
      }
      if (entries.empty()) {
        out += "{}";
        return;
      }
      out.push_back('{');
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i) out += o.itemSeparator;
        if (o.hasIndent) newline(depth + 1);
        const Value& key = entries[i]->first;
        if (key.isString()) dumpString(out, key.asString(), o.ensureAscii);
        else if (key.isNone()) out += "\"null\"";
        else if (key.isBool()) out += key.asBool() ? "\"true\"" : "\"false\"";
        else if (key.isInt() || key.isFloat()) dumpString(out, key.str(), o.ensureAscii);
        else throw TemplateError("keys must be str, int, float, bool or None, not " + key.typeName());
        out += o.keySeparator;
        dumpValue(out, entries[i]->second, o, depth + 1);
      }
      if (o.hasIndent) newline(depth);
      out.push_back('}');
      return;
    }
    case Value::Kind::Undefined: throw TemplateError("Object of type Undefined is not JSON serializable");
    case Value::Kind::Callable: throw TemplateError("Object of type function is not JSON serializable");
  }
}

}  // namespace

std::string dumpJson(const Value& v, const JsonDumpOptions& options) {
  std::string out;
  dumpValue(out, v, options, 0);
  return out;
}

}  // namespace pagedc::jinja
