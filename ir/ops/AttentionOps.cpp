// Placeholder until the op family is written.
#include "ir/OpDef.h"
#include "ir/ops/OpRegistration.h"

namespace pagedc {
void registerAttentionOps(OpRegistry&) {}
}  // namespace pagedc
