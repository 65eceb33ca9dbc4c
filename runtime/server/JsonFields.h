// Reads a JSON request object field by field, checking each field's type and range, and refuses
// fields it was never asked for: a misspelt parameter is an error, not silently ignored.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/server/HttpError.h"

namespace pagedc::server {

class JsonFields {
public:
  // Throws HttpError 400 when body is not an object; `what` names it in messages ("request body").
  JsonFields(const nlohmann::json& body, std::string what);

  bool has(const std::string& name) const;  // present and not null
  // The raw value (null when absent); marks the field as known.
  const nlohmann::json& raw(const std::string& name);

  std::optional<double> number(const std::string& name);
  std::optional<int64_t> integer(const std::string& name, int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  std::optional<bool> boolean(const std::string& name);
  std::optional<std::string> string(const std::string& name);
  // A string or a list of strings (OpenAI's `stop`).
  std::vector<std::string> stringOrStrings(const std::string& name);
  std::vector<int64_t> integers(const std::string& name);

  // Marks fields accepted and ignored (OpenAI fields with no effect here, e.g. `user`).
  void ignore(std::initializer_list<const char*> names);
  // Throws 400 naming the first field no reader asked for.
  void rejectUnknown() const;

private:
  [[noreturn]] void wrongType(const std::string& name, const char* expected) const;

  const nlohmann::json& body_;
  std::string what_;
  std::set<std::string> known_;
};

// A short rendering of a JSON value for error messages (long values are cut).
std::string describeJson(const nlohmann::json& value);

}  // namespace pagedc::server
