// Evaluates a parsed Jinja template: scopes, statements, expressions, calls. One Interpreter per
// render; the parsed template it reads is shared and never changed.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/chat/JinjaAst.h"
#include "runtime/chat/JinjaValue.h"

namespace pagedc::jinja {

// Variables of one frame (template top level, loop iteration, macro call, with block).
struct Scope {
  std::shared_ptr<Scope> parent;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* lookup(std::string_view name) const;
  void set(const std::string& name, Value value);
};
using ScopePtr = std::shared_ptr<Scope>;

class Interpreter {
public:
  // `globals` is a dict of the render's variables (messages, add_generation_prompt, ...).
  explicit Interpreter(const Value& globals);

  // Renders the template body; TemplateErrors carry the line being evaluated.
  std::string render(const Body& body);

  // Used by filters, tests and builtins.
  Value call(const Value& callee, CallArgs& args);
  Value applyFilter(std::string_view name, const Value& operand, CallArgs& args);
  bool applyTest(std::string_view name, const Value& operand, CallArgs& args);
  // Jinja's obj.name (methods first for str/list/dict, then keys) and obj[key] (keys first).
  Value getAttr(const Value& object, std::string_view name);
  Value getItem(const Value& object, const Value& key);

private:
  enum class Flow { Normal, Break, Continue };

  Flow exec(const Body& body, const ScopePtr& scope, std::string& out);
  Flow execFor(const Stmt& s, const ScopePtr& scope, std::string& out);
  void assign(const Stmt& s, const Value& value, Scope& scope);
  Value makeMacro(const Stmt& s, const ScopePtr& scope);
  Value callMacro(const Stmt& macro, const ScopePtr& closure, CallArgs& args, const Value* caller);

  Value eval(const Expr& e, const ScopePtr& scope);
  Value evalCall(const Expr& e, const ScopePtr& scope);
  Value evalBinary(const Expr& e, const ScopePtr& scope);
  Value evalCompare(const Expr& e, const ScopePtr& scope);
  Value evalFilter(const Expr& e, const Value& operand, const ScopePtr& scope);
  Value lookup(const std::string& name, const ScopePtr& scope);
  void evalArgs(const Expr& e, std::size_t firstArg, const ScopePtr& scope, CallArgs& args);

  ScopePtr root_;
  int line_ = 0;
  int callDepth_ = 0;
};

// Raises the "'x' is undefined"-style error for using an undefined value.
[[noreturn]] void failUndefined(const Value& v);

}  // namespace pagedc::jinja
