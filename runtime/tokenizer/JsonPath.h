// Typed access to tokenizer.json with JSON paths in the errors ("tokenizer.json: model.vocab is not
// an object").
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/tokenizer/Regex.h"

namespace pagedc::tokenizer {

using json = nlohmann::json;

struct Loader {
  std::string source;

  [[noreturn]] void bad(const std::string& path, const std::string& what) const;

  const json& field(const json& j, const std::string& path, const char* key) const;
  std::string string(const json& j, const std::string& path) const;
  std::string stringField(const json& j, const std::string& path, const char* key) const;
  bool boolOr(const json& j, const std::string& path, const char* key, bool fallback) const;
  int64_t integer(const json& j, const std::string& path) const;
  int32_t id(const json& j, const std::string& path) const;
  std::string type(const json& j, const std::string& path) const;
  [[noreturn]] void unsupported(const std::string& path, const std::string& type) const;
  // {"String": s} or {"Regex": r}, as used by Split, Replace.
  std::shared_ptr<Regex> pattern(const json& j, const std::string& path, std::string* literal = nullptr) const;
};

}  // namespace pagedc::tokenizer
