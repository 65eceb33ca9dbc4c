// The Jinja tree-walking interpreter: statements, expressions, Python operator semantics.
#include "runtime/chat/JinjaInterpreter.h"

#include <cmath>

#include "runtime/chat/JinjaBuiltins.h"
#include "runtime/chat/JinjaText.h"

namespace pagedc::jinja {

namespace {

constexpr int kMaxCallDepth = 100;

std::string objectName(const Value& v) {
  if (v.isNone()) return "'None'";
  std::string name = "'";
  name += v.typeName();
  name += " object'";
  return name;
}

[[noreturn]] void unsupportedOperands(const std::string& op, const Value& a, const Value& b) {
  throw TemplateError("unsupported operand type(s) for " + op + ": '" + a.typeName() + "' and '" + b.typeName() + "'");
}

// Python's slice.indices() for a sequence of length n, then the picked indices.
std::vector<std::size_t> sliceIndices(std::size_t n, const Value& startV, const Value& stopV, const Value& stepV) {
  auto len = static_cast<int64_t>(n);
  int64_t step = stepV.isNone() || stepV.isUndefined() ? 1 : toInt(stepV, "slice step");
  if (step == 0) throw TemplateError("slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t fallback) {
    if (v.isNone() || v.isUndefined()) return fallback;
    int64_t i = toInt(v, "slice index");
    if (i < 0) i += len;
    if (step > 0) return std::clamp<int64_t>(i, 0, len);
    return std::clamp<int64_t>(i, -1, len - 1);
  };
  int64_t start = clamp(startV, step > 0 ? 0 : len - 1);
  int64_t stop = clamp(stopV, step > 0 ? len : -1);
  std::vector<std::size_t> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(static_cast<std::size_t>(i));
  return out;
}

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t floorMod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::String:
      if (!item.isString())
        throw TemplateError("'in <string>' requires string as left operand, not " + item.typeName());
      return container.asString().find(item.asString()) != std::string::npos;
    case Value::Kind::List:
      for (const Value& v : container.items())
        if (equals(v, item)) return true;
      return false;
    case Value::Kind::Dict: return container.dictObject()->find(item) != nullptr;
    case Value::Kind::Undefined: return false;
    default: throw TemplateError("argument of type '" + container.typeName() + "' is not iterable");
  }
}

}  // namespace

void failUndefined(const Value& v) {
  throw TemplateError(v.undefinedHint().empty() ? std::string("undefined value") : v.undefinedHint());
}

const Value* Scope::lookup(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent.get())
    for (const auto& [k, v] : s->vars)
      if (k == name) return &v;
  return nullptr;
}

void Scope::set(const std::string& name, Value value) {
  for (auto& [k, v] : vars) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  vars.emplace_back(name, std::move(value));
}

Interpreter::Interpreter(const Value& globals) : root_(std::make_shared<Scope>()) {
  if (globals.isDict())
    for (const auto& [k, v] : globals.dictObject()->entries) root_->set(k.str(), v);
}

std::string Interpreter::render(const Body& body) {
  auto top = std::make_shared<Scope>();
  top->parent = root_;
  std::string out;
  try {
    exec(body, top, out);
  } catch (TemplateError& e) {
    if (e.line() == 0) e.setLine(line_);
    throw;
  }
  return out;
}

