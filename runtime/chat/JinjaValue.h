// The values a Jinja template computes with, behaving as the Python objects Jinja2 would hold:
// undefined, None, bool, int, float, str, list/tuple, dict/namespace and callables.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace pagedc::jinja {

class Value;
class Interpreter;

// Jinja's Undefined: prints as "", is falsy and iterates as empty; using it in arithmetic or
// reading an attribute of it is an error, which names what was missing (hint).
struct Undefined {
  std::string hint;
};
struct None {};

struct ListObject {
  std::vector<Value> items;
  bool tuple = false;  // printed as (a, b); otherwise a list
};

// A dict (insertion-ordered, as Python's) or a Jinja namespace() object.
struct DictObject {
  std::vector<std::pair<Value, Value>> entries;
  bool isNamespace = false;

  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
};

// Positional and keyword arguments of a call.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct Callable {
  std::string name;
  std::function<Value(Interpreter&, CallArgs&)> call;
};

using ListPtr = std::shared_ptr<ListObject>;
using DictPtr = std::shared_ptr<DictObject>;
using CallablePtr = std::shared_ptr<const Callable>;

class Value {
public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Callable };

  Value() : v_(Undefined{}) {}
  Value(Undefined u) : v_(std::move(u)) {}
  Value(None) : v_(None{}) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(int64_t{i}) {}
  Value(int64_t i) : v_(i) {}
  Value(std::size_t i) : v_(static_cast<int64_t>(i)) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(ListPtr l) : v_(std::move(l)) {}
  Value(DictPtr d) : v_(std::move(d)) {}
  Value(CallablePtr c) : v_(std::move(c)) {}

  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items);
  static Value dict();
  static Value namespaceObject();
  static Value function(std::string name, std::function<Value(Interpreter&, CallArgs&)> call);
  static Value undefined(std::string hint) { return Value(Undefined{std::move(hint)}); }
  static Value fromJson(const nlohmann::ordered_json& j);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool isUndefined() const { return kind() == Kind::Undefined; }
  bool isNone() const { return kind() == Kind::None; }
  bool isBool() const { return kind() == Kind::Bool; }
  bool isInt() const { return kind() == Kind::Int; }
  bool isFloat() const { return kind() == Kind::Float; }
  // int, float or bool (Python's bool is an int).
  bool isNumber() const { return isInt() || isFloat() || isBool(); }
  bool isString() const { return kind() == Kind::String; }
  bool isList() const { return kind() == Kind::List; }  // list or tuple
  bool isTuple() const { return isList() && std::get<ListPtr>(v_)->tuple; }
  bool isDict() const { return kind() == Kind::Dict; }  // dict or namespace
  bool isNamespace() const { return isDict() && std::get<DictPtr>(v_)->isNamespace; }
  bool isCallable() const { return kind() == Kind::Callable; }

  bool asBool() const { return std::get<bool>(v_); }
  int64_t asInt() const;     // int or bool
  double asDouble() const;   // any number
  const std::string& asString() const { return std::get<std::string>(v_); }
  const std::vector<Value>& items() const { return std::get<ListPtr>(v_)->items; }
  const ListPtr& listObject() const { return std::get<ListPtr>(v_); }
  const DictPtr& dictObject() const { return std::get<DictPtr>(v_); }
  const Callable& callable() const { return *std::get<CallablePtr>(v_); }
  const std::string& undefinedHint() const { return std::get<Undefined>(v_).hint; }

  // Python truthiness (undefined is false).
  bool truthy() const;
  // Python's str(): what {{ value }} prints (undefined prints nothing).
  std::string str() const;
  // Python's repr(), used inside printed lists and dicts.
  std::string repr() const;
  // Python's type name for messages ("str", "int", "NoneType", "dict", ...).
  std::string typeName() const;

private:
  std::variant<Undefined, None, bool, int64_t, double, std::string, ListPtr, DictPtr, CallablePtr> v_;
};

// Python ==, with 1 == 1.0 == True, element-wise lists and order-free dicts.
bool equals(const Value& a, const Value& b);
// Python <; throws TemplateError for unordered types ("'<' not supported between ...").
bool lessThan(const Value& a, const Value& b);

// Python's repr() of a float ("1.0", "1e-05", "1e+20", "inf").
std::string formatPythonFloat(double d);
// Python's repr() of a str.
std::string pythonStringRepr(std::string_view s);

// json.dumps as transformers' tojson filter calls it (ensure_ascii=False by default).
struct JsonDumpOptions {
  bool ensureAscii = false;
  std::string indent;  // used when hasIndent
  bool hasIndent = false;
  std::string itemSeparator = ", ";
  std::string keySeparator = ": ";
  bool sortKeys = false;
};
std::string dumpJson(const Value& v, const JsonDumpOptions& options);

// A runtime error in a template; the interpreter adds the source name and line.
class TemplateError : public std::exception {
public:
  explicit TemplateError(std::string message, int line = 0) : message_(std::move(message)), line_(line) {}
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const { return message_; }
  int line() const { return line_; }
  void setLine(int line) { line_ = line; }

private:
  std::string message_;
  int line_;
};

}  // namespace pagedc::jinja
