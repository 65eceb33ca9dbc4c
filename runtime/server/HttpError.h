// An error the server answers with an HTTP status and an OpenAI-style JSON body
// ({"error": {"message", "type", "param", "code"}}), so OpenAI clients raise the matching exception.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace pagedc::server {

class HttpError : public std::runtime_error {
public:
  // type: OpenAI's error type ("invalid_request_error", "authentication_error", ...); param: the
  // request field at fault, when one is.
  HttpError(int status, std::string message, std::string type = "invalid_request_error",
            std::optional<std::string> param = std::nullopt)
      : std::runtime_error(std::move(message)), status_(status), type_(std::move(type)), param_(std::move(param)) {}

  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::optional<std::string>& param() const { return param_; }

private:
  int status_;
  std::string type_;
  std::optional<std::string> param_;
};

// 400 for a request field: the message names it.
inline HttpError badField(const std::string& field, const std::string& message) {
  return HttpError(400, message, "invalid_request_error", field);
}

// 400 for a validation message that starts with the field it is about ("temperature must be >= 0,
// got -1", "prompt[2] must be a token id ..."), as SamplingParams and the engine write them.
inline HttpError badFieldFromMessage(const std::string& message) {
  return badField(message.substr(0, message.find_first_of(" [")), message);
}

}  // namespace pagedc::server
