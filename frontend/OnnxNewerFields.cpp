// Decoding of newer ONNX fields that the generated 1.12 classes keep as unknown fields.
#include "frontend/OnnxNewerFields.h"

#include <google/protobuf/unknown_field_set.h>

#include "ir/Error.h"

namespace pagedc {

namespace {
std::vector<std::string> lengthDelimitedFields(const google::protobuf::Message& message, int number) {
  std::vector<std::string> result;
  const google::protobuf::UnknownFieldSet& fields = message.GetReflection()->GetUnknownFields(message);
  for (int i = 0; i < fields.field_count(); ++i) {
    const google::protobuf::UnknownField& field = fields.field(i);
    if (field.number() == number && field.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED)
      result.push_back(field.length_delimited());
  }
  return result;
}
}  // namespace

std::vector<onnx::AttributeProto> functionAttributeDefaults(const onnx::FunctionProto& function) {
  std::vector<onnx::AttributeProto> result;
  for (const std::string& bytes : lengthDelimitedFields(function, 11)) {
    onnx::AttributeProto attribute;
    if (!attribute.ParseFromString(bytes)) fail("local function '", function.name(), "': an attribute default does not parse");
    result.push_back(std::move(attribute));
  }
  return result;
}

std::string functionOverload(const onnx::FunctionProto& function) {
  auto values = lengthDelimitedFields(function, 13);
  return values.empty() ? std::string() : values.back();
}

std::string nodeOverload(const onnx::NodeProto& node) {
  auto values = lengthDelimitedFields(node, 8);
  return values.empty() ? std::string() : values.back();
}

}  // namespace pagedc
