// Argument binding, Python conversions and the global functions (range, dict, namespace,
// raise_exception, strftime_now) that chat templates call.
#include "runtime/chat/JinjaBuiltins.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <unordered_map>

#include "runtime/chat/JinjaInterpreter.h"
#include "runtime/chat/JinjaText.h"

namespace pagedc::jinja {

ArgReader::ArgReader(const CallArgs& args, std::string_view function, std::initializer_list<std::string_view> names)
    : args_(args), names_(names) {
  if (args.positional.size() > names_.size())
    throw TemplateError(std::string(function) + "() takes at most " + std::to_string(names_.size()) + " argument(s) (" +
                        std::to_string(args.positional.size()) + " given)");
  for (const auto& [name, value] : args.keyword) {
    auto it = std::find(names_.begin(), names_.end(), name);
    if (it == names_.end())
      throw TemplateError(std::string(function) + "() got an unexpected keyword argument '" + name + "'");
    if (static_cast<std::size_t>(it - names_.begin()) < args.positional.size())
      throw TemplateError(std::string(function) + "() got multiple values for argument '" + name + "'");
  }
}

const Value* ArgReader::get(std::size_t index) const {
  if (index < args_.positional.size()) return &args_.positional[index];
  for (const auto& [name, value] : args_.keyword)
    if (name == names_[index]) return &value;
  return nullptr;
}

Value ArgReader::get(std::size_t index, Value fallback) const {
  const Value* v = get(index);
  return v ? *v : fallback;
}

int64_t toInt(const Value& v, std::string_view what) {
  if (v.isInt() || v.isBool()) return v.asInt();
  if (v.isUndefined()) failUndefined(v);
  throw TemplateError(std::string(what) + " must be an integer, not " + v.typeName());
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::List: return v.items();
    case Value::Kind::Dict: {
      if (v.isNamespace()) throw TemplateError("'Namespace' object is not iterable");
      std::vector<Value> keys;
      for (const auto& [k, val] : v.dictObject()->entries) keys.push_back(k);
      return keys;
    }
    case Value::Kind::String: {
      std::vector<Value> chars;
      for (char32_t c : text::decode(v.asString())) chars.emplace_back(text::encode(std::u32string_view(&c, 1)));
      return chars;
    }
    case Value::Kind::Undefined: return {};
    default: throw TemplateError("'" + v.typeName() + "' object is not iterable");
  }
}

std::size_t lengthOf(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::String: return text::length(v.asString());
    case Value::Kind::List: return v.items().size();
    case Value::Kind::Dict:
      if (v.isNamespace()) break;
      return v.dictObject()->entries.size();
    case Value::Kind::Undefined: return 0;
    default: break;
  }
  throw TemplateError("object of type '" + v.typeName() + "' has no len()");
}

std::string percentFormat(const std::string& format, const std::vector<Value>& values) {
  std::string out;
  std::size_t next = 0;
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out.push_back(format[i]);
      continue;
    }
    if (++i >= format.size()) throw TemplateError("incomplete format");
    if (format[i] == '%') {
      out.push_back('%');
      continue;
    }
    std::string spec = "%";
    while (i < format.size() && std::string_view("-+ #0123456789.").find(format[i]) != std::string_view::npos) spec.push_back(format[i++]);
    if (i >= format.size()) throw TemplateError("incomplete format");
    char conv = format[i];
    if (next >= values.size()) throw TemplateError("not enough arguments for format string");
    const Value& v = values[next++];
    char buf[512];
    switch (conv) {
      case 's':
      case 'r': {
        std::string s = conv == 's' ? v.str() : v.repr();
        std::snprintf(buf, sizeof buf, (spec + "s").c_str(), s.c_str());
        out += spec == "%" ? s : std::string(buf);
        break;
      }
      case 'd':
      case 'i': {
        if (!v.isNumber()) throw TemplateError("%d format: a real number is required, not " + v.typeName());
        long long n = v.isFloat() ? static_cast<long long>(std::trunc(v.asDouble())) : static_cast<long long>(v.asInt());
        std::snprintf(buf, sizeof buf, (spec + "lld").c_str(), n);
        out += buf;
        break;
      }
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
        if (!v.isNumber()) throw TemplateError(std::string("%") + conv + " format: a real number is required, not " + v.typeName());
        std::snprintf(buf, sizeof buf, (spec + conv).c_str(), v.asDouble());
        out += buf;
        break;
      }
      case 'x':
      case 'X':
      case 'o': {
        if (!(v.isInt() || v.isBool())) throw TemplateError(std::string("%") + conv + " format: an integer is required, not " + v.typeName());
        std::snprintf(buf, sizeof buf, (spec + "ll" + conv).c_str(), static_cast<long long>(v.asInt()));
        out += buf;
        break;
      }
      default: throw TemplateError(std::string("unsupported format character '") + conv + "'");
    }
  }
  if (next < values.size() && !(values.size() == 1 && values[0].isDict()))
    throw TemplateError("not all arguments converted during string formatting");
  return out;
}

