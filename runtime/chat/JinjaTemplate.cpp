// Jinja template: parse once, render many times; errors name the source and line.
#include "runtime/chat/JinjaTemplate.h"

#include "ir/Error.h"
#include "runtime/chat/JinjaInterpreter.h"
#include "runtime/chat/JinjaParser.h"

namespace pagedc::jinja {

Template::Template(std::string_view source, std::string sourceName, const LexerOptions& options)
    : sourceName_(std::move(sourceName)) {
  try {
    body_ = std::make_shared<const Body>(parseTemplate(lexTemplate(source, options)));
  } catch (const TemplateError& e) {
    fail(sourceName_, ", line ", e.line(), ": ", e.message());
  }
}

std::string Template::render(const Value& variables) const {
  Interpreter interpreter(variables);
  try {
    return interpreter.render(*body_);
  } catch (const TemplateError& e) {
    fail(sourceName_, ", line ", e.line(), ": ", e.message());
  }
}

}  // namespace pagedc::jinja
