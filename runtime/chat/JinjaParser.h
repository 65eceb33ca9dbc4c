// Parses lexed Jinja segments into statements, with Jinja2's operator precedence.
#pragma once

#include <vector>

#include "runtime/chat/JinjaAst.h"
#include "runtime/chat/JinjaLexer.h"

namespace pagedc::jinja {

// Throws TemplateError (with the line) on a syntax error or an unsupported tag.
Body parseTemplate(std::vector<Segment> segments);

}  // namespace pagedc::jinja
