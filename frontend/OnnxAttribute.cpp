// AttributeProto decoding.
#include "frontend/OnnxAttribute.h"

#include "ir/Error.h"

namespace pagedc {

namespace {
using onnx::AttributeProto;

AttributeProto::AttributeType effectiveType(const AttributeProto& proto) {
  if (proto.type() != AttributeProto::UNDEFINED) return proto.type();
  if (proto.has_f()) return AttributeProto::FLOAT;
  if (proto.has_i()) return AttributeProto::INT;
  if (proto.has_s()) return AttributeProto::STRING;
  if (proto.has_t()) return AttributeProto::TENSOR;
  if (proto.has_g()) return AttributeProto::GRAPH;
  if (proto.floats_size()) return AttributeProto::FLOATS;
  if (proto.ints_size()) return AttributeProto::INTS;
  if (proto.strings_size()) return AttributeProto::STRINGS;
  if (proto.graphs_size()) return AttributeProto::GRAPHS;
  return AttributeProto::UNDEFINED;
}
}  // namespace

bool isSubgraphAttribute(const AttributeProto& proto) {
  AttributeProto::AttributeType type = effectiveType(proto);
  return type == AttributeProto::GRAPH || type == AttributeProto::GRAPHS;
}

Attribute attributeFromOnnx(const AttributeProto& proto, const TensorConverter& convertTensor) {
  switch (effectiveType(proto)) {
    case AttributeProto::INT: return Attribute(static_cast<int64_t>(proto.i()));
    case AttributeProto::FLOAT: return Attribute(static_cast<double>(proto.f()));
    case AttributeProto::STRING: return Attribute(proto.s());
    case AttributeProto::INTS: return Attribute(std::vector<int64_t>(proto.ints().begin(), proto.ints().end()));
    case AttributeProto::FLOATS: return Attribute(std::vector<double>(proto.floats().begin(), proto.floats().end()));
    case AttributeProto::STRINGS: return Attribute(std::vector<std::string>(proto.strings().begin(), proto.strings().end()));
    case AttributeProto::TENSOR: return Attribute(convertTensor(proto.t(), proto.t().name().empty() ? proto.name() : proto.t().name()));
    case AttributeProto::GRAPH:
    case AttributeProto::GRAPHS: fail("attribute '", proto.name(), "' is a subgraph; subgraphs (If/Loop/Scan) are not supported");
    case AttributeProto::SPARSE_TENSOR:
    case AttributeProto::SPARSE_TENSORS: fail("attribute '", proto.name(), "' is a sparse tensor, which is not supported");
    case AttributeProto::TENSORS: fail("attribute '", proto.name(), "' is a list of tensors, which is not supported");
    case AttributeProto::TYPE_PROTO:
    case AttributeProto::TYPE_PROTOS: fail("attribute '", proto.name(), "' is a type, which is not supported");
    case AttributeProto::UNDEFINED: break;
  }
  fail("attribute '", proto.name(), "' has no value");
}

}  // namespace pagedc