namespace {

Value globalRange(Interpreter&, CallArgs& args) {
  if (!args.keyword.empty()) throw TemplateError("range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) throw TemplateError("range expected 1 to 3 arguments, got " + std::to_string(p.size()));
  int64_t start = 0, stop, step = 1;
  if (p.size() == 1) {
    stop = toInt(p[0], "range() argument");
  } else {
    start = toInt(p[0], "range() argument");
    stop = toInt(p[1], "range() argument");
    if (p.size() == 3) step = toInt(p[2], "range() argument");
  }
  if (step == 0) throw TemplateError("range() arg 3 must not be zero");
  int64_t count = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                           : (start > stop ? (start - stop - step - 1) / -step : 0);
  // Jinja's sandbox caps ranges (MAX_RANGE).
  if (count > 100000) throw TemplateError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  std::vector<Value> items;
  items.reserve(static_cast<std::size_t>(count));
  for (int64_t i = 0; i < count; ++i) items.emplace_back(start + i * step);
  return Value::list(std::move(items));
}

void fillDict(DictObject& d, CallArgs& args, const char* function) {
  if (args.positional.size() > 1) throw TemplateError(std::string(function) + " expected at most 1 positional argument");
  if (args.positional.size() == 1) {
    const Value& src = args.positional[0];
    if (src.isDict()) {
      for (const auto& [k, v] : src.dictObject()->entries) d.set(k, v);
    } else if (src.isList()) {
      for (const Value& pair : src.items()) {
        std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2) throw TemplateError("dictionary update sequence element has length " + std::to_string(kv.size()) + "; 2 is required");
        d.set(kv[0], kv[1]);
      }
    } else if (!src.isUndefined()) {
      throw TemplateError("'" + src.typeName() + "' object is not iterable");
    }
  }
  for (auto& [k, v] : args.keyword) d.set(Value(k), v);
}

Value globalDict(Interpreter&, CallArgs& args) {
  Value d = Value::dict();
  fillDict(*d.dictObject(), args, "dict");
  return d;
}

Value globalNamespace(Interpreter&, CallArgs& args) {
  Value ns = Value::namespaceObject();
  fillDict(*ns.dictObject(), args, "namespace");
  for (const auto& [k, v] : ns.dictObject()->entries) {
    if (k.isString() && !k.asString().empty() && k.asString()[0] == '_')
      throw TemplateError("Chat templates cannot store underscore-prefixed attributes on a namespace, but got " + k.repr() +
                          ". Please rename the attribute.");
  }
  return ns;
}

Value globalRaiseException(Interpreter&, CallArgs& args) {
  ArgReader a(args, "raise_exception", {"message"});
  const Value* m = a.get(0);
  throw TemplateError(m ? m->str() : std::string());
}

Value globalStrftimeNow(Interpreter&, CallArgs& args) {
  ArgReader a(args, "strftime_now", {"format"});
  const Value* f = a.get(0);
  if (!f || !f->isString()) throw TemplateError("strftime_now() expects a format string");
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[512];
  std::size_t n = std::strftime(buf, sizeof buf, f->asString().c_str(), &local);
  return Value(std::string(buf, n));
}

}  // namespace

const Value* findGlobal(std::string_view name) {
  static const std::unordered_map<std::string_view, Value> globals = {
      {"range", Value::function("range", globalRange)},
      {"dict", Value::function("dict", globalDict)},
      {"namespace", Value::function("namespace", globalNamespace)},
      {"raise_exception", Value::function("raise_exception", globalRaiseException)},
      {"strftime_now", Value::function("strftime_now", globalStrftimeNow)},
  };
  auto it = globals.find(name);
  return it == globals.end() ? nullptr : &it->second;
}

}  // namespace pagedc::jinja
