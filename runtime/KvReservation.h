// A contiguous allocator over the token slots of a KV budget, as systems that give each request one
// chunk of KV memory (Orca, FasterTransformer) have: first fit over a list of free ranges that
// merges neighbours on release. What it cannot place although enough slots are free is external
// fragmentation. The reservation policies (runtime/KvPolicy.h) admit through it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

namespace pagedc {

class KvReservation {
public:
  // Throws Error when capacity < 0.
  explicit KvReservation(int64_t capacity);

  // The first free range of at least n slots (n >= 1) is split; returns its offset, or nullopt (and
  // no change) when no free range is long enough.
  std::optional<int64_t> reserve(int64_t n);
  // Frees the reservation starting at offset. Throws Error naming the offset when none starts there.
  void release(int64_t offset);

  int64_t capacity() const { return capacity_; }
  int64_t reservedSlots() const { return reserved_; }
  int64_t freeSlots() const { return capacity_ - reserved_; }
  int64_t largestFreeRange() const;
  int64_t numReservations() const { return static_cast<int64_t>(taken_.size()); }

  // Throws Error naming the first broken invariant: free and taken ranges disjoint, sorted, covering
  // [0, capacity), no two free ranges adjacent, reservedSlots the taken total.
  void checkInvariants() const;

private:
  int64_t capacity_ = 0;
  int64_t reserved_ = 0;
  std::map<int64_t, int64_t> free_;   // offset -> length
  std::map<int64_t, int64_t> taken_;  // offset -> length
};

}  // namespace pagedc
