// Small builders shared by the scheduler tests: sampling parameters with a max_tokens, and prompts
// of consecutive token ids.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/SamplingParams.h"
#include "runtime/SequenceGroup.h"

namespace pagedc::testing {

inline SamplingParams maxTokens(int64_t n) {
  SamplingParams p;
  p.maxTokens = n;
  return p;
}

inline std::vector<TokenId> promptOf(int64_t len, TokenId base) {
  std::vector<TokenId> p;
  for (int64_t i = 0; i < len; ++i) p.push_back(base + i);
  return p;
}

}  // namespace pagedc::testing
