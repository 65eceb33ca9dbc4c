// Chained block hashes, the registry of cached full blocks, and LRU eviction.
#include "runtime/PrefixCache.h"

#include <algorithm>

#include "ir/Error.h"

namespace pagedc {

PrefixHash hashBlockTokens(PrefixHash parent, std::span<const TokenId> tokens) {
  constexpr PrefixHash kPrime = 0x100000001b3ull;
  PrefixHash hash = kRootPrefixHash;
  auto mix = [&](uint64_t word) {
    for (int byte = 0; byte < 8; ++byte) {
      hash ^= (word >> (8 * byte)) & 0xffu;
      hash *= kPrime;
    }
  };
  mix(parent);
  for (TokenId token : tokens) mix(static_cast<uint64_t>(token));
  return hash;
}

std::optional<PrefixHit> PrefixCache::lookup(PrefixHash hash, PrefixEntryId parent,
                                             std::span<const TokenId> tokens) const {
  auto [begin, end] = byHash_.equal_range(hash);
  for (auto it = begin; it != end; ++it) {
    const Entry& entry = entries_.at(it->second);
    if (entry.parent == parent && std::ranges::equal(entry.tokens, tokens)) return PrefixHit{it->second, entry.id};
  }
  return std::nullopt;
}

PrefixEntryId PrefixCache::insert(BlockId block, PrefixHash hash, PrefixEntryId parent,
                                  std::span<const TokenId> tokens) {
  if (isRegistered(block)) fail("prefix cache: block ", block, " is already registered");
  PrefixEntryId id = nextEntry_++;
  entries_.emplace(block, Entry{id, hash, parent, std::vector<TokenId>(tokens.begin(), tokens.end())});
  byHash_.emplace(hash, block);
  byEntry_.emplace(id, block);
  return id;
}

bool PrefixCache::isLive(PrefixEntryId entry) const { return byEntry_.count(entry) != 0; }

void PrefixCache::markEvictable(BlockId block) {
  if (!isRegistered(block)) fail("prefix cache: block ", block, " made evictable but it is not registered");
  if (isEvictable(block)) fail("prefix cache: block ", block, " is already evictable");
  lruPos_.emplace(block, lru_.insert(lru_.end(), block));
}

void PrefixCache::markInUse(BlockId block) {
  auto it = lruPos_.find(block);
  if (it == lruPos_.end()) fail("prefix cache: block ", block, " is not evictable");
  lru_.erase(it->second);
  lruPos_.erase(it);
}

std::optional<BlockId> PrefixCache::evictLeastRecentlyUsed() {
  if (lru_.empty()) return std::nullopt;
  BlockId block = lru_.front();
  markInUse(block);
  unregister(block);
  return block;
}

void PrefixCache::unregister(BlockId block) {
  auto it = entries_.find(block);
  auto [begin, end] = byHash_.equal_range(it->second.hash);
  for (auto h = begin; h != end; ++h) {
    if (h->second == block) {
      byHash_.erase(h);
      break;
    }
  }
  byEntry_.erase(it->second.id);
  entries_.erase(it);
}

void PrefixCache::checkInvariants() const {
  if (byHash_.size() != entries_.size() || byEntry_.size() != entries_.size())
    fail("prefix cache: ", entries_.size(), " entries but ", byHash_.size(), " hash index rows and ",
         byEntry_.size(), " entry index rows");
  for (const auto& [hash, block] : byHash_) {
    auto it = entries_.find(block);
    if (it == entries_.end() || it->second.hash != hash) fail("prefix cache: hash index names block ", block, " wrongly");
  }
  for (const auto& [id, block] : byEntry_) {
    auto it = entries_.find(block);
    if (it == entries_.end() || it->second.id != id) fail("prefix cache: entry index names block ", block, " wrongly");
  }
  if (lruPos_.size() != lru_.size()) fail("prefix cache: LRU list and its index disagree");
  for (BlockId block : lru_) {
    if (!isRegistered(block)) fail("prefix cache: evictable block ", block, " is not registered");
    if (lruPos_.count(block) != 1) fail("prefix cache: evictable block ", block, " missing from the LRU index");
  }
}

}  // namespace pagedc
