// A read-only memory mapping of a whole file, shared by every tensor that views into it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace pagedc {

class MappedFile {
public:
  // Maps `path` read-only; throws Error naming the file when it cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

private:
  MappedFile() = default;
  std::string path_;
  const std::byte* data_ = nullptr;  // null for an empty file: mmap cannot map zero bytes
  size_t size_ = 0;
};

}  // namespace pagedc
