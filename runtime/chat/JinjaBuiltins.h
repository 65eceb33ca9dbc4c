// Jinja's built-in filters, tests and global functions, and the Python methods the sandbox lets
// templates call on str, list and dict; plus the argument binding they share.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/chat/JinjaValue.h"

namespace pagedc::jinja {

class Interpreter;

using FilterFn = Value (*)(Interpreter&, const Value& operand, CallArgs& args);
using TestFn = bool (*)(Interpreter&, const Value& operand, CallArgs& args);

// nullptr when there is no such filter / test.
FilterFn findFilter(std::string_view name);
TestFn findTest(std::string_view name);
// range, dict, namespace, raise_exception, strftime_now, joiner, cycler (nullptr when unknown).
const Value* findGlobal(std::string_view name);

// A method of a str, list or dict value ("strip", "items", ...), or undefined when there is none.
// Methods that would modify a list or dict fail as Jinja's immutable sandbox does.
Value boundMethod(const Value& self, std::string_view name);
// Calls it directly (without binding); `found` is false when there is no such method.
Value callMethod(Interpreter& interp, const Value& self, std::string_view name, CallArgs& args, bool& found);

// Binds positional and keyword arguments to a function's parameter names, Python-style.
class ArgReader {
public:
  ArgReader(const CallArgs& args, std::string_view function, std::initializer_list<std::string_view> names);
  // The argument for parameter `index`, or nullptr when not given.
  const Value* get(std::size_t index) const;
  Value get(std::size_t index, Value fallback) const;

private:
  const CallArgs& args_;
  std::vector<std::string_view> names_;
};

// Python conversions shared by filters and methods.
int64_t toInt(const Value& v, std::string_view what);
// Iterates a value as Python would (str: characters, dict: keys); undefined is empty.
std::vector<Value> iterate(const Value& v);
// Python's len() (str in code points); throws for values without one.
std::size_t lengthOf(const Value& v);
// printf-style formatting: "%s-%d" % (a, b) and the format filter.
std::string percentFormat(const std::string& format, const std::vector<Value>& values);

}  // namespace pagedc::jinja
