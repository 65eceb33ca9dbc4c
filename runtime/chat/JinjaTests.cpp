// Jinja2's built-in tests (`x is defined`, `x is divisibleby 3`, ...).
#include <unordered_map>

#include "runtime/chat/JinjaBuiltins.h"
#include "runtime/chat/JinjaText.h"

namespace pagedc::jinja {

namespace {

const Value& argument(CallArgs& args, std::string_view test) {
  if (!args.positional.empty()) return args.positional[0];
  if (!args.keyword.empty()) return args.keyword[0].second;
  throw TemplateError("test '" + std::string(test) + "' needs an argument");
}

bool testDefined(Interpreter&, const Value& v, CallArgs&) { return !v.isUndefined(); }
bool testUndefined(Interpreter&, const Value& v, CallArgs&) { return v.isUndefined(); }
bool testNone(Interpreter&, const Value& v, CallArgs&) { return v.isNone(); }
bool testBoolean(Interpreter&, const Value& v, CallArgs&) { return v.isBool(); }
bool testTrue(Interpreter&, const Value& v, CallArgs&) { return v.isBool() && v.asBool(); }
bool testFalse(Interpreter&, const Value& v, CallArgs&) { return v.isBool() && !v.asBool(); }
bool testInteger(Interpreter&, const Value& v, CallArgs&) { return v.isInt(); }
bool testFloat(Interpreter&, const Value& v, CallArgs&) { return v.isFloat(); }
bool testNumber(Interpreter&, const Value& v, CallArgs&) { return v.isNumber(); }
bool testString(Interpreter&, const Value& v, CallArgs&) { return v.isString(); }
bool testMapping(Interpreter&, const Value& v, CallArgs&) { return v.isDict() && !v.isNamespace(); }
bool testIterable(Interpreter&, const Value& v, CallArgs&) {
  return v.isString() || v.isList() || (v.isDict() && !v.isNamespace()) || v.isUndefined();
}
bool testSequence(Interpreter&, const Value& v, CallArgs&) {
  return v.isString() || v.isList() || (v.isDict() && !v.isNamespace());
}
bool testCallable(Interpreter&, const Value& v, CallArgs&) { return v.isCallable(); }
bool testEscaped(Interpreter&, const Value&, CallArgs&) { return false; }

bool testOdd(Interpreter&, const Value& v, CallArgs&) { return toInt(v, "odd test") % 2 != 0; }
bool testEven(Interpreter&, const Value& v, CallArgs&) { return toInt(v, "even test") % 2 == 0; }
bool testDivisibleby(Interpreter&, const Value& v, CallArgs& args) {
  int64_t n = toInt(argument(args, "divisibleby"), "divisibleby argument");
  if (n == 0) throw TemplateError("integer division or modulo by zero");
  return toInt(v, "divisibleby test") % n == 0;
}

bool testEq(Interpreter&, const Value& v, CallArgs& args) { return equals(v, argument(args, "eq")); }
bool testNe(Interpreter&, const Value& v, CallArgs& args) { return !equals(v, argument(args, "ne")); }
bool testLt(Interpreter&, const Value& v, CallArgs& args) { return lessThan(v, argument(args, "lt")); }
bool testGt(Interpreter&, const Value& v, CallArgs& args) { return lessThan(argument(args, "gt"), v); }
bool testLe(Interpreter&, const Value& v, CallArgs& args) {
  const Value& o = argument(args, "le");
  return lessThan(v, o) || equals(v, o);
}
bool testGe(Interpreter&, const Value& v, CallArgs& args) {
  const Value& o = argument(args, "ge");
  return lessThan(o, v) || equals(v, o);
}
bool testSameas(Interpreter&, const Value& v, CallArgs& args) {
  const Value& o = argument(args, "sameas");
  if (v.kind() != o.kind()) return false;
  if (v.isNone() || v.isUndefined()) return true;
  if (v.isBool()) return v.asBool() == o.asBool();
  if (v.isList()) return v.listObject() == o.listObject();
  if (v.isDict()) return v.dictObject() == o.dictObject();
  return equals(v, o);
}

bool testIn(Interpreter&, const Value& v, CallArgs& args) {
  const Value& container = argument(args, "in");
  if (container.isString()) {
    if (!v.isString()) throw TemplateError("'in <string>' requires string as left operand, not " + v.typeName());
    return container.asString().find(v.asString()) != std::string::npos;
  }
  if (container.isDict()) return container.dictObject()->find(v) != nullptr;
  for (const Value& item : iterate(container))
    if (equals(item, v)) return true;
  return false;
}

bool testLower(Interpreter&, const Value& v, CallArgs&) {
  bool cased = false;
  for (char32_t c : text::decode(v.str())) {
    if (text::isUpper(c)) return false;
    cased = cased || text::isLower(c);
  }
  return cased;
}

bool testUpper(Interpreter&, const Value& v, CallArgs&) {
  bool cased = false;
  for (char32_t c : text::decode(v.str())) {
    if (text::isLower(c)) return false;
    cased = cased || text::isUpper(c);
  }
  return cased;
}

bool testFilter(Interpreter&, const Value& v, CallArgs&) { return v.isString() && findFilter(v.asString()) != nullptr; }
bool testTest(Interpreter&, const Value& v, CallArgs&) { return v.isString() && findTest(v.asString()) != nullptr; }

}  // namespace

TestFn findTest(std::string_view name) {
  static const std::unordered_map<std::string_view, TestFn> table = {
      {"defined", testDefined},
      {"undefined", testUndefined},
      {"none", testNone},
      {"boolean", testBoolean},
      {"true", testTrue},
      {"false", testFalse},
      {"integer", testInteger},
      {"float", testFloat},
      {"number", testNumber},
      {"string", testString},
      {"mapping", testMapping},
      {"iterable", testIterable},
      {"sequence", testSequence},
      {"callable", testCallable},
      {"escaped", testEscaped},
      {"odd", testOdd},
      {"even", testEven},
      {"divisibleby", testDivisibleby},
      {"eq", testEq},
      {"equalto", testEq},
      {"==", testEq},
      {"ne", testNe},
      {"!=", testNe},
      {"lt", testLt},
      {"lessthan", testLt},
      {"<", testLt},
      {"le", testLe},
      {"<=", testLe},
      {"gt", testGt},
      {"greaterthan", testGt},
      {">", testGt},
      {"ge", testGe},
      {">=", testGe},
      {"sameas", testSameas},
      {"in", testIn},
      {"lower", testLower},
      {"upper", testUpper},
      {"filter", testFilter},
      {"test", testTest},
  };
  auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

}  // namespace pagedc::jinja
