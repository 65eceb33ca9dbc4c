// Parses the textual form (see TextFormat.h) back into a Graph.
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>

#include "ir/Error.h"
#include "ir/OpDef.h"
#include "ir/TextFormat.h"

namespace pagedc {

namespace {

class Parser {
public:
  Parser(std::string_view text, std::string source, std::shared_ptr<WeightStore> weights)
      : text_(text), source_(std::move(source)), weights_(std::move(weights)) {}

  std::unique_ptr<Graph> parse() {
    auto graph = std::make_unique<Graph>();
    if (weights_) graph->weights = weights_;
    graph_ = graph.get();
    expectKeyword("graph");
    expect('@');
    graph->name = parseBareName("graph name");
    expect('(');
    if (!accept(')')) {
      do {
        auto [name, line, column] = parseValueName();
        expect(':');
        TensorType type = parseType();
        if (values_.count(name)) errorAt(line, column, "value %" + name + " defined twice");
        Value* input = graph->addInput(name, type);
        values_[name] = input;
      } while (accept(','));
      expect(')');
    }
    expect('{');
    for (;;) {
      skipSpace();
      if (peekKeyword("return")) break;
      parseOp();
    }
    expectKeyword("return");
    skipSpace();
    if (peek() == '%') {
      do {
        auto [name, line, column] = parseValueName();
        graph->outputs.push_back(lookup(name, line, column));
      } while (accept(','));
    }
    expect('}');
    skipSpace();
    if (pos_ != text_.size()) error("unexpected text after the graph");
    return graph;
  }

private:
  struct NameAt {
    std::string name;
    size_t line, column;
  };

  [[noreturn]] void errorAt(size_t line, size_t column, const std::string& what) const {
    fail(source_, ":", line, ":", column, ": ", what);
  }
  [[noreturn]] void error(const std::string& what) const {
    auto [line, column] = position();
    errorAt(line, column, what);
  }
  std::pair<size_t, size_t> position() const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < pos_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return {line, column};
  }

