// The prefix cache: full KV blocks found by a chained hash of their token ids, and the LRU order
// in which unreferenced cached blocks are evicted.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "runtime/BlockPool.h"

namespace pagedc {

using TokenId = int64_t;
using PrefixHash = uint64_t;

// The hash that a sequence's first block chains from (FNV-1a's 64-bit offset basis).
inline constexpr PrefixHash kRootPrefixHash = 0xcbf29ce484222325ull;

// FNV-1a (64-bit) over the parent block's hash and then the block's token ids, each as 8
// little-endian bytes, so the hash of a block names the whole prefix up to and including it and
// is the same on every platform and run (std::hash is neither).
PrefixHash hashBlockTokens(PrefixHash parent, std::span<const TokenId> tokens);

// A cache entry's identity, never reused: entry ids rather than hashes chain a block to its
// parent, so a hit is exact even when two prefixes' hashes collide. 0 is the root (no parent).
using PrefixEntryId = uint64_t;
inline constexpr PrefixEntryId kRootPrefixEntry = 0;

struct PrefixHit {
  BlockId block;
  PrefixEntryId entry;
};

// Which blocks hold which full-block prefixes, and which of them are evictable. A registered
// block is either owned (some sequence uses it; the manager knows) or evictable (refcount 0,
// held off the pool's free list and kept in LRU order here). The cache never touches the pool.
class PrefixCache {
public:
  // The registered block holding `tokens` after the prefix identified by `parent`, if any. The
  // hash only narrows the search: the tokens and the parent entry are compared too.
  std::optional<PrefixHit> lookup(PrefixHash hash, PrefixEntryId parent, std::span<const TokenId> tokens) const;
  // Registers a full block (which must not be registered already) and returns its new entry.
  PrefixEntryId insert(BlockId block, PrefixHash hash, PrefixEntryId parent, std::span<const TokenId> tokens);
  bool isRegistered(BlockId block) const { return entries_.count(block) != 0; }
  // Whether `entry` still names a registered block.
  bool isLive(PrefixEntryId entry) const;

  // A registered block lost its last owner: it becomes the most recently used evictable block.
  void markEvictable(BlockId block);
  // A registered evictable block gains an owner again (a prefix hit): it is no longer evictable.
  void markInUse(BlockId block);
  bool isEvictable(BlockId block) const { return lruPos_.count(block) != 0; }
  // Unregisters the least recently used evictable block and returns it (still held, refcount 0)
  // for reuse; nullopt when nothing is evictable.
  std::optional<BlockId> evictLeastRecentlyUsed();
  // Evictable blocks, least recently used first (for tests and invariant checks).
  const std::list<BlockId>& lruOrder() const { return lru_; }

  int64_t numRegistered() const { return static_cast<int64_t>(entries_.size()); }
  int64_t numEvictable() const { return static_cast<int64_t>(lru_.size()); }

  // Internal consistency (hash index, entries and LRU agree); throws Error naming the mismatch.
  void checkInvariants() const;

private:
  struct Entry {
    PrefixEntryId id;
    PrefixHash hash;
    PrefixEntryId parent;
    std::vector<TokenId> tokens;
  };
  void unregister(BlockId block);

  PrefixEntryId nextEntry_ = kRootPrefixEntry + 1;
  std::unordered_map<BlockId, Entry> entries_;
  // Several blocks may share a hash (a collision); each is told apart by tokens and parent.
  std::unordered_multimap<PrefixHash, BlockId> byHash_;
  std::unordered_map<PrefixEntryId, BlockId> byEntry_;
  std::list<BlockId> lru_;
  std::unordered_map<BlockId, std::list<BlockId>::iterator> lruPos_;
};

}  // namespace pagedc
