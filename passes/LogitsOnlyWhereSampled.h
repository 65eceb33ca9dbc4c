// Computes the LM head only for the tokens whose logits are sampled: a Gather by `logits_indices`
// moves in front of the vocabulary projection, so prefill chunks pay for one row per sequence.
#pragma once

#include "ir/Graph.h"

namespace pagedc {

// Expects the ragged form (ir/RaggedInterface.h) with `logits` f32[1, num_tokens, vocab]; leaves
// `logits` f32[num_logits, vocab]. Throws Error when the path from the hidden states to the logits
// is not per-token.
void computeLogitsOnlyWhereSampled(Graph& graph);

}  // namespace pagedc
