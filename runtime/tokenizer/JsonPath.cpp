// Typed access to tokenizer.json with JSON paths in the errors (JsonPath.h).
#include "runtime/tokenizer/JsonPath.h"

#include "ir/Error.h"

namespace pagedc::tokenizer {

void Loader::bad(const std::string& path, const std::string& what) const { fail(source, ": ", path, " ", what); }

const json& Loader::field(const json& j, const std::string& path, const char* key) const {
  if (!j.is_object()) bad(path, "is not an object");
  auto it = j.find(key);
  if (it == j.end()) bad(path + "." + key, "is missing");
  return *it;
}

std::string Loader::string(const json& j, const std::string& path) const {
  if (!j.is_string()) bad(path, "is not a string");
  return j.get<std::string>();
}

std::string Loader::stringField(const json& j, const std::string& path, const char* key) const {
  return string(field(j, path, key), path + "." + key);
}

bool Loader::boolOr(const json& j, const std::string& path, const char* key, bool fallback) const {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) bad(path + "." + key, "is not a boolean");
  return it->get<bool>();
}

int64_t Loader::integer(const json& j, const std::string& path) const {
  if (!j.is_number_integer()) bad(path, "is not an integer");
  return j.get<int64_t>();
}

int32_t Loader::id(const json& j, const std::string& path) const {
  const int64_t v = integer(j, path);
  if (v < 0 || v > INT32_MAX) bad(path, "is not a valid token id");
  return static_cast<int32_t>(v);
}

std::string Loader::type(const json& j, const std::string& path) const {
  return stringField(j, path, "type");
}

void Loader::unsupported(const std::string& path, const std::string& type) const {
  bad(path + ".type", "'" + type + "' is not supported");
}

std::shared_ptr<Regex> Loader::pattern(const json& j, const std::string& path, std::string* literal) const {
  const json& p = field(j, path, "pattern");
  if (p.is_object() && p.contains("String")) {
    const std::string s = string(p["String"], path + ".pattern.String");
    if (literal) *literal = s;
    return std::make_shared<Regex>(s, true, source + ": " + path + ".pattern.String");
  }
  if (p.is_object() && p.contains("Regex"))
    return std::make_shared<Regex>(string(p["Regex"], path + ".pattern.Regex"), false,
                                   source + ": " + path + ".pattern.Regex");
  bad(path + ".pattern", "must be {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace pagedc::tokenizer
