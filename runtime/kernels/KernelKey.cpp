#include "runtime/kernels/KernelKey.h"

#include <charconv>
#include <map>

#include "ir/Error.h"
#include "runtime/kernels/KernelCatalog.h"

namespace pagedc {

namespace {

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The C++ spelling of one template argument.
std::string templateArgument(const KernelParamSpec& spec, const std::string& value) {
  switch (spec.kind) {
    case KernelParamKind::DType:
      if (value == "f32") return "float";
      return "pagedc::" + value;  // pagedc::f16, pagedc::bf16
    case KernelParamKind::Interleaved:
      return value == "1" ? "true" : "false";
    case KernelParamKind::Activation:
      if (value == "silu") return "0";
      if (value == "gelu") return "1";
      if (value == "gelu_tanh") return "2";
      return "3";  // relu (validated)
    case KernelParamKind::BinaryOp:
      if (value == "add") return "0";
      if (value == "sub") return "1";
      if (value == "mul") return "2";
      return "3";  // div (validated)
    default:
      return value;
  }
}

}  // namespace

std::string KernelKey::str() const {
  std::string text = kernel;
  for (size_t i = 0; i < params.size(); ++i) {
    text += i == 0 ? ':' : ',';
    text += params[i].first;
    text += '=';
    text += params[i].second;
  }
  return text;
}

KernelKey KernelKey::parse(std::string_view text) {
  text = trim(text);
  const size_t colon = text.find(':');
  const std::string_view kernel = trim(text.substr(0, colon));
  if (kernel.empty()) fail("kernel key '", text, "': no kernel name before ':'");
  std::map<std::string, std::string> values;
  if (colon != std::string_view::npos) {
    std::string_view rest = text.substr(colon + 1);
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string_view item = trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (item.empty()) fail("kernel key '", text, "': empty parameter (two commas, or a trailing one)");
      const size_t equals = item.find('=');
      if (equals == std::string_view::npos) {
        fail("kernel key '", text, "': parameter '", item, "' has no value (expected name=value)");
      }
      const std::string name(trim(item.substr(0, equals)));
      const std::string value(trim(item.substr(equals + 1)));
      if (name.empty() || value.empty()) fail("kernel key '", text, "': parameter '", item, "' needs a name and a value");
      if (!values.emplace(name, value).second) fail("kernel key '", text, "': parameter '", name, "' given twice");
    }
  }
  return makeKernelKey(kernel, values);
}

bool KernelKey::hasParam(std::string_view name) const {
  for (const auto& [paramName, value] : params) {
    if (paramName == name) return true;
  }
  return false;
}

std::string KernelKey::param(std::string_view name) const {
  for (const auto& [paramName, value] : params) {
    if (paramName == name) return value;
  }
  fail("kernel key '", str(), "' has no parameter '", name, "'");
}

int64_t KernelKey::intParam(std::string_view name) const {
  const std::string value = param(name);
  int64_t result = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), result);
  if (error != std::errc() || end != value.data() + value.size()) {
    fail("kernel key '", str(), "': parameter '", name, "' is '", value, "', not an integer");
  }
  return result;
}

std::string KernelKey::templateExpression() const {
  const KernelSpec& spec = kernelSpec(kernel);
  if (spec.params.size() != params.size()) {
    fail("kernel key '", str(), "': ", kernel, " takes ", spec.params.size(), " template parameters, the key has ", params.size());
  }
  std::string text = "pagedc::" + kernel + "<";
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].first != spec.params[i].name) {
      fail("kernel key '", str(), "': parameter ", i + 1, " of ", kernel, " is '", spec.params[i].name, "', not '", params[i].first, "'");
    }
    if (i > 0) text += ", ";
    text += templateArgument(spec.params[i], params[i].second);
  }
  return text + ">";
}

std::string KernelKey::header() const { return kernelSpec(kernel).header; }

std::string KernelKey::paramsType() const { return kernelSpec(kernel).paramsType; }

}  // namespace pagedc
