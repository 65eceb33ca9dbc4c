// The engine's Detokenizer over a Hugging Face tokenizer: one IncrementalDetokenizer per sequence.
#pragma once

#include "runtime/Engine.h"
#include "runtime/tokenizer/Tokenizer.h"

namespace pagedc {

// The tokenizer must outlive the engine. Ids the tokenizer lacks (a model vocabulary padded beyond
// the tokenizer's) add no text.
Detokenizer makeDetokenizer(const Tokenizer& tokenizer);

}  // namespace pagedc
