// First-fit contiguous allocation over a KV budget's token slots (runtime/KvReservation.h).
#include "runtime/KvReservation.h"

#include <algorithm>
#include <iterator>

#include "ir/Error.h"

namespace pagedc {

KvReservation::KvReservation(int64_t capacity) : capacity_(capacity) {
  if (capacity < 0) fail("KV reservation: capacity must be >= 0, got ", capacity);
  if (capacity > 0) free_[0] = capacity;
}

std::optional<int64_t> KvReservation::reserve(int64_t n) {
  if (n < 1) fail("KV reservation: a reservation needs at least one slot, got ", n);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < n) continue;
    const int64_t offset = it->first;
    const int64_t rest = it->second - n;
    free_.erase(it);
    if (rest > 0) free_[offset + n] = rest;
    taken_[offset] = n;
    reserved_ += n;
    return offset;
  }
  return std::nullopt;
}

void KvReservation::release(int64_t offset) {
  auto it = taken_.find(offset);
  if (it == taken_.end()) fail("KV reservation: no reservation starts at slot ", offset);
  int64_t begin = offset, length = it->second;
  taken_.erase(it);
  reserved_ -= length;
  // Merge with the free neighbours on either side, so free ranges stay maximal.
  auto next = free_.lower_bound(begin);
  if (next != free_.end() && next->first == begin + length) {
    length += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == begin) {
      begin = prev->first;
      length += prev->second;
      free_.erase(prev);
    }
  }
  free_[begin] = length;
}

int64_t KvReservation::largestFreeRange() const {
  int64_t largest = 0;
  for (const auto& [offset, length] : free_) largest = std::max(largest, length);
  return largest;
}

void KvReservation::checkInvariants() const {
  // Walk free and taken ranges in offset order: they must tile [0, capacity) exactly.
  auto f = free_.begin();
  auto t = taken_.begin();
  int64_t at = 0, reserved = 0;
  bool lastWasFree = false;
  while (f != free_.end() || t != taken_.end()) {
    const bool takeFree = t == taken_.end() || (f != free_.end() && f->first < t->first);
    const auto& [offset, length] = takeFree ? *f : *t;
    if (offset != at) fail("KV reservation: range at ", offset, " should start at ", at, " (gap or overlap)");
    if (length < 1) fail("KV reservation: empty range at ", offset);
    if (takeFree && lastWasFree) fail("KV reservation: free ranges adjacent at ", offset, " (not merged)");
    lastWasFree = takeFree;
    if (!takeFree) reserved += length;
    at = offset + length;
    if (takeFree) ++f;
    else ++t;
  }
  if (at != capacity_) fail("KV reservation: ranges end at ", at, ", capacity ", capacity_);
  if (reserved != reserved_) fail("KV reservation: reserved slots ", reserved_, " but ranges hold ", reserved);
}

}  // namespace pagedc
