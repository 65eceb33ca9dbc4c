// How KV cache memory is handed to requests: paging (blocks on demand), or one of the baselines of
// the PagedAttention paper's evaluation, which reserve one contiguous chunk per sequence at
// admission (Orca with an oracle, power-of-two or maximum-length reservation; FasterTransformer-like
// static batching). The baselines run in the same scheduler and engine as paging, so a benchmark's
// differences come from memory management alone. docs/BENCHMARKS.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pagedc {

enum class KvPolicy {
  Paged,       // blocks allocated as tokens arrive; shared between forks; prefix caching
  OrcaOracle,  // reserves exactly prompt + output length (max_tokens) per sequence
  OrcaPow2,    // reserves prompt + output rounded up to a power of two (at most max_model_len)
  OrcaMax,     // reserves max_model_len tokens per sequence
  Static,      // reserves max_model_len per sequence; a batch runs to completion before the next is admitted
};

// "paged", "orca-oracle", "orca-pow2", "orca-max", "static".
std::string_view kvPolicyName(KvPolicy policy);
// Throws Error naming the text and the valid names.
KvPolicy parseKvPolicy(std::string_view name);
std::vector<KvPolicy> allKvPolicies();

inline bool reservesContiguously(KvPolicy policy) { return policy != KvPolicy::Paged; }

// Token slots one sequence reserves at admission under a reservation policy: prompt + maxTokens
// (oracle), that rounded up to a power of two (pow2), or maxModelLen (max, static); never more than
// maxModelLen. For Paged: 0. Throws Error on a non-positive length or maxModelLen.
int64_t reservationTokens(KvPolicy policy, int64_t promptLen, int64_t maxTokens, int64_t maxModelLen);

}  // namespace pagedc
