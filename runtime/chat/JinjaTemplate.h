// A parsed Jinja template (the subset of Jinja2 3.1 that chat templates use; docs/CHAT_TEMPLATE.md),
// rendered as transformers renders chat templates: sandboxed, trim_blocks and lstrip_blocks on.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "runtime/chat/JinjaAst.h"
#include "runtime/chat/JinjaLexer.h"
#include "runtime/chat/JinjaValue.h"

namespace pagedc::jinja {

class Template {
public:
  // Parses once; throws pagedc::Error "<sourceName>, line N: syntax error: ..." on a bad template.
  Template(std::string_view source, std::string sourceName, const LexerOptions& options = {});

  // Renders with `variables` (a dict). Thread-safe: each call has its own interpreter state.
  // Throws pagedc::Error "<sourceName>, line N: <problem>" (raise_exception's message, an undefined
  // value used, a type error, ...).
  std::string render(const Value& variables) const;

  const std::string& sourceName() const { return sourceName_; }

private:
  std::string sourceName_;
  std::shared_ptr<const Body> body_;
};

}  // namespace pagedc::jinja
