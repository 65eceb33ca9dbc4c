// Named weights by reference.
#include "ir/WeightStore.h"

#include "ir/Error.h"

namespace pagedc {

void WeightStore::add(const std::string& name, Tensor tensor) {
  if (!tensors_.emplace(name, std::move(tensor)).second) fail("duplicate weight '", name, "'");
}

const Tensor* WeightStore::find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> result;
  for (const auto& [name, tensor] : tensors_) result.push_back(name);
  return result;
}

size_t WeightStore::totalBytes() const {
  size_t total = 0;
  for (const auto& [name, tensor] : tensors_) total += tensor.byteSize();
  return total;
}

}  // namespace pagedc