  void skipSpace() {
    for (;;) {
      while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
      if (text_.substr(pos_, 2) == "//") {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
        continue;
      }
      return;
    }
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool accept(char c) {
    skipSpace();
    if (peek() == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c)) error(std::string("expected '") + c + "'" + (pos_ < text_.size() ? std::string(", found '") + peek() + "'" : std::string(" before end of input")));
  }
  bool peekKeyword(std::string_view word) {
    skipSpace();
    if (text_.substr(pos_, word.size()) != word) return false;
    size_t end = pos_ + word.size();
    return end >= text_.size() || !(std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_');
  }
  void expectKeyword(std::string_view word) {
    if (!peekKeyword(word)) error("expected '" + std::string(word) + "'");
    pos_ += word.size();
  }
  static bool isNameChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' || c == '-';
  }
  std::string parseBareName(const char* what) {
    skipSpace();
    size_t start = pos_;
    while (pos_ < text_.size() && isNameChar(text_[pos_])) ++pos_;
    if (start == pos_) error(std::string("expected ") + what);
    return std::string(text_.substr(start, pos_ - start));
  }
  std::string parseIdentifier(const char* what) {
    skipSpace();
    size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_' || text_[pos_] == '.')) ++pos_;
    if (start == pos_) error(std::string("expected ") + what);
    return std::string(text_.substr(start, pos_ - start));
  }
  std::string parseQuoted() {
    skipSpace();
    if (peek() != '"') error("expected a string");
    ++pos_;
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) break;
      char e = text_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case 'x': {
          if (pos_ + 2 > text_.size()) error("truncated \\x escape");
          unsigned value = 0;
          auto [ptr, ec] = std::from_chars(text_.data() + pos_, text_.data() + pos_ + 2, value, 16);
          if (ec != std::errc() || ptr != text_.data() + pos_ + 2) error("bad \\x escape");
          out += static_cast<char>(value);
          pos_ += 2;
          break;
        }
        default: error(std::string("unknown escape \\") + e);
      }
    }
    if (pos_ >= text_.size()) error("unterminated string");
    ++pos_;
    return out;
  }
  NameAt parseValueName() {
    skipSpace();
    auto [line, column] = position();
    expect('%');
    std::string name = peek() == '"' ? parseQuoted() : parseBareName("a value name");
    return {name, line, column};
  }
  Value* lookup(const std::string& name, size_t line, size_t column) {
    auto it = values_.find(name);
    if (it == values_.end()) errorAt(line, column, "use of undefined value %" + name);
    return it->second;
  }

  TensorType parseType() {
    skipSpace();
    auto [line, column] = position();
    std::string dtypeText = parseIdentifier("an element type");
    auto dtype = parseDType(dtypeText);
    if (!dtype) errorAt(line, column, "unknown element type '" + dtypeText + "'");
    expect('[');
    if (accept('*')) {
      expect(']');
      return {*dtype, std::nullopt};
    }
    Shape shape;
    skipSpace();
    if (peek() != ']') {
      for (;;) {
        skipSpace();
        size_t start = pos_;
        int depth = 0;
        while (pos_ < text_.size() && (depth > 0 || (text_[pos_] != ',' && text_[pos_] != ']'))) {
          if (text_[pos_] == '(') ++depth;
          if (text_[pos_] == ')') --depth;
          ++pos_;
        }
        try {
          shape.push_back(Dim::parse(text_.substr(start, pos_ - start)));
        } catch (const Error& e) {
          pos_ = start;  // point at the dimension, the message gives the column inside it
          error(e.what());
        }
        if (!accept(',')) break;
      }
    }
    expect(']');
    return {*dtype, shape};
  }

  // Number literal: returns true for a float literal (has '.', 'e', or is inf/nan).
  bool parseNumber(int64_t& intValue, double& floatValue) {
    skipSpace();
    size_t start = pos_;
    bool negative = peek() == '-';
    if (negative) ++pos_;
    if (text_.substr(pos_, 3) == "inf") {
      pos_ += 3;
      floatValue = negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
      return true;
    }
    if (text_.substr(pos_, 3) == "nan") {
      pos_ += 3;
      floatValue = std::numeric_limits<double>::quiet_NaN();
      return true;
    }
    while (pos_ < text_.size() && (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.' ||
                                   text_[pos_] == 'e' || text_[pos_] == 'E' ||
                                   ((text_[pos_] == '-' || text_[pos_] == '+') && (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E'))))
      ++pos_;
    std::string_view literal = text_.substr(start, pos_ - start);
    if (literal.empty() || literal == "-") error("expected a number");
    bool isFloat = literal.find_first_of(".eE") != std::string_view::npos;
    const char* first = literal.data();
    const char* last = literal.data() + literal.size();
    if (isFloat) {
      auto [ptr, ec] = std::from_chars(first, last, floatValue);
      if (ec != std::errc() || ptr != last) error("malformed float '" + std::string(literal) + "'");
    } else {
      auto [ptr, ec] = std::from_chars(first, last, intValue);
      if (ec != std::errc() || ptr != last) {
        uint64_t unsignedValue = 0;
        auto [uptr, uec] = std::from_chars(first, last, unsignedValue);
        if (uec != std::errc() || uptr != last) error("malformed integer '" + std::string(literal) + "'");
        intValue = static_cast<int64_t>(unsignedValue);
      }
    }
    return isFloat;
  }

  Attribute parseAttribute() {
    skipSpace();
    if (peek() == '"') return Attribute(parseQuoted());
    if (peekKeyword("ints")) { pos_ += 4; expect('['); expect(']'); return Attribute(std::vector<int64_t>{}); }
    if (peekKeyword("floats")) { pos_ += 6; expect('['); expect(']'); return Attribute(std::vector<double>{}); }
    if (peekKeyword("strings")) { pos_ += 7; expect('['); expect(']'); return Attribute(std::vector<std::string>{}); }
    if (peekKeyword("tensor")) return Attribute(parseTensorLiteral());
    if (peek() == '[') {
      ++pos_;
      skipSpace();
      if (peek() == '"') {
        std::vector<std::string> items;
        do items.push_back(parseQuoted());
        while (accept(','));
        expect(']');
        return Attribute(std::move(items));
      }
      std::vector<int64_t> ints;
      std::vector<double> floats;
      bool anyFloat = false;
      do {
        int64_t i = 0;
        double f = 0;
        bool isFloat = parseNumber(i, f);
        anyFloat = anyFloat || isFloat;
        ints.push_back(i);
        floats.push_back(isFloat ? f : static_cast<double>(i));
      } while (accept(','));
      expect(']');
      if (anyFloat) return Attribute(std::move(floats));
      return Attribute(std::move(ints));
    }
    if (std::isalpha(static_cast<unsigned char>(peek())) && !peekKeyword("inf") && !peekKeyword("nan")) {
      auto [line, column] = position();
      std::string word = parseIdentifier("an attribute value");
      auto dtype = parseDType(word);
      if (!dtype) errorAt(line, column, "unknown attribute value '" + word + "'");
      return Attribute(*dtype);
    }
    int64_t i = 0;
    double f = 0;
    if (parseNumber(i, f)) return Attribute(f);
    return Attribute(i);
  }

  Tensor parseTensorLiteral() {
    expectKeyword("tensor");
    expect('<');
    TensorType type = parseType();
    expect('>');
    if (!type.shape) error("a tensor literal needs a shape");
    std::vector<int64_t> shape;
    for (const Dim& d : *type.shape) {
      auto c = d.constant();
      if (!c || *c < 0) error("a tensor literal needs constant dimensions");
      shape.push_back(*c);
    }
    Tensor tensor = Tensor::zeros(type.dtype, shape);
    std::byte* out = tensor.mutableBytes();
    size_t elementSize = dtypeSize(type.dtype);
    expect('[');
    int64_t count = 0;
    skipSpace();
    if (peek() != ']') {
      do {
        if (count >= tensor.numElements()) error("too many elements for tensor of shape " + tensor.shapeStr());
        int64_t i = 0;
        double f = 0;
        bool isFloat = parseNumber(i, f);
        if (type.dtype == DType::I64 || type.dtype == DType::U64) {
          if (isFloat) error("float element in an integer tensor");
          std::memcpy(out + count * elementSize, &i, 8);
        } else {
          storeFromDouble(type.dtype, out + count * elementSize, isFloat ? f : static_cast<double>(i));
        }
        ++count;
      } while (accept(','));
    }
    expect(']');
    if (count != tensor.numElements())
      error("tensor of shape " + tensor.shapeStr() + " needs " + std::to_string(tensor.numElements()) + " elements, got " + std::to_string(count));
    return tensor;
  }

  void parseOp() {
    std::vector<NameAt> resultNames;
    do resultNames.push_back(parseValueName());
    while (accept(','));
    expect('=');
    skipSpace();
    auto [opLine, opColumn] = position();
    std::string opName = parseIdentifier("an op name");
    const OpDef* def = OpRegistry::instance().find(opName);
    if (!def) errorAt(opLine, opColumn, "unknown op '" + opName + "'");
    expect('(');
    std::vector<Value*> operands;
    if (!accept(')')) {
      do {
        if (peekKeyword("none")) {
          pos_ += 4;
          operands.push_back(nullptr);
          continue;
        }
        auto [name, line, column] = parseValueName();
        operands.push_back(lookup(name, line, column));
      } while (accept(','));
      expect(')');
    }
    AttrMap attrs;
    if (accept('{')) {
      if (!accept('}')) {
        do {
          skipSpace();
          auto [line, column] = position();
          std::string key = parseIdentifier("an attribute name");
          expect('=');
          if (attrs.count(key)) errorAt(line, column, "attribute '" + key + "' given twice");
          attrs.emplace(key, parseAttribute());
        } while (accept(','));
        expect('}');
      }
    }
    expect(':');
    std::vector<TensorType> types;
    do types.push_back(parseType());
    while (accept(','));
    if (types.size() != resultNames.size())
      errorAt(opLine, opColumn, opName + " defines " + std::to_string(resultNames.size()) + " results but lists " + std::to_string(types.size()) + " types");
    std::string nodeName;
    if (peekKeyword("loc")) {
      pos_ += 3;
      expect('(');
      nodeName = parseQuoted();
      expect(')');
    }
    std::vector<std::string> names;
    for (const auto& result : resultNames) {
      if (values_.count(result.name)) errorAt(result.line, result.column, "value %" + result.name + " defined twice");
      names.push_back(result.name);
    }
    Op* op = graph_->appendOp(opName, std::move(operands), std::move(attrs), names, std::move(nodeName));
    for (size_t i = 0; i < op->results.size(); ++i) {
      if (op->results[i]->name != names[i]) errorAt(resultNames[i].line, resultNames[i].column, "value %" + names[i] + " clashes with another name");
      op->results[i]->type = types[i];
      values_[names[i]] = op->results[i];
    }
  }

  std::string_view text_;
  std::string source_;
  std::shared_ptr<WeightStore> weights_;
  size_t pos_ = 0;
  Graph* graph_ = nullptr;
  std::map<std::string, Value*> values_;
};

}  // namespace

std::unique_ptr<Graph> parseGraph(std::string_view text, const std::string& sourceName, std::shared_ptr<WeightStore> weights) {
  return Parser(text, sourceName, std::move(weights)).parse();
}

}  // namespace pagedc
