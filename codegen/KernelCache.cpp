#include "codegen/KernelCache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "ir/Error.h"
#include "runtime/Sha256.h"

namespace pagedc {

namespace {

constexpr char kMagic[8] = {'P', 'G', 'D', 'C', 'K', 'R', 'N', 'L'};

// The fixed-size header of an entry file (little-endian fields on every platform pagedc runs on).
struct EntryHeader {
  char magic[8];
  uint32_t formatVersion;
  uint32_t keyLength;
  uint64_t payloadLength;
  char payloadSha256[64];  // hex
};
static_assert(sizeof(EntryHeader) == 88, "the entry header has no padding");

std::string envOr(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::string(value) : std::string();
}

bool writeAll(int fd, const void* data, size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes += written;
    size -= static_cast<size_t>(written);
  }
  return true;
}

// Reads the whole file; nullopt when it cannot be opened (a miss).
std::optional<std::vector<char>> readFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::vector<char> data;
  struct stat info {};
  if (::fstat(fd, &info) == 0 && info.st_size > 0) data.reserve(static_cast<size_t>(info.st_size));
  char buffer[1 << 16];
  while (true) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    data.insert(data.end(), buffer, buffer + got);
  }
  ::close(fd);
  return data;
}

}  // namespace

KernelCache::KernelCache(std::string dir) : dir_(dir.empty() ? defaultDir() : std::move(dir)) {}

std::string KernelCache::defaultDir() {
  if (std::string dir = envOr("PAGEDC_CACHE_DIR"); !dir.empty()) return dir;
  if (std::string xdg = envOr("XDG_CACHE_HOME"); !xdg.empty()) return xdg + "/pagedc/kernels";
  if (std::string home = envOr("HOME"); !home.empty()) return home + "/.cache/pagedc/kernels";
  return "/tmp/pagedc-cache/kernels";  // no home directory (a bare container): still per machine
}

std::string KernelCache::entryPath(const std::string& keyText) const {
  return dir_ + "/" + sha256Hex(keyText.data(), keyText.size()) + ".bin";
}

void KernelCache::debug(const std::string& message) const {
  if (debug_) {
    debug_(message);
    return;
  }
  static const bool enabled = [] {
    const std::string value = envOr("PAGEDC_DEBUG");
    return !value.empty() && value != "0";
  }();
  if (enabled) std::cerr << "pagedc: kernel cache: " << message << "\n";
}

std::optional<std::vector<char>> KernelCache::load(const std::string& keyText) const {
  const std::string path = entryPath(keyText);
  std::optional<std::vector<char>> file = readFile(path);
  if (!file) return std::nullopt;
  // Checks the entry; on any mismatch reports why, removes it and misses, so the caller rebuilds.
  auto damaged = [&](const std::string& why) -> std::optional<std::vector<char>> {
    std::error_code error;
    std::filesystem::remove(path, error);
    debug("damaged entry " + path + " (" + why + ")" + (error ? ", and it could not be removed: " + error.message() : ", removed; rebuilding"));
    return std::nullopt;
  };
  if (file->size() < sizeof(EntryHeader)) return damaged("shorter than the header: " + std::to_string(file->size()) + " bytes");
  EntryHeader header{};
  std::memcpy(&header, file->data(), sizeof header);
  if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0) return damaged("not a pagedc kernel cache entry");
  if (header.formatVersion != kFormatVersion) {
    return damaged("format version " + std::to_string(header.formatVersion) + ", expected " + std::to_string(kFormatVersion));
  }
  const uint64_t expected = sizeof(EntryHeader) + uint64_t{header.keyLength} + header.payloadLength;
  if (expected != file->size()) {
    return damaged("size " + std::to_string(file->size()) + " bytes, the header says " + std::to_string(expected));
  }
  const char* key = file->data() + sizeof(EntryHeader);
  if (std::string_view(key, header.keyLength) != keyText) return damaged("it holds another key");
  const char* payload = key + header.keyLength;
  const std::string digest = sha256Hex(payload, header.payloadLength);
  if (std::memcmp(digest.data(), header.payloadSha256, sizeof header.payloadSha256) != 0) return damaged("payload checksum mismatch");
  return std::vector<char>(payload, payload + header.payloadLength);
}

void KernelCache::store(const std::string& keyText, const std::vector<char>& payload) const {
  std::error_code error;
  std::filesystem::create_directories(dir_, error);
  if (error) fail("kernel cache: cannot create the directory ", dir_, ": ", error.message());
  const std::string path = entryPath(keyText);
  // A name no other process or thread uses: pid + a per-process counter.
  static std::atomic<uint64_t> counter{0};
  const std::string temporary = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  EntryHeader header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.formatVersion = kFormatVersion;
  header.keyLength = static_cast<uint32_t>(keyText.size());
  header.payloadLength = payload.size();
  const std::string digest = sha256Hex(payload.data(), payload.size());
  std::memcpy(header.payloadSha256, digest.data(), sizeof header.payloadSha256);

  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail("kernel cache: cannot create ", temporary, ": ", std::strerror(errno));
  const bool written = writeAll(fd, &header, sizeof header) && writeAll(fd, keyText.data(), keyText.size()) &&
                       writeAll(fd, payload.data(), payload.size()) && ::fsync(fd) == 0;
  const int writeErrno = errno;
  ::close(fd);
  if (!written) {
    ::unlink(temporary.c_str());
    fail("kernel cache: cannot write ", temporary, ": ", std::strerror(writeErrno));
  }
  // rename() replaces the entry atomically: readers see the old file or the new one, never a mix.
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int renameErrno = errno;
    ::unlink(temporary.c_str());
    fail("kernel cache: cannot rename ", temporary, " to ", path, ": ", std::strerror(renameErrno));
  }
  // Makes the rename itself durable (best effort: a crash before this only loses the entry).
  const int dirFd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd >= 0) {
    ::fsync(dirFd);
    ::close(dirFd);
  }
}

}  // namespace pagedc
