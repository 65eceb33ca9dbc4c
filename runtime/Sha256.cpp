// SHA-256 through OpenSSL's EVP interface, which picks the SHA-NI / AVX2 code paths the CPU has.
#include "runtime/Sha256.h"

#include <openssl/evp.h>

#include <algorithm>

#include "ir/Error.h"
#include "ir/MappedFile.h"

namespace pagedc {

struct Sha256::Context {
  EVP_MD_CTX* ctx = nullptr;
  ~Context() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : context_(std::make_unique<Context>()) {
  context_->ctx = EVP_MD_CTX_new();
  if (!context_->ctx || EVP_DigestInit_ex(context_->ctx, EVP_sha256(), nullptr) != 1) fail("SHA-256: OpenSSL could not initialise a digest");
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t size) {
  if (size > 0 && EVP_DigestUpdate(context_->ctx, data, size) != 1) fail("SHA-256: OpenSSL digest update failed");
}

std::string Sha256::hexDigest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context_->ctx, digest, &length) != 1) fail("SHA-256: OpenSSL digest failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

std::string sha256Hex(const void* data, size_t size) {
  Sha256 hash;
  hash.update(data, size);
  return hash.hexDigest();
}

std::string sha256File(const std::string& path) {
  auto file = MappedFile::open(path);
  Sha256 hash;
  // Chunks keep each EVP call bounded; the mapping pages in sequentially either way.
  constexpr size_t kChunk = size_t(64) << 20;
  for (size_t offset = 0; offset < file->size(); offset += kChunk)
    hash.update(file->data() + offset, std::min(kChunk, file->size() - offset));
  return hash.hexDigest();
}

}  // namespace pagedc
