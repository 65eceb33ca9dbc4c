// The KV policies' names and the contiguous reservation each baseline makes per sequence.
#include "runtime/KvPolicy.h"

#include <algorithm>
#include <sstream>

#include "ir/Error.h"

namespace pagedc {

std::string_view kvPolicyName(KvPolicy policy) {
  switch (policy) {
  case KvPolicy::Paged: return "paged";
  case KvPolicy::OrcaOracle: return "orca-oracle";
  case KvPolicy::OrcaPow2: return "orca-pow2";
  case KvPolicy::OrcaMax: return "orca-max";
  case KvPolicy::Static: return "static";
  }
  return "?";
}

std::vector<KvPolicy> allKvPolicies() {
  return {KvPolicy::Paged, KvPolicy::OrcaOracle, KvPolicy::OrcaPow2, KvPolicy::OrcaMax, KvPolicy::Static};
}

KvPolicy parseKvPolicy(std::string_view name) {
  std::ostringstream valid;
  for (KvPolicy p : allKvPolicies()) {
    if (kvPolicyName(p) == name) return p;
    valid << (valid.tellp() > 0 ? ", " : "") << kvPolicyName(p);
  }
  fail("'", name, "' is not a KV policy (one of ", valid.str(), ")");
}

int64_t reservationTokens(KvPolicy policy, int64_t promptLen, int64_t maxTokens, int64_t maxModelLen) {
  if (policy == KvPolicy::Paged) return 0;
  if (promptLen < 1 || maxTokens < 1 || maxModelLen < 1)
    fail("reservation of ", kvPolicyName(policy), ": prompt length (", promptLen, "), max_tokens (", maxTokens, ") and max_model_len (",
         maxModelLen, ") must be positive");
  const int64_t exact = promptLen + maxTokens;
  switch (policy) {
  case KvPolicy::OrcaOracle: return std::min(exact, maxModelLen);
  case KvPolicy::OrcaPow2: {
    int64_t pow2 = 1;
    while (pow2 < exact) pow2 *= 2;
    return std::min(pow2, maxModelLen);
  }
  case KvPolicy::OrcaMax:
  case KvPolicy::Static:
  case KvPolicy::Paged: break;
  }
  return maxModelLen;
}

}  // namespace pagedc
