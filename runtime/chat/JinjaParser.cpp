// Recursive-descent parser for Jinja statements and expressions.
#include "runtime/chat/JinjaParser.h"

#include <algorithm>
#include <initializer_list>
#include <string_view>

namespace pagedc::jinja {

namespace {

constexpr int kMaxNesting = 200;

ExprPtr makeExpr(ExprKind kind, int line) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->line = line;
  return e;
}

StmtPtr makeStmt(StmtKind kind, int line) {
  auto s = std::make_unique<Stmt>();
  s->kind = kind;
  s->line = line;
  return s;
}

class Parser {
public:
  explicit Parser(std::vector<Segment> segments) : segs_(std::move(segments)) {}

  Body parseAll() {
    Body body = parseBody({});
    if (si_ < segs_.size()) {
      const Token& t = segs_[si_].tokens[0];
      fail("unexpected '" + t.text + "'", t.line);
    }
    return body;
  }

private:
  [[noreturn]] void fail(const std::string& message, int line) { throw TemplateError("syntax error: " + message, line); }

  // --- statements ---

  std::string statementName(const Segment& s) {
    if (s.tokens.empty()) fail("empty statement block", s.line);
    if (s.tokens[0].type != TokenType::Name) fail("expected a statement name, got '" + s.tokens[0].text + "'", s.line);
    return s.tokens[0].text;
  }

  // Parses until a statement named in `ends` (left unconsumed) or the end of the template.
  Body parseBody(std::initializer_list<std::string_view> ends) {
    Body body;
    while (si_ < segs_.size()) {
      Segment& seg = segs_[si_];
      if (seg.kind == SegmentKind::Text) {
        auto s = makeStmt(StmtKind::Text, seg.line);
        s->text = std::move(seg.text);
        body.push_back(std::move(s));
        ++si_;
        continue;
      }
      if (seg.kind == SegmentKind::Output) {
        begin(seg);
        auto s = makeStmt(StmtKind::Output, seg.line);
        if (atEnd()) fail("expected an expression in {{ }}", seg.line);
        s->expr = parseTuple(true);
        expectEnd();
        body.push_back(std::move(s));
        ++si_;
        continue;
      }
      std::string name = statementName(seg);
      if (std::find(ends.begin(), ends.end(), name) != ends.end()) return body;
      body.push_back(parseStatement(seg, name));
    }
    if (ends.size() != 0) {
      std::string wanted;
      for (auto e : ends) wanted += (wanted.empty() ? "'" : ", '") + std::string(e) + "'";
      fail("unexpected end of template, expected " + wanted, segs_.empty() ? 1 : lastLine());
    }
    return body;
  }

  int lastLine() const { return segs_.back().line; }

  // Consumes the current statement segment, which must be `name` with nothing after it.
  void expectStatement(std::string_view name) {
    Segment& seg = segs_[si_];
    begin(seg);
    expectName(name);
    expectEnd();
    ++si_;
  }

  StmtPtr parseStatement(Segment& seg, const std::string& name) {
    begin(seg);
    ++ti_;
    int line = seg.line;
    if (++depth_ > kMaxNesting) fail("statements nested too deeply", line);
    StmtPtr s;
    if (name == "if") s = parseIf(line);
    else if (name == "for") s = parseFor(line);
    else if (name == "set") s = parseSet(line);
    else if (name == "macro") s = parseMacro(line);
    else if (name == "call") s = parseCallBlock(line);
    else if (name == "filter") s = parseFilterBlock(line);
    else if (name == "with") s = parseWith(line);
    else if (name == "generation") s = parseSimpleBlock(StmtKind::Generation, "endgeneration", line);
    else if (name == "break" || name == "continue") {
      if (loopDepth_ == 0) fail("'" + name + "' outside of a loop", line);
      expectEnd();
      ++si_;
      s = makeStmt(name == "break" ? StmtKind::Break : StmtKind::Continue, line);
    } else if (name == "include" || name == "extends" || name == "import" || name == "from" || name == "block" ||
               name == "do" || name == "autoescape") {
      fail("tag '" + name + "' is not supported in chat templates", line);
    } else if (name.starts_with("end") || name == "elif" || name == "else") {
      fail("unexpected '" + name + "'", line);
    } else {
      fail("unknown tag '" + name + "'", line);
    }
    --depth_;
    return s;
  }

