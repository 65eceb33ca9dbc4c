// Helpers for frontend tests: ModelProtos built in code and written to a private temp directory.
#pragma once

#include <onnx/onnx_pb.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include <unistd.h>

namespace pagedc::testing {

class TempDir {
public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("pagedc-onnx-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

  void writeBytes(const std::string& name, const std::string& bytes) const {
    std::filesystem::create_directories((path_ / name).parent_path());
    std::ofstream out(path_ / name, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::string write(const onnx::ModelProto& model, const std::string& name = "model.onnx") const {
    std::string bytes;
    model.SerializeToString(&bytes);
    writeBytes(name, bytes);
    return file(name);
  }

private:
  std::filesystem::path path_;
};

using DimSpec = std::variant<int64_t, std::string>;

inline onnx::ModelProto makeModel(int64_t opset = 17, const std::string& graphName = "test_graph") {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("pagedc-tests");
  auto* import = model.add_opset_import();
  import->set_domain("");
  import->set_version(opset);
  model.mutable_graph()->set_name(graphName);
  return model;
}

inline void addOpset(onnx::ModelProto& model, const std::string& domain, int64_t version) {
  auto* import = model.add_opset_import();
  import->set_domain(domain);
  import->set_version(version);
}

inline void setType(onnx::ValueInfoProto* info, int32_t elemType, const std::vector<DimSpec>& dims) {
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elemType);
  auto* shape = tensor->mutable_shape();
  for (const auto& dim : dims) {
    auto* d = shape->add_dim();
    if (const auto* value = std::get_if<int64_t>(&dim)) {
      if (*value >= 0) d->set_dim_value(*value);  // negative: a dim with neither value nor param
    } else {
      d->set_dim_param(std::get<std::string>(dim));
    }
  }
}

inline onnx::ValueInfoProto* addInput(onnx::ModelProto& model, const std::string& name, int32_t elemType, const std::vector<DimSpec>& dims) {
  auto* info = model.mutable_graph()->add_input();
  info->set_name(name);
  setType(info, elemType, dims);
  return info;
}

inline void addOutput(onnx::ModelProto& model, const std::string& name) { model.mutable_graph()->add_output()->set_name(name); }

inline onnx::NodeProto* addNode(onnx::GraphProto* graph, const std::string& opType, const std::vector<std::string>& inputs,
                                const std::vector<std::string>& outputs, const std::string& name = "") {
  auto* node = graph->add_node();
  node->set_op_type(opType);
  node->set_name(name.empty() ? "/" + opType + "_" + std::to_string(graph->node_size()) : name);
  for (const auto& input : inputs) node->add_input(input);
  for (const auto& output : outputs) node->add_output(output);
  return node;
}
inline onnx::NodeProto* addNode(onnx::ModelProto& model, const std::string& opType, const std::vector<std::string>& inputs,
                                const std::vector<std::string>& outputs, const std::string& name = "") {
  return addNode(model.mutable_graph(), opType, inputs, outputs, name);
}

inline onnx::AttributeProto* addAttr(onnx::NodeProto* node, const std::string& name) {
  auto* attr = node->add_attribute();
  attr->set_name(name);
  return attr;
}
inline void setInt(onnx::NodeProto* node, const std::string& name, int64_t value) {
  auto* attr = addAttr(node, name);
  attr->set_type(onnx::AttributeProto::INT);
  attr->set_i(value);
}
inline void setFloat(onnx::NodeProto* node, const std::string& name, float value) {
  auto* attr = addAttr(node, name);
  attr->set_type(onnx::AttributeProto::FLOAT);
  attr->set_f(value);
}
inline void setInts(onnx::NodeProto* node, const std::string& name, const std::vector<int64_t>& values) {
  auto* attr = addAttr(node, name);
  attr->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) attr->add_ints(v);
}

inline onnx::TensorProto* addInitializer(onnx::ModelProto& model, const std::string& name, int32_t dataType,
                                         const std::vector<int64_t>& dims) {
  auto* tensor = model.mutable_graph()->add_initializer();
  tensor->set_name(name);
  tensor->set_data_type(dataType);
  for (int64_t d : dims) tensor->add_dims(d);
  return tensor;
}

template <class T>
std::string bytesOf(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

}  // namespace pagedc::testing
