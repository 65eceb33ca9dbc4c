// Prints graphs, ops, types and attributes in the textual form (see TextFormat.h).
#include <charconv>
#include <cmath>
#include <sstream>

#include "ir/OpDef.h"
#include "ir/TextFormat.h"

namespace pagedc {

namespace {
bool isPlainNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' || c == '-';
}

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// Shortest text that reads back as the same float32; always recognisable as a float literal.
std::string formatFloat(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<float>(value));
  std::string text(buf, end);
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

std::string formatTensorElement(const Tensor& tensor, int64_t i) {
  if (isFloatingPoint(tensor.dtype())) {
    if (tensor.dtype() == DType::F64) {
      double v = tensor.elementAsDouble(i);
      if (!std::isfinite(v)) return formatFloat(v);
      char buf[64];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
      std::string text(buf, end);
      if (text.find_first_of(".e") == std::string::npos) text += ".0";
      return text;
    }
    return formatFloat(tensor.elementAsDouble(i));
  }
  if (tensor.dtype() == DType::U64) return std::to_string(static_cast<uint64_t>(tensor.elementAsInt(i)));
  return std::to_string(tensor.elementAsInt(i));
}
}  // namespace

std::string printValueName(const std::string& name) {
  bool plain = !name.empty();
  for (char c : name) plain = plain && isPlainNameChar(c);
  return plain ? "%" + name : "%" + quote(name);
}

std::string printAttribute(const Attribute& a) {
  std::string out;
  auto list = [&out](const auto& items, auto format) {
    out += "[";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + format(items[i]);
    out += "]";
  };
  switch (a.kind()) {
    case AttrKind::Int: return std::to_string(a.asInt());
    case AttrKind::Float: return formatFloat(a.asFloat());
    case AttrKind::String: return quote(a.asString());
    case AttrKind::Ints:
      if (a.asInts().empty()) return "ints[]";
      list(a.asInts(), [](int64_t v) { return std::to_string(v); });
      return out;
    case AttrKind::Floats:
      if (a.asFloats().empty()) return "floats[]";
      list(a.asFloats(), [](double v) { return formatFloat(v); });
      return out;
    case AttrKind::Strings:
      if (a.asStrings().empty()) return "strings[]";
      list(a.asStrings(), [](const std::string& v) { return quote(v); });
      return out;
    case AttrKind::Type: return std::string(dtypeName(a.asType()));
    case AttrKind::Tensor: {
      const Tensor& t = a.asTensor();
      out = "tensor<" + std::string(dtypeName(t.dtype())) + t.shapeStr() + ">[";
      for (int64_t i = 0; i < t.numElements(); ++i) out += (i ? ", " : "") + formatTensorElement(t, i);
      return out + "]";
    }
  }
  return out;
}

std::string printOp(const Op& op) {
  std::string out;
  for (size_t i = 0; i < op.results.size(); ++i) out += (i ? ", " : "") + printValueName(op.results[i]->name);
  out += " = " + op.opName() + "(";
  for (size_t i = 0; i < op.operands.size(); ++i)
    out += (i ? ", " : "") + (op.operands[i] ? printValueName(op.operands[i]->name) : std::string("none"));
  out += ")";
  if (!op.attrs.empty()) {
    out += " {";
    bool first = true;
    for (const auto& [key, value] : op.attrs) {
      out += (first ? "" : ", ") + key + " = " + printAttribute(value);
      first = false;
    }
    out += "}";
  }
  out += " : ";
  for (size_t i = 0; i < op.results.size(); ++i) out += (i ? ", " : "") + op.results[i]->type.str();
  if (!op.name.empty()) out += " loc(" + quote(op.name) + ")";
  return out;
}

std::string printGraph(const Graph& graph) {
  std::ostringstream out;
  out << "graph @" << graph.name << "(";
  for (size_t i = 0; i < graph.inputs.size(); ++i)
    out << (i ? ", " : "") << printValueName(graph.inputs[i]->name) << ": " << graph.inputs[i]->type.str();
  out << ") {\n";
  for (const auto& op : graph.ops()) out << "  " << printOp(*op) << "\n";
  out << "  return";
  for (size_t i = 0; i < graph.outputs.size(); ++i) out << (i ? ", " : " ") << printValueName(graph.outputs[i]->name);
  out << "\n}\n";
  return out.str();
}

}  // namespace pagedc