  StmtPtr parseIf(int line) {
    auto s = makeStmt(StmtKind::If, line);
    ExprPtr cond = parseTuple(true);
    expectEnd();
    ++si_;
    while (true) {
      Body body = parseBody({"elif", "else", "endif"});
      s->branches.emplace_back(std::move(cond), std::move(body));
      Segment& seg = segs_[si_];
      std::string name = statementName(seg);
      begin(seg);
      ++ti_;
      if (name == "elif") {
        cond = parseTuple(true);
        expectEnd();
        ++si_;
        continue;
      }
      expectEnd();
      ++si_;
      if (name == "else") {
        s->elseBody = parseBody({"endif"});
        expectStatement("endif");
      }
      return s;
    }
  }

  void parseTargets(Stmt& s) {
    bool parens = skipOp("(");
    while (true) {
      s.targets.push_back(expectNameToken());
      if (!skipOp(",")) break;
      s.tupleTarget = true;
      if (peekName("in") || peekOp(")") || peekOp("=")) break;
    }
    if (parens) {
      expectOp(")");
      if (s.targets.size() == 1) s.tupleTarget = false;
    }
  }

  StmtPtr parseFor(int line) {
    auto s = makeStmt(StmtKind::For, line);
    parseTargets(*s);
    expectName("in");
    s->expr = parseTuple(false);
    if (skipName("if")) s->condition = parseExpression(true);
    if (peekName("recursive")) fail("recursive loops are not supported", line);
    expectEnd();
    ++si_;
    ++loopDepth_;
    s->body = parseBody({"else", "endfor"});
    --loopDepth_;
    if (statementName(segs_[si_]) == "else") {
      expectStatement("else");
      s->elseBody = parseBody({"endfor"});
    }
    expectStatement("endfor");
    return s;
  }

  StmtPtr parseSet(int line) {
    // {% set ns.attr = value %}
    if (ti_ + 2 < toks_->size() && (*toks_)[ti_].type == TokenType::Name && isOp((*toks_)[ti_ + 1], ".")) {
      auto s = makeStmt(StmtKind::SetAttr, line);
      s->targets.push_back(expectNameToken());
      expectOp(".");
      s->targets.push_back(expectNameToken());
      expectOp("=");
      s->expr = parseTuple(true);
      expectEnd();
      ++si_;
      return s;
    }
    auto s = makeStmt(StmtKind::Set, line);
    parseTargets(*s);
    if (skipOp("=")) {
      s->expr = parseTuple(true);
      expectEnd();
      ++si_;
      return s;
    }
    if (s->tupleTarget) fail("a block set assigns one name", line);
    s->kind = StmtKind::SetBlock;
    while (skipOp("|")) s->filters.push_back(parseFilter(nullptr));
    expectEnd();
    ++si_;
    s->body = parseBody({"endset"});
    expectStatement("endset");
    return s;
  }

  void parseParams(Stmt& s) {
    expectOp("(");
    while (!skipOp(")")) {
      if (!s.params.empty()) expectOp(",");
      if (skipOp(")")) break;
      std::string name = expectNameToken();
      ExprPtr def;
      if (skipOp("=")) def = parseExpression(true);
      s.params.emplace_back(std::move(name), std::move(def));
    }
  }

  StmtPtr parseMacro(int line) {
    auto s = makeStmt(StmtKind::Macro, line);
    s->name = expectNameToken();
    parseParams(*s);
    expectEnd();
    ++si_;
    int savedLoops = loopDepth_;
    loopDepth_ = 0;
    s->body = parseBody({"endmacro"});
    loopDepth_ = savedLoops;
    expectStatement("endmacro");
    return s;
  }

  StmtPtr parseCallBlock(int line) {
    auto s = makeStmt(StmtKind::CallBlock, line);
    if (peekOp("(")) parseParams(*s);
    s->expr = parseExpression(true);
    if (s->expr->kind != ExprKind::Call) fail("expected a call after {% call %}", line);
    expectEnd();
    ++si_;
    s->body = parseBody({"endcall"});
    expectStatement("endcall");
    return s;
  }

  StmtPtr parseFilterBlock(int line) {
    auto s = makeStmt(StmtKind::FilterBlock, line);
    do {
      s->filters.push_back(parseFilter(nullptr));
    } while (skipOp("|"));
    expectEnd();
    ++si_;
    s->body = parseBody({"endfilter"});
    expectStatement("endfilter");
    return s;
  }

  StmtPtr parseWith(int line) {
    auto s = makeStmt(StmtKind::With, line);
    while (!atEnd()) {
      if (!s->params.empty()) expectOp(",");
      std::string name = expectNameToken();
      expectOp("=");
      s->params.emplace_back(std::move(name), parseExpression(true));
    }
    ++si_;
    s->body = parseBody({"endwith"});
    expectStatement("endwith");
    return s;
  }

