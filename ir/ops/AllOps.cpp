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
  registerSliceOps(registry);
  registerIndexingOps(registry);
  registerGeneratorOps(registry);
  registerNormalizationOps(registry);
  registerAttentionOps(registry);
  registerGroupQueryAttention(registry);
  registerRotaryEmbeddingOps(registry);
  registerGeluContribOps(registry);
  registerQuantizationOps(registry);
  registerPagedAttentionOps(registry);
  registerFusedOps(registry);
}

}  // namespace pagedc
