// Weight dtype conversion with casts at the use sites.
#include "passes/ConvertWeightDType.h"

#include "ir/Error.h"
#include "ir/TypeInference.h"

namespace pagedc {

size_t convertWeightDType(Graph& graph, DType target) {
  if (!isFloatingPoint(target)) fail("weights can only be stored in a floating-point dtype, not ", dtypeName(target));
  if (target == DType::F32) return 0;
  auto converted = std::make_shared<WeightStore>();
  std::vector<Op*> toCast;
  for (const auto& op : graph.ops()) {
    if (op->opName() != "weight") continue;
    const std::string name = op->stringAttr("name", "");
    const Tensor* data = graph.weights->find(name);
    if (!data) fail(op->describe(), ": weight '", name, "' has no data");
    if (converted->contains(name)) fail(op->describe(), ": weight '", name, "' is referenced twice");
    if (isFloatingPoint(data->dtype()) && data->dtype() != target) {
      converted->add(name, data->convertTo(target));
      toCast.push_back(op.get());
    } else {
      converted->add(name, *data);
    }
  }
  for (Op* op : toCast) {
    Value* wide = op->result();
    DType original = wide->type.dtype;
    graph.renameValue(wide, graph.uniqueName(wide->name + "." + std::string(dtypeName(target))));
    size_t index = 0;
    while (graph.ops()[index].get() != op) ++index;
    Op* cast = graph.insertOp(index + 1, "Cast", {wide}, {{"to", original}}, {graph.uniqueName(op->stringAttr("name", "") )});
    graph.replaceAllUsesWith(wide, cast->result());
    cast->operands[0] = wide;  // replaceAllUsesWith rewired the cast's own operand too
    wide->type.dtype = target;
  }
  graph.weights = converted;
  inferTypes(graph);
  return toCast.size();
}

}  // namespace pagedc
