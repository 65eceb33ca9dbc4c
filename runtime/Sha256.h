// SHA-256 digests (OpenSSL's libcrypto) of buffers and files, as lowercase hex: the artifact's checksums.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace pagedc {

// Incremental hashing, for data written piece by piece (weights.bin is hashed while it is written).
class Sha256 {
public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  // The digest of everything passed to update(), as 64 lowercase hex digits; call once.
  std::string hexDigest();

private:
  struct Context;
  std::unique_ptr<Context> context_;
};

std::string sha256Hex(const void* data, size_t size);
// Hashes a whole file through a read-only mapping; throws Error naming the file when it cannot be read.
std::string sha256File(const std::string& path);

}  // namespace pagedc