Interpreter::Flow Interpreter::exec(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const StmtPtr& sp : body) {
    const Stmt& s = *sp;
    line_ = s.line;
    switch (s.kind) {
      case StmtKind::Text: out += s.text; break;
      case StmtKind::Output: out += eval(*s.expr, scope).str(); break;
      case StmtKind::If: {
        const Body* chosen = &s.elseBody;
        for (const auto& [cond, branch] : s.branches) {
          if (eval(*cond, scope).truthy()) {
            chosen = &branch;
            break;
          }
        }
        Flow f = exec(*chosen, scope, out);
        if (f != Flow::Normal) return f;
        break;
      }
      case StmtKind::For: {
        Flow f = execFor(s, scope, out);
        if (f != Flow::Normal) return f;
        break;
      }
      case StmtKind::Set: assign(s, eval(*s.expr, scope), *scope); break;
      case StmtKind::SetAttr: {
        Value ns = lookup(s.targets[0], scope);
        line_ = s.line;
        if (!ns.isNamespace()) throw TemplateError("can only assign attributes of namespace objects, '" + s.targets[0] + "' is " + objectName(ns));
        Value v = eval(*s.expr, scope);
        ns.dictObject()->set(Value(s.targets[1]), std::move(v));
        break;
      }
      case StmtKind::SetBlock:
      case StmtKind::FilterBlock: {
        std::string buffer;
        exec(s.body, scope, buffer);
        Value v(std::move(buffer));
        for (const ExprPtr& f : s.filters) v = evalFilter(*f, v, scope);
        if (s.kind == StmtKind::SetBlock) assign(s, v, *scope);
        else out += v.str();
        break;
      }
      case StmtKind::Macro: scope->set(s.name, makeMacro(s, scope)); break;
      case StmtKind::CallBlock: {
        std::weak_ptr<Scope> weak = scope;
        const Stmt* block = &s;
        Value caller = Value::function("caller", [block, weak](Interpreter& in, CallArgs& args) {
          ScopePtr closure = weak.lock();
          return in.callMacro(*block, closure ? closure : in.root_, args, nullptr);
        });
        const Expr& callExpr = *s.expr;
        Value fn = eval(*callExpr.children[0], scope);
        CallArgs args;
        evalArgs(callExpr, 1, scope, args);
        args.keyword.emplace_back("caller", std::move(caller));
        line_ = s.line;
        out += call(fn, args).str();
        break;
      }
      case StmtKind::With: {
        auto inner = std::make_shared<Scope>();
        inner->parent = scope;
        for (const auto& [name, expr] : s.params) inner->set(name, eval(*expr, scope));
        Flow f = exec(s.body, inner, out);
        if (f != Flow::Normal) return f;
        break;
      }
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
      case StmtKind::Generation: {
        Flow f = exec(s.body, scope, out);
        if (f != Flow::Normal) return f;
        break;
      }
    }
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::execFor(const Stmt& s, const ScopePtr& scope, std::string& out) {
  Value iterable = eval(*s.expr, scope);
  line_ = s.line;
  if (!(iterable.isList() || iterable.isDict() || iterable.isString() || iterable.isUndefined()))
    throw TemplateError("'" + iterable.typeName() + "' object is not iterable");
  if (iterable.isNamespace()) throw TemplateError("'Namespace' object is not iterable");
  std::vector<Value> items = iterate(iterable);
  if (s.condition) {
    std::vector<Value> kept;
    for (Value& item : items) {
      auto probe = std::make_shared<Scope>();
      probe->parent = scope;
      assign(s, item, *probe);
      if (eval(*s.condition, probe).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec(s.elseBody, scope, out);
  const std::size_t n = items.size();
  for (std::size_t i = 0; i < n; ++i) {
    auto frame = std::make_shared<Scope>();
    frame->parent = scope;
    assign(s, items[i], *frame);
    Value loop = Value::dict();
    DictObject& d = *loop.dictObject();
    d.entries.reserve(12);
    d.entries.emplace_back(Value("index"), Value(static_cast<int64_t>(i + 1)));
    d.entries.emplace_back(Value("index0"), Value(static_cast<int64_t>(i)));
    d.entries.emplace_back(Value("revindex"), Value(static_cast<int64_t>(n - i)));
    d.entries.emplace_back(Value("revindex0"), Value(static_cast<int64_t>(n - i - 1)));
    d.entries.emplace_back(Value("first"), Value(i == 0));
    d.entries.emplace_back(Value("last"), Value(i + 1 == n));
    d.entries.emplace_back(Value("length"), Value(static_cast<int64_t>(n)));
    d.entries.emplace_back(Value("depth"), Value(1));
    d.entries.emplace_back(Value("depth0"), Value(0));
    if (i > 0) d.entries.emplace_back(Value("previtem"), items[i - 1]);
    if (i + 1 < n) d.entries.emplace_back(Value("nextitem"), items[i + 1]);
    d.entries.emplace_back(Value("cycle"), Value::function("cycle", [i](Interpreter&, CallArgs& args) {
      if (args.positional.empty()) throw TemplateError("no items for cycling given");
      return args.positional[i % args.positional.size()];
    }));
    frame->vars.emplace_back("loop", std::move(loop));
    Flow f = exec(s.body, frame, out);
    if (f == Flow::Break) break;
  }
  return Flow::Normal;
}

void Interpreter::assign(const Stmt& s, const Value& value, Scope& scope) {
  if (!s.tupleTarget) {
    scope.set(s.targets[0], value);
    return;
  }
  if (!(value.isList() || value.isString() || value.isDict()))
    throw TemplateError("cannot unpack non-iterable " + value.typeName() + " object");
  std::vector<Value> parts = iterate(value);
  if (parts.size() < s.targets.size())
    throw TemplateError("not enough values to unpack (expected " + std::to_string(s.targets.size()) + ", got " +
                        std::to_string(parts.size()) + ")");
  if (parts.size() > s.targets.size())
    throw TemplateError("too many values to unpack (expected " + std::to_string(s.targets.size()) + ")");
  for (std::size_t i = 0; i < parts.size(); ++i) scope.set(s.targets[i], parts[i]);
}

Value Interpreter::makeMacro(const Stmt& s, const ScopePtr& scope) {
  // A weak reference: the macro lives in the scope it closes over.
  std::weak_ptr<Scope> weak = scope;
  const Stmt* macro = &s;
  return Value::function(s.name, [macro, weak](Interpreter& in, CallArgs& args) {
    ScopePtr closure = weak.lock();
    return in.callMacro(*macro, closure ? closure : in.root_, args, nullptr);
  });
}

Value Interpreter::callMacro(const Stmt& macro, const ScopePtr& closure, CallArgs& args, const Value*) {
  if (callDepth_ >= kMaxCallDepth) throw TemplateError("maximum macro recursion depth exceeded in '" + macro.name + "'");
  ++callDepth_;
  int savedLine = line_;
  auto frame = std::make_shared<Scope>();
  frame->parent = closure;
  const auto& params = macro.params;
  std::vector<bool> given(params.size(), false);
  std::vector<Value> varargs;
  Value kwargs = Value::dict();
  for (std::size_t i = 0; i < args.positional.size(); ++i) {
    if (i < params.size()) {
      frame->set(params[i].first, args.positional[i]);
      given[i] = true;
    } else {
      varargs.push_back(args.positional[i]);
    }
  }
  for (auto& [name, value] : args.keyword) {
    if (name == "caller") {
      frame->set("caller", value);
      continue;
    }
    bool matched = false;
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (params[i].first != name) continue;
      if (given[i]) throw TemplateError("macro '" + macro.name + "' got multiple values for argument '" + name + "'");
      frame->set(name, value);
      given[i] = matched = true;
    }
    if (!matched) kwargs.dictObject()->set(Value(name), value);
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (given[i]) continue;
    if (params[i].second) frame->set(params[i].first, eval(*params[i].second, frame));
    else frame->set(params[i].first, Value::undefined("parameter '" + params[i].first + "' was not provided"));
  }
  frame->set("varargs", Value::tuple(std::move(varargs)));
  frame->set("kwargs", kwargs);
  std::string out;
  exec(macro.body, frame, out);
  --callDepth_;
  line_ = savedLine;
  return Value(std::move(out));
}

Value Interpreter::lookup(const std::string& name, const ScopePtr& scope) {
  if (const Value* v = scope->lookup(name)) return *v;
  if (const Value* g = findGlobal(name)) return *g;
  return Value::undefined("'" + name + "' is undefined");
}

void Interpreter::evalArgs(const Expr& e, std::size_t firstArg, const ScopePtr& scope, CallArgs& args) {
  for (std::size_t i = firstArg; i < e.children.size(); ++i) args.positional.push_back(eval(*e.children[i], scope));
  for (const auto& [name, expr] : e.keywords) args.keyword.emplace_back(name, eval(*expr, scope));
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.isCallable()) return callee.callable().call(*this, args);
  if (callee.isUndefined()) failUndefined(callee);
  throw TemplateError("'" + callee.typeName() + "' object is not callable");
}

Value Interpreter::applyFilter(std::string_view name, const Value& operand, CallArgs& args) {
  FilterFn f = findFilter(name);
  if (!f) throw TemplateError("no filter named '" + std::string(name) + "'");
  return f(*this, operand, args);
}

bool Interpreter::applyTest(std::string_view name, const Value& operand, CallArgs& args) {
  TestFn t = findTest(name);
  if (!t) throw TemplateError("no test named '" + std::string(name) + "'");
  return t(*this, operand, args);
}

Value Interpreter::getAttr(const Value& object, std::string_view name) {
  switch (object.kind()) {
    case Value::Kind::Undefined: failUndefined(object);
    case Value::Kind::Dict: {
      if (object.isNamespace()) {
        if (const Value* v = object.dictObject()->find(name)) return *v;
        return Value::undefined("'Namespace object' has no attribute '" + std::string(name) + "'");
      }
      Value m = boundMethod(object, name);
      if (!m.isUndefined()) return m;
      if (const Value* v = object.dictObject()->find(name)) return *v;
      break;
    }
    case Value::Kind::String:
    case Value::Kind::List: {
      Value m = boundMethod(object, name);
      if (!m.isUndefined()) return m;
      break;
    }
    default: break;
  }
  return Value::undefined(objectName(object) + " has no attribute '" + std::string(name) + "'");
}

Value Interpreter::getItem(const Value& object, const Value& key) {
  switch (object.kind()) {
    case Value::Kind::Undefined: failUndefined(object);
    case Value::Kind::Dict: {
      if (const Value* v = object.dictObject()->find(key)) return *v;
      if (key.isString() && !object.isNamespace()) {
        Value m = boundMethod(object, key.asString());
        if (!m.isUndefined()) return m;
      }
      return Value::undefined(objectName(object) + " has no attribute " + key.repr());
    }
    case Value::Kind::List:
    case Value::Kind::String: {
      if (key.isInt() || key.isBool()) {
        int64_t i = key.asInt();
        if (object.isList()) {
          auto n = static_cast<int64_t>(object.items().size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) return object.items()[static_cast<std::size_t>(i)];
        } else {
          std::u32string cps = text::decode(object.asString());
          auto n = static_cast<int64_t>(cps.size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) return Value(text::encode(std::u32string_view(cps).substr(static_cast<std::size_t>(i), 1)));
        }
        return Value::undefined(objectName(object) + " has no element " + std::to_string(key.asInt()));
      }
      if (key.isString()) return getAttr(object, key.asString());
      break;
    }
    default: break;
  }
  return Value::undefined(objectName(object) + " has no element " + key.repr());
}

Value Interpreter::eval(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case ExprKind::Literal: return e.value;
    case ExprKind::Name: return lookup(e.name, scope);
    case ExprKind::GetAttr: {
      Value obj = eval(*e.children[0], scope);
      line_ = e.line;
      return getAttr(obj, e.name);
    }
    case ExprKind::GetItem: {
      Value obj = eval(*e.children[0], scope);
      Value key = eval(*e.children[1], scope);
      line_ = e.line;
      return getItem(obj, key);
    }
    case ExprKind::Slice: {
      Value obj = eval(*e.children[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i)
        parts[i] = e.children[static_cast<std::size_t>(i) + 1] ? eval(*e.children[static_cast<std::size_t>(i) + 1], scope) : Value(None{});
      line_ = e.line;
      if (obj.isUndefined()) failUndefined(obj);
      if (obj.isString()) {
        std::u32string cps = text::decode(obj.asString());
        std::u32string picked;
        for (std::size_t i : sliceIndices(cps.size(), parts[0], parts[1], parts[2])) picked.push_back(cps[i]);
        return Value(text::encode(picked));
      }
      if (obj.isList()) {
        std::vector<Value> picked;
        for (std::size_t i : sliceIndices(obj.items().size(), parts[0], parts[1], parts[2])) picked.push_back(obj.items()[i]);
        return obj.isTuple() ? Value::tuple(std::move(picked)) : Value::list(std::move(picked));
      }
      throw TemplateError("'" + obj.typeName() + "' object is not subscriptable");
    }
    case ExprKind::Call: return evalCall(e, scope);
    case ExprKind::Filter: return evalFilter(e, eval(*e.children[0], scope), scope);
    case ExprKind::Test: {
      Value operand = eval(*e.children[0], scope);
      CallArgs args;
      evalArgs(e, 1, scope, args);
      line_ = e.line;
      return Value(applyTest(e.name, operand, args) != e.negated);
    }
    case ExprKind::Unary: {
      Value v = eval(*e.children[0], scope);
      line_ = e.line;
      if (e.name == "not") return Value(!v.truthy());
      if (v.isUndefined()) failUndefined(v);
      if (!v.isNumber()) throw TemplateError("bad operand type for unary " + e.name + ": '" + v.typeName() + "'");
      if (e.name == "+") return v.isBool() ? Value(v.asInt()) : v;
      if (v.isFloat()) return Value(-v.asDouble());
      return Value(-v.asInt());
    }
    case ExprKind::Binary: return evalBinary(e, scope);
    case ExprKind::Compare: return evalCompare(e, scope);
    case ExprKind::Conditional: {
      if (eval(*e.children[1], scope).truthy()) return eval(*e.children[0], scope);
      if (e.children[2]) return eval(*e.children[2], scope);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      items.reserve(e.children.size());
      for (const ExprPtr& c : e.children) items.push_back(eval(*c, scope));
      return e.kind == ExprKind::List ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case ExprKind::Dict: {
      Value d = Value::dict();
      for (std::size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value k = eval(*e.children[i], scope);
        d.dictObject()->set(std::move(k), eval(*e.children[i + 1], scope));
      }
      return d;
    }
  }
  return Value();
}

Value Interpreter::evalCall(const Expr& e, const ScopePtr& scope) {
  const Expr& callee = *e.children[0];
  Value fn;
  if (callee.kind == ExprKind::GetAttr) {
    Value obj = eval(*callee.children[0], scope);
    if (obj.isString() || obj.isList() || (obj.isDict() && !obj.isNamespace())) {
      CallArgs args;
      evalArgs(e, 1, scope, args);
      line_ = e.line;
      bool found = false;
      Value r = callMethod(*this, obj, callee.name, args, found);
      if (found) return r;
      fn = getAttr(obj, callee.name);
      return call(fn, args);
    }
    line_ = callee.line;
    fn = getAttr(obj, callee.name);
  } else {
    fn = eval(callee, scope);
  }
  CallArgs args;
  evalArgs(e, 1, scope, args);
  line_ = e.line;
  return call(fn, args);
}

Value Interpreter::evalFilter(const Expr& e, const Value& operand, const ScopePtr& scope) {
  CallArgs args;
  evalArgs(e, 1, scope, args);
  line_ = e.line;
  return applyFilter(e.name, operand, args);
}

Value Interpreter::evalBinary(const Expr& e, const ScopePtr& scope) {
  const std::string& op = e.name;
  if (op == "and") {
    Value l = eval(*e.children[0], scope);
    return l.truthy() ? eval(*e.children[1], scope) : l;
  }
  if (op == "or") {
    Value l = eval(*e.children[0], scope);
    return l.truthy() ? l : eval(*e.children[1], scope);
  }
  Value l = eval(*e.children[0], scope);
  Value r = eval(*e.children[1], scope);
  line_ = e.line;
  if (op == "~") return Value(l.str() + r.str());
  if (l.isUndefined()) failUndefined(l);
  if (r.isUndefined()) failUndefined(r);
  bool numbers = l.isNumber() && r.isNumber();
  bool anyFloat = l.isFloat() || r.isFloat();
  if (op == "+") {
    if (numbers) return anyFloat ? Value(l.asDouble() + r.asDouble()) : Value(l.asInt() + r.asInt());
    if (l.isString() && r.isString()) return Value(l.asString() + r.asString());
    if (l.isList() && r.isList() && l.isTuple() == r.isTuple()) {
      std::vector<Value> items = l.items();
      items.insert(items.end(), r.items().begin(), r.items().end());
      return l.isTuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    if (l.isString()) throw TemplateError("can only concatenate str (not \"" + r.typeName() + "\") to str");
    unsupportedOperands(op, l, r);
  }
  if (op == "-") {
    if (numbers) return anyFloat ? Value(l.asDouble() - r.asDouble()) : Value(l.asInt() - r.asInt());
    unsupportedOperands(op, l, r);
  }
  if (op == "*") {
    if (numbers) return anyFloat ? Value(l.asDouble() * r.asDouble()) : Value(l.asInt() * r.asInt());
    const Value* seq = l.isString() || l.isList() ? &l : r.isString() || r.isList() ? &r : nullptr;
    const Value* count = seq == &l ? &r : &l;
    if (seq && (count->isInt() || count->isBool())) {
      int64_t n = std::max<int64_t>(0, count->asInt());
      if (seq->isString()) {
        if (static_cast<double>(seq->asString().size()) * static_cast<double>(n) > 1e8) throw TemplateError("string repetition too large");
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq->asString();
        return Value(std::move(out));
      }
      if (static_cast<double>(seq->items().size()) * static_cast<double>(n) > 1e7) throw TemplateError("list repetition too large");
      std::vector<Value> items;
      for (int64_t i = 0; i < n; ++i) items.insert(items.end(), seq->items().begin(), seq->items().end());
      return seq->isTuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    unsupportedOperands(op, l, r);
  }
  if (op == "/") {
    if (!numbers) unsupportedOperands(op, l, r);
    if (r.asDouble() == 0) throw TemplateError("division by zero");
    return Value(l.asDouble() / r.asDouble());
  }
  if (op == "//") {
    if (!numbers) unsupportedOperands(op, l, r);
    if (r.asDouble() == 0) throw TemplateError("integer division or modulo by zero");
    if (anyFloat) return Value(std::floor(l.asDouble() / r.asDouble()));
    return Value(floorDiv(l.asInt(), r.asInt()));
  }
  if (op == "%") {
    if (l.isString()) return Value(percentFormat(l.asString(), r.isTuple() ? r.items() : std::vector<Value>{r}));
    if (!numbers) unsupportedOperands(op, l, r);
    if (r.asDouble() == 0) throw TemplateError("integer division or modulo by zero");
    if (anyFloat) {
      double m = std::fmod(l.asDouble(), r.asDouble());
      if (m != 0 && ((m < 0) != (r.asDouble() < 0))) m += r.asDouble();
      return Value(m);
    }
    return Value(floorMod(l.asInt(), r.asInt()));
  }
  if (op == "**") {
    if (!numbers) unsupportedOperands(op, l, r);
    if (!anyFloat && r.asInt() >= 0) {
      // Exponentiation by squaring; wraps on overflow (Python's ints would not).
      uint64_t result = 1, base = static_cast<uint64_t>(l.asInt());
      for (int64_t ex = r.asInt(); ex > 0; ex >>= 1) {
        if (ex & 1) result *= base;
        base *= base;
      }
      return Value(static_cast<int64_t>(result));
    }
    return Value(std::pow(l.asDouble(), r.asDouble()));
  }
  throw TemplateError("unknown operator '" + op + "'");
}

Value Interpreter::evalCompare(const Expr& e, const ScopePtr& scope) {
  Value left = eval(*e.children[0], scope);
  for (std::size_t i = 0; i < e.ops.size(); ++i) {
    Value right = eval(*e.children[i + 1], scope);
    line_ = e.line;
    const std::string& op = e.ops[i];
    bool ok;
    if (op == "==") ok = equals(left, right);
    else if (op == "!=") ok = !equals(left, right);
    else if (op == "<") ok = lessThan(left, right);
    else if (op == ">") ok = lessThan(right, left);
    else if (op == "<=") ok = lessThan(left, right) || equals(left, right);
    else if (op == ">=") ok = lessThan(right, left) || equals(left, right);
    else if (op == "in") ok = contains(right, left);
    else ok = !contains(right, left);
    if (!ok) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

}  // namespace pagedc::jinja
