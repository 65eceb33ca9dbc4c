// Calls every op family's register function: the one list of what the IR can express.
#include "ir/OpDef.h"
#include "ir/ops/OpRegistration.h"

namespace pagedc {

void registerAllOps(OpRegistry& registry) {
  registerStructuralOps(registry);
  registerElementwiseOps(registry);
  registerReductionOps(registry);
  registerLinearAlgebraOps(registry);
  registerShapeOps(registry);
  registerNormalizationOps(registry);
  registerAttentionOps(registry);
  registerQuantizationOps(registry);
}

}  // namespace pagedc