  StmtPtr parseSimpleBlock(StmtKind kind, std::string_view end, int line) {
    auto s = makeStmt(kind, line);
    expectEnd();
    ++si_;
    s->body = parseBody({end});
    expectStatement(end);
    return s;
  }

  // --- token stream of one segment ---

  void begin(const Segment& seg) {
    toks_ = &seg.tokens;
    ti_ = 0;
    segLine_ = seg.line;
  }
  bool atEnd() const { return ti_ >= toks_->size(); }
  const Token* peek() const { return atEnd() ? nullptr : &(*toks_)[ti_]; }
  int line() const { return atEnd() ? (toks_->empty() ? segLine_ : toks_->back().line) : (*toks_)[ti_].line; }
  static bool isOp(const Token& t, std::string_view op) { return t.type == TokenType::Operator && t.text == op; }
  bool peekOp(std::string_view op) const { return peek() && isOp(*peek(), op); }
  bool peekName(std::string_view n) const { return peek() && peek()->type == TokenType::Name && peek()->text == n; }
  bool skipOp(std::string_view op) {
    if (!peekOp(op)) return false;
    ++ti_;
    return true;
  }
  bool skipName(std::string_view n) {
    if (!peekName(n)) return false;
    ++ti_;
    return true;
  }
  std::string describeNext() const { return atEnd() ? std::string("end of statement") : "'" + peek()->text + "'"; }
  void expectOp(std::string_view op) {
    if (!skipOp(op)) fail("expected '" + std::string(op) + "', got " + describeNext(), line());
  }
  void expectName(std::string_view n) {
    if (!skipName(n)) fail("expected '" + std::string(n) + "', got " + describeNext(), line());
  }
  std::string expectNameToken() {
    if (!peek() || peek()->type != TokenType::Name) fail("expected a name, got " + describeNext(), line());
    return (*toks_)[ti_++].text;
  }
  void expectEnd() {
    if (!atEnd()) fail("expected end of tag, got '" + peek()->text + "'", line());
  }

