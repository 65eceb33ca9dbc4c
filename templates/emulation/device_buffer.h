// Device memory of the CPU emulation (cuda_emulation.h): allocations between PROT_NONE guard pages,
// so a kernel's access just outside a buffer faults and the launch reports it (launch.h).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>

namespace pagedc::emu {


// Which end of a DeviceBuffer touches its guard page exactly: an access one byte past the end
// (AfterEnd) or one byte before the start (BeforeStart) faults. The other end has a guard page too,
// after up to a page minus one byte of padding.
enum class GuardSide { AfterEnd, BeforeStart };

namespace detail {

inline size_t pageSize() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

// Every live DeviceBuffer of this module, so a fault address can be described by its buffer.
struct BufferInfo {
  uintptr_t mappingStart, mappingEnd, dataStart;
  size_t bytes;
};
struct BufferRegistry {
  std::mutex mutex;
  std::map<uintptr_t, BufferInfo> byMappingStart;
};
inline BufferRegistry& bufferRegistry() {
  static BufferRegistry registry;
  return registry;
}

// What the first bytes of each guard page of a DeviceBuffer hold (read through /proc/self/mem,
// which reads PROT_NONE pages, when the faulting module's registry does not know the buffer).
struct GuardRecord {
  static constexpr uint64_t kMagic = 0x70616765646347ull;  // "pagedcG"
  uint64_t magic;
  BufferInfo info;
};

inline bool readGuardRecord(uintptr_t address, BufferInfo& info) {
  const uintptr_t page = address & ~(static_cast<uintptr_t>(pageSize()) - 1);
  FILE* memory = std::fopen("/proc/self/mem", "rb");
  if (!memory) return false;
  GuardRecord record{};
  const bool ok = fseeko(memory, static_cast<off_t>(page), SEEK_SET) == 0 && std::fread(&record, sizeof record, 1, memory) == 1 &&
                  record.magic == GuardRecord::kMagic && address >= record.info.mappingStart && address < record.info.mappingEnd;
  std::fclose(memory);
  if (ok) info = record.info;
  return ok;
}

}  // namespace detail

// Memory a kernel under emulation reads or writes: an mmap'ed region between two PROT_NONE guard
// pages, so an access just outside the buffer faults and launch() reports it. New buffers are
// filled with 0xff bytes (NaN in every float type) so reading what nobody wrote shows. Allocate
// every kernel input and output through this type (or the typed DeviceArray of the tests).
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes, GuardSide tight = GuardSide::AfterEnd) : bytes_(bytes) {
    const size_t page = detail::pageSize();
    const size_t dataPages = (bytes + page - 1) / page;
    mappingBytes_ = (dataPages + 2) * page;
    void* mapping = mmap(nullptr, mappingBytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) throw std::bad_alloc();
    mapping_ = static_cast<char*>(mapping);
    data_ = tight == GuardSide::AfterEnd ? mapping_ + page + dataPages * page - bytes : mapping_ + page;
    std::memset(data_, 0xff, bytes);
    const detail::BufferInfo info{reinterpret_cast<uintptr_t>(mapping_), reinterpret_cast<uintptr_t>(mapping_) + mappingBytes_,
                                  reinterpret_cast<uintptr_t>(data_), bytes};
    // Both guard pages carry a record of the buffer before they become inaccessible, so a module
    // that did not allocate it (a kernel's shared object) can still describe a fault in them.
    for (char* guard : {mapping_, mapping_ + mappingBytes_ - page}) {
      const detail::GuardRecord record{detail::GuardRecord::kMagic, info};
      std::memcpy(guard, &record, sizeof record);
      if (mprotect(guard, page, PROT_NONE) != 0) {
        munmap(mapping_, mappingBytes_);
        throw std::bad_alloc();
      }
    }
    auto& registry = detail::bufferRegistry();
    std::lock_guard lock(registry.mutex);
    registry.byMappingStart[info.mappingStart] = info;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    DeviceBuffer moved(std::move(other));
    swap(moved);
    return *this;
  }
  ~DeviceBuffer() { release(); }

  void* data() { return data_; }
  const void* data() const { return data_; }
  template <class T>
  T* as() {
    return static_cast<T*>(static_cast<void*>(data_));
  }
  template <class T>
  const T* as() const {
    return static_cast<const T*>(static_cast<const void*>(data_));
  }
  size_t size() const { return bytes_; }

  // Makes the buffer read-only (or writable again): a kernel writing to an input then faults.
  void setReadOnly(bool readOnly) {
    const size_t page = detail::pageSize();
    const size_t dataBytes = mappingBytes_ - 2 * page;
    if (dataBytes && mprotect(mapping_ + page, dataBytes, readOnly ? PROT_READ : PROT_READ | PROT_WRITE) != 0)
      throw std::runtime_error("DeviceBuffer::setReadOnly: mprotect failed");
  }

private:
  void swap(DeviceBuffer& other) noexcept {
    std::swap(mapping_, other.mapping_);
    std::swap(mappingBytes_, other.mappingBytes_);
    std::swap(data_, other.data_);
    std::swap(bytes_, other.bytes_);
  }
  void release() noexcept {
    if (!mapping_) return;
    {
      auto& registry = detail::bufferRegistry();
      std::lock_guard lock(registry.mutex);
      registry.byMappingStart.erase(reinterpret_cast<uintptr_t>(mapping_));
    }
    munmap(mapping_, mappingBytes_);
    mapping_ = nullptr;
  }

  char* mapping_ = nullptr;
  size_t mappingBytes_ = 0;
  char* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace pagedc::emu
