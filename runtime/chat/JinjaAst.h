// The parsed form of a Jinja template: expression and statement nodes, immutable once parsed.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/chat/JinjaValue.h"

namespace pagedc::jinja {

enum class ExprKind {
  Literal,      // value
  Name,         // name
  GetAttr,      // children[0].name
  GetItem,      // children[0][children[1]]
  Slice,        // children[0][children[1]:children[2]:children[3]] (null parts omitted)
  Call,         // children[0](children[1..], keywords)
  Filter,       // children[0] | name(children[1..], keywords); children[0] null in filter blocks
  Test,         // children[0] is [not] name(children[1..], keywords)
  Unary,        // name in {"not", "-", "+"}, children[0]
  Binary,       // name in {"+", "-", "*", "/", "//", "%", "**", "~", "and", "or"}, children[0..1]
  Compare,      // children[0] ops[0] children[1] ops[1] children[2] ...
  Conditional,  // children[0] if children[1] else children[2] (null: undefined)
  List,         // [children...]
  Tuple,        // (children...)
  Dict,         // {children[0]: children[1], ...}
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind;
  int line = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
  std::vector<std::string> ops;
  bool negated = false;
};

enum class StmtKind {
  Text,         // text
  Output,       // {{ expr }}
  If,           // branches (condition, body), elseBody
  For,          // for targets in expr [if condition]: body, elseBody
  Set,          // set targets = expr
  SetAttr,      // set targets[0].targets[1] = expr
  SetBlock,     // set targets[0] [| filters]: body
  Macro,        // macro name(params): body
  CallBlock,    // call[(params)] expr: body (the body is the caller)
  FilterBlock,  // filter filters: body
  With,         // with params: body
  Break,
  Continue,
  Generation,   // transformers' {% generation %}: renders its body
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  StmtKind kind;
  int line = 0;
  std::string text;
  std::string name;
  ExprPtr expr;
  ExprPtr condition;
  std::vector<std::string> targets;
  bool tupleTarget = false;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body elseBody;
  std::vector<std::pair<std::string, ExprPtr>> params;  // default values may be null
  std::vector<ExprPtr> filters;                         // Filter nodes with a null operand
};

}  // namespace pagedc::jinja