  // --- expressions (Jinja2's precedence, lowest first) ---

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail("expression nested too deeply", p.line());
    }
    ~DepthGuard() { --p.depth_; }
  };

  // A comma-separated list becomes a tuple: {{ a, b }}, {% set a, b = 1, 2 %}.
  ExprPtr parseTuple(bool withCondExpr) {
    int l = line();
    ExprPtr first = parseExpression(withCondExpr);
    if (!peekOp(",")) return first;
    auto t = makeExpr(ExprKind::Tuple, l);
    t->children.push_back(std::move(first));
    while (skipOp(",")) {
      if (atEnd() || peekName("if") || peekOp(")")) break;
      t->children.push_back(parseExpression(withCondExpr));
    }
    return t;
  }

  ExprPtr parseExpression(bool withCondExpr) { return withCondExpr ? parseCondExpr() : parseOr(); }

  ExprPtr parseCondExpr() {
    DepthGuard g(*this);
    ExprPtr e = parseOr();
    while (peekName("if")) {
      int l = line();
      ++ti_;
      auto c = makeExpr(ExprKind::Conditional, l);
      ExprPtr cond = parseOr();
      ExprPtr otherwise;
      if (skipName("else")) otherwise = parseCondExpr();
      c->children.push_back(std::move(e));
      c->children.push_back(std::move(cond));
      c->children.push_back(std::move(otherwise));
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(std::string op, ExprPtr a, ExprPtr b, int l) {
    auto e = makeExpr(ExprKind::Binary, l);
    e->name = std::move(op);
    e->children.push_back(std::move(a));
    e->children.push_back(std::move(b));
    return e;
  }

  ExprPtr parseOr() {
    ExprPtr e = parseAnd();
    while (peekName("or")) {
      int l = line();
      ++ti_;
      e = binary("or", std::move(e), parseAnd(), l);
    }
    return e;
  }

  ExprPtr parseAnd() {
    ExprPtr e = parseNot();
    while (peekName("and")) {
      int l = line();
      ++ti_;
      e = binary("and", std::move(e), parseNot(), l);
    }
    return e;
  }

  ExprPtr parseNot() {
    if (peekName("not")) {
      DepthGuard g(*this);
      auto e = makeExpr(ExprKind::Unary, line());
      ++ti_;
      e->name = "not";
      e->children.push_back(parseNot());
      return e;
    }
    return parseCompare();
  }

  ExprPtr parseCompare() {
    int l = line();
    ExprPtr first = parseMath1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (peek() && peek()->type == TokenType::Operator &&
          (peek()->text == "==" || peek()->text == "!=" || peek()->text == "<" || peek()->text == ">" ||
           peek()->text == "<=" || peek()->text == ">=")) {
        op = peek()->text;
        ++ti_;
      } else if (peekName("in")) {
        op = "in";
        ++ti_;
      } else if (peekName("not") && ti_ + 1 < toks_->size() && (*toks_)[ti_ + 1].type == TokenType::Name &&
                 (*toks_)[ti_ + 1].text == "in") {
        op = "not in";
        ti_ += 2;
      } else {
        break;
      }
      if (!cmp) {
        cmp = makeExpr(ExprKind::Compare, l);
        cmp->children.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->children.push_back(parseMath1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr parseMath1() {
    ExprPtr e = parseConcat();
    while (peekOp("+") || peekOp("-")) {
      int l = line();
      std::string op = (*toks_)[ti_++].text;
      e = binary(op, std::move(e), parseConcat(), l);
    }
    return e;
  }

  ExprPtr parseConcat() {
    ExprPtr e = parseMath2();
    while (peekOp("~")) {
      int l = line();
      ++ti_;
      e = binary("~", std::move(e), parseMath2(), l);
    }
    return e;
  }

  ExprPtr parseMath2() {
    ExprPtr e = parsePow();
    while (peekOp("*") || peekOp("/") || peekOp("//") || peekOp("%")) {
      int l = line();
      std::string op = (*toks_)[ti_++].text;
      e = binary(op, std::move(e), parsePow(), l);
    }
    return e;
  }

  ExprPtr parsePow() {
    ExprPtr e = parseUnary(true);
    while (peekOp("**")) {
      int l = line();
      ++ti_;
      e = binary("**", std::move(e), parseUnary(true), l);
    }
    return e;
  }

  ExprPtr parseUnary(bool withFilter) {
    DepthGuard g(*this);
    ExprPtr e;
    if (peekOp("-") || peekOp("+")) {
      e = makeExpr(ExprKind::Unary, line());
      e->name = (*toks_)[ti_++].text;
      e->children.push_back(parseUnary(false));
    } else {
      e = parsePrimary();
    }
    e = parsePostfix(std::move(e));
    if (withFilter) e = parseFilterExpr(std::move(e));
    return e;
  }

  ExprPtr literal(Value v, int l) {
    auto e = makeExpr(ExprKind::Literal, l);
    e->value = std::move(v);
    return e;
  }

  ExprPtr parsePrimary() {
    int l = line();
    if (atEnd()) fail("unexpected end of expression", l);
    const Token& t = (*toks_)[ti_];
    switch (t.type) {
      case TokenType::Name: {
        ++ti_;
        if (t.text == "true" || t.text == "True") return literal(Value(true), l);
        if (t.text == "false" || t.text == "False") return literal(Value(false), l);
        if (t.text == "none" || t.text == "None") return literal(Value(None{}), l);
        auto e = makeExpr(ExprKind::Name, l);
        e->name = t.text;
        return e;
      }
      case TokenType::String: {
        std::string s;
        while (peek() && peek()->type == TokenType::String) s += (*toks_)[ti_++].text;
        return literal(Value(std::move(s)), l);
      }
      case TokenType::Integer: ++ti_; return literal(Value(t.intValue), l);
      case TokenType::Float: ++ti_; return literal(Value(t.floatValue), l);
      case TokenType::Operator: break;
    }
    if (skipOp("(")) {
      if (skipOp(")")) {
        auto e = makeExpr(ExprKind::Tuple, l);
        return e;
      }
      ExprPtr first = parseExpression(true);
      if (skipOp(")")) return first;
      auto tup = makeExpr(ExprKind::Tuple, l);
      tup->children.push_back(std::move(first));
      while (skipOp(",")) {
        if (peekOp(")")) break;
        tup->children.push_back(parseExpression(true));
      }
      expectOp(")");
      return tup;
    }
    if (skipOp("[")) {
      auto e = makeExpr(ExprKind::List, l);
      while (!skipOp("]")) {
        if (!e->children.empty()) expectOp(",");
        if (skipOp("]")) break;
        e->children.push_back(parseExpression(true));
      }
      return e;
    }
    if (skipOp("{")) {
      auto e = makeExpr(ExprKind::Dict, l);
      while (!skipOp("}")) {
        if (!e->children.empty()) expectOp(",");
        if (skipOp("}")) break;
        e->children.push_back(parseExpression(true));
        expectOp(":");
        e->children.push_back(parseExpression(true));
      }
      return e;
    }
    fail("unexpected '" + t.text + "'", l);
  }

  void parseCallArgs(Expr& call) {
    expectOp("(");
    bool first = true;
    while (!skipOp(")")) {
      if (!first) expectOp(",");
      first = false;
      if (skipOp(")")) break;
      if (peekOp("*") || peekOp("**")) fail("*args and **kwargs in calls are not supported", line());
      if (peek() && peek()->type == TokenType::Name && ti_ + 1 < toks_->size() && isOp((*toks_)[ti_ + 1], "=")) {
        std::string name = (*toks_)[ti_].text;
        ti_ += 2;
        call.keywords.emplace_back(std::move(name), parseExpression(true));
      } else {
        if (!call.keywords.empty()) fail("positional argument after a keyword argument", line());
        call.children.push_back(parseExpression(true));
      }
    }
  }

  ExprPtr parseSubscript(ExprPtr target, int l) {
    // After '[': an index or a slice.
    std::vector<ExprPtr> parts;
    bool isSlice = false;
    if (!peekOp(":")) {
      ExprPtr index = parseExpression(true);
      if (skipOp("]")) {
        auto e = makeExpr(ExprKind::GetItem, l);
        e->children.push_back(std::move(target));
        e->children.push_back(std::move(index));
        return e;
      }
      parts.push_back(std::move(index));
    } else {
      parts.push_back(nullptr);
    }
    expectOp(":");
    isSlice = true;
    parts.push_back(peekOp(":") || peekOp("]") ? nullptr : parseExpression(true));
    if (skipOp(":")) parts.push_back(peekOp("]") ? nullptr : parseExpression(true));
    else parts.push_back(nullptr);
    expectOp("]");
    auto e = makeExpr(isSlice ? ExprKind::Slice : ExprKind::GetItem, l);
    e->children.push_back(std::move(target));
    for (auto& p : parts) e->children.push_back(std::move(p));
    return e;
  }

  ExprPtr parsePostfix(ExprPtr e) {
    while (true) {
      int l = line();
      if (skipOp(".")) {
        if (peek() && peek()->type == TokenType::Integer) {
          auto g = makeExpr(ExprKind::GetItem, l);
          g->children.push_back(std::move(e));
          g->children.push_back(literal(Value(peek()->intValue), l));
          ++ti_;
          e = std::move(g);
          continue;
        }
        auto g = makeExpr(ExprKind::GetAttr, l);
        g->name = expectNameToken();
        g->children.push_back(std::move(e));
        e = std::move(g);
      } else if (skipOp("[")) {
        e = parseSubscript(std::move(e), l);
      } else if (peekOp("(")) {
        auto c = makeExpr(ExprKind::Call, l);
        c->children.push_back(std::move(e));
        parseCallArgs(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  // `| name(args)`, after the '|'.
  ExprPtr parseFilter(ExprPtr operand) {
    auto f = makeExpr(ExprKind::Filter, line());
    f->name = expectNameToken();
    while (skipOp(".")) f->name += "." + expectNameToken();
    f->children.push_back(std::move(operand));
    if (peekOp("(")) parseCallArgs(*f);
    return f;
  }

  ExprPtr parseFilterExpr(ExprPtr e) {
    while (true) {
      if (skipOp("|")) {
        e = parseFilter(std::move(e));
      } else if (peekName("is")) {
        int l = line();
        ++ti_;
        auto t = makeExpr(ExprKind::Test, l);
        t->negated = skipName("not");
        t->name = expectNameToken();
        while (skipOp(".")) t->name += "." + expectNameToken();
        t->children.push_back(std::move(e));
        if (peekOp("(")) {
          parseCallArgs(*t);
        } else if (peek() && !peekName("else") && !peekName("or") && !peekName("and") && !peekName("if") &&
                   (peek()->type != TokenType::Operator || peekOp("[") || peekOp("{")) ) {
          if (peekName("is")) fail("tests cannot be chained with 'is'", l);
          if (peek()->type != TokenType::Name || !(peek()->text == "in" || peek()->text == "not"))
            t->children.push_back(parsePostfix(parsePrimary()));
        }
        e = std::move(t);
      } else if (peekOp("(")) {
        auto c = makeExpr(ExprKind::Call, line());
        c->children.push_back(std::move(e));
        parseCallArgs(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  std::vector<Segment> segs_;
  std::size_t si_ = 0;
  const std::vector<Token>* toks_ = nullptr;
  std::size_t ti_ = 0;
  int segLine_ = 0;
  int depth_ = 0;
  int loopDepth_ = 0;
};

}  // namespace

Body parseTemplate(std::vector<Segment> segments) { return Parser(std::move(segments)).parseAll(); }

}  // namespace pagedc::jinja
