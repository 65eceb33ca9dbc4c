// Typed, checked access to a request's JSON fields.
#include "runtime/server/JsonFields.h"

#include <cmath>

namespace pagedc::server {

namespace {
const nlohmann::json kNull;
}

std::string describeJson(const nlohmann::json& value) {
  std::string text = value.dump();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

JsonFields::JsonFields(const nlohmann::json& body, std::string what) : body_(body), what_(std::move(what)) {
  if (!body_.is_object()) throw HttpError(400, what_ + " must be a JSON object, got " + describeJson(body_));
}

bool JsonFields::has(const std::string& name) const {
  auto it = body_.find(name);
  return it != body_.end() && !it->is_null();
}

const nlohmann::json& JsonFields::raw(const std::string& name) {
  known_.insert(name);
  auto it = body_.find(name);
  return it == body_.end() ? kNull : *it;
}

void JsonFields::wrongType(const std::string& name, const char* expected) const {
  throw badField(name, name + " must be " + expected + ", got " + describeJson(body_.at(name)));
}

std::optional<double> JsonFields::number(const std::string& name) {
  const nlohmann::json& v = raw(name);
  if (v.is_null()) return std::nullopt;
  if (!v.is_number()) wrongType(name, "a number");
  double x = v.get<double>();
  if (!std::isfinite(x)) wrongType(name, "a finite number");
  return x;
}

std::optional<int64_t> JsonFields::integer(const std::string& name, int64_t min, int64_t max) {
  const nlohmann::json& v = raw(name);
  if (v.is_null()) return std::nullopt;
  // 3.0 is accepted as 3 (JSON has one number type); 3.5 is not.
  if (v.is_number_float()) {
    double x = v.get<double>();
    if (x != std::floor(x) || std::abs(x) > 9e15) wrongType(name, "an integer");
  } else if (!v.is_number_integer()) {
    wrongType(name, "an integer");
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) wrongType(name, "an integer below 2^63");
  int64_t x = v.is_number_float() ? static_cast<int64_t>(v.get<double>()) : v.get<int64_t>();
  if (x < min || x > max) {
    std::string range = max == INT64_MAX ? ">= " + std::to_string(min) : "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    throw badField(name, name + " must be " + range + ", got " + std::to_string(x));
  }
  return x;
}

std::optional<bool> JsonFields::boolean(const std::string& name) {
  const nlohmann::json& v = raw(name);
  if (v.is_null()) return std::nullopt;
  if (!v.is_boolean()) wrongType(name, "true or false");
  return v.get<bool>();
}

std::optional<std::string> JsonFields::string(const std::string& name) {
  const nlohmann::json& v = raw(name);
  if (v.is_null()) return std::nullopt;
  if (!v.is_string()) wrongType(name, "a string");
  return v.get<std::string>();
}

std::vector<std::string> JsonFields::stringOrStrings(const std::string& name) {
  const nlohmann::json& v = raw(name);
  if (v.is_null()) return {};
  if (v.is_string()) return {v.get<std::string>()};
  if (!v.is_array()) wrongType(name, "a string or a list of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string())
      throw badField(name, name + "[" + std::to_string(i) + "] must be a string, got " + describeJson(v[i]));
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

std::vector<int64_t> JsonFields::integers(const std::string& name) {
  const nlohmann::json& v = raw(name);
  if (v.is_null()) return {};
  if (!v.is_array()) wrongType(name, "a list of integers");
  std::vector<int64_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer())
      throw badField(name, name + "[" + std::to_string(i) + "] must be an integer, got " + describeJson(v[i]));
    out.push_back(v[i].get<int64_t>());
  }
  return out;
}

void JsonFields::ignore(std::initializer_list<const char*> names) {
  for (const char* name : names) known_.insert(name);
}

void JsonFields::rejectUnknown() const {
  for (const auto& [key, value] : body_.items())
    if (!known_.count(key)) throw badField(key, "unknown field '" + key + "' in " + what_);
}

}  // namespace pagedc::server
