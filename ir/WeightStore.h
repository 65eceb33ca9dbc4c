// Named weight tensors shared by a graph's `weight` ops; data stays where it was loaded (mapped files).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ir/Tensor.h"

namespace pagedc {

class WeightStore {
public:
  void add(const std::string& name, Tensor tensor);
  const Tensor* find(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  size_t size() const { return tensors_.size(); }
  std::vector<std::string> names() const;
  size_t totalBytes() const;

private:
  std::map<std::string, Tensor, std::less<>> tensors_;
};

}  // namespace pagedc
