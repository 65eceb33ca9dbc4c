// The one error type the compiler raises: a message that already says what and where.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace pagedc {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Builds a message from streamable parts: fail("node ", name, ": bad axis ", axis).
template <class... Parts>
[[noreturn]] void fail(Parts&&... parts);

}  // namespace pagedc

#include <sstream>

namespace pagedc {
template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  throw Error(out.str());
}
}  // namespace pagedc
