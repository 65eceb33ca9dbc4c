// Block tables, on-demand allocation, copy-on-write, prefix reuse, swapping and the invariants
// that tie them to the pools.
#include "runtime/BlockManager.h"

#include <algorithm>
#include <unordered_set>

#include "ir/Error.h"

namespace pagedc {

namespace {
int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

BlockManager::BlockManager(const BlockManagerConfig& config)
    : config_(config), device_("device", config.numDeviceBlocks), host_("host", config.numHostBlocks) {
  if (config.blockSize <= 0) fail("block manager: block size must be positive, got ", config.blockSize);
  if (config.watermark < 0 || config.watermark >= 1)
    fail("block manager: watermark must be in [0, 1), got ", config.watermark);
}

BlockManager::Sequence& BlockManager::get(SeqId seq, const char* op) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) fail("block manager: ", op, ": unknown sequence ", seq, " (never added or already freed)");
  return it->second;
}

const BlockManager::Sequence& BlockManager::get(SeqId seq, const char* op) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) fail("block manager: ", op, ": unknown sequence ", seq, " (never added or already freed)");
  return it->second;
}

int64_t BlockManager::watermarkBlocks() const {
  return static_cast<int64_t>(config_.watermark * static_cast<double>(config_.numDeviceBlocks));
}

std::vector<BlockManager::CachedBlock> BlockManager::findCachedPrefix(std::span<const TokenId> prompt) const {
  std::vector<CachedBlock> found;
  if (!config_.enablePrefixCaching) return found;
  const int64_t bs = config_.blockSize;
  // Only blocks wholly inside prompt[0, n - 1): the last prompt token is always computed so that
  // the step produces its logits, and its block is then written, so it must not be a shared one.
  const int64_t maxBlocks = (static_cast<int64_t>(prompt.size()) - 1) / bs;
  PrefixHash parentHash = kRootPrefixHash;
  PrefixEntryId parentEntry = kRootPrefixEntry;
  for (int64_t i = 0; i < maxBlocks; ++i) {
    auto tokens = prompt.subspan(static_cast<size_t>(i * bs), static_cast<size_t>(bs));
    PrefixHash hash = hashBlockTokens(parentHash, tokens);
    auto hit = cache_.lookup(hash, parentEntry, tokens);
    if (!hit) break;
    found.push_back({*hit, hash});
    parentHash = hash;
    parentEntry = hit->entry;
  }
  return found;
}

int64_t BlockManager::blocksNeededToAdd(std::span<const TokenId> prompt) const {
  auto cached = findCachedPrefix(prompt);
  int64_t fresh = ceilDiv(static_cast<int64_t>(prompt.size()), config_.blockSize) - static_cast<int64_t>(cached.size());
  // An evictable hit leaves the evictable set when it is reused, so it counts against what is available.
  int64_t evictableHits = std::ranges::count_if(cached, [&](const CachedBlock& c) { return cache_.isEvictable(c.hit.block); });
  return fresh + evictableHits;
}

bool BlockManager::canAllocate(int64_t numTokens) const {
  if (numTokens < 0) fail("block manager: canAllocate: negative token count ", numTokens);
  return ceilDiv(numTokens, config_.blockSize) <= numAvailableBlocks() - watermarkBlocks();
}

bool BlockManager::canAddSequence(std::span<const TokenId> prompt, bool usePrefixCache) const {
  if (!usePrefixCache) return canAllocate(static_cast<int64_t>(prompt.size()));
  return blocksNeededToAdd(prompt) <= numAvailableBlocks() - watermarkBlocks();
}

int64_t BlockManager::addSequence(SeqId seq, std::span<const TokenId> prompt, bool usePrefixCache) {
  if (hasSequence(seq)) fail("block manager: addSequence: sequence ", seq, " already exists");
  if (prompt.empty()) fail("block manager: addSequence: sequence ", seq, " has an empty prompt");
  auto cached = usePrefixCache ? findCachedPrefix(prompt) : std::vector<CachedBlock>{};
  Sequence s;
  s.tokens.assign(prompt.begin(), prompt.end());
  for (const CachedBlock& c : cached) {
    if (cache_.isEvictable(c.hit.block)) cache_.markInUse(c.hit.block);
    device_.incRef(c.hit.block);
    s.table.push_back(c.hit.block);
    s.fullHashes.push_back(c.hash);
    s.fullEntries.push_back(c.hit.entry);
  }
  s.numComputed = static_cast<int64_t>(cached.size()) * config_.blockSize;
  if (config_.enablePrefixCaching && usePrefixCache) {
    prefixQueryTokens_ += static_cast<int64_t>(prompt.size());
    prefixHitTokens_ += s.numComputed;
  }
  int64_t numCached = s.numComputed;
  seqs_.emplace(seq, std::move(s));
  return numCached;
}

void BlockManager::appendTokens(SeqId seq, std::span<const TokenId> tokens) {
  Sequence& s = get(seq, "appendTokens");
  if (s.swapped) fail("block manager: appendTokens: sequence ", seq, " is swapped out");
  s.tokens.insert(s.tokens.end(), tokens.begin(), tokens.end());
}

int64_t BlockManager::blocksNeededToAppend(SeqId seq, int64_t n) const {
  const Sequence& s = get(seq, "appendSlots");
  if (s.swapped) fail("block manager: appendSlots: sequence ", seq, " is swapped out");
  if (n < 0) fail("block manager: appendSlots: sequence ", seq, ": negative token count ", n);
  if (s.numComputed + n > static_cast<int64_t>(s.tokens.size()))
    fail("block manager: appendSlots: sequence ", seq, " asks slots for ", n, " tokens but only ",
         static_cast<int64_t>(s.tokens.size()) - s.numComputed, " known tokens lack slots");
  if (n == 0) return 0;
  const int64_t bs = config_.blockSize;
  bool copyOnWrite = s.numComputed % bs != 0 && device_.refCount(s.table.back()) > 1;
  return ceilDiv(s.numComputed + n, bs) - static_cast<int64_t>(s.table.size()) + (copyOnWrite ? 1 : 0);
}

int64_t BlockManager::blocksNeededToAppend(std::span<const SlotRequest> requests) const {
  const int64_t bs = config_.blockSize;
  int64_t needed = 0;
  std::unordered_map<BlockId, int64_t> writers;  // shared candidates: partly filled last blocks written
  std::unordered_set<SeqId> seen;
  for (const SlotRequest& r : requests) {
    blocksNeededToAppend(r.seq, r.numTokens);  // validates
    if (!seen.insert(r.seq).second) fail("block manager: appendSlots: sequence ", r.seq, " planned twice");
    if (r.numTokens == 0) continue;
    const Sequence& s = seqs_.at(r.seq);
    needed += ceilDiv(s.numComputed + r.numTokens, bs) - static_cast<int64_t>(s.table.size());
    if (s.numComputed % bs != 0) ++writers[s.table.back()];
  }
  for (const auto& [block, count] : writers) {
    int64_t refs = device_.refCount(block);
    needed += refs > count ? count : count - 1;
  }
  return needed;
}

bool BlockManager::canAppendSlots(SeqId seq, int64_t n) const {
  return blocksNeededToAppend(seq, n) <= numAvailableBlocks();
}

std::optional<BlockId> BlockManager::allocateDeviceBlock() {
  if (auto block = device_.allocate()) return block;
  if (auto block = cache_.evictLeastRecentlyUsed()) {
    device_.incRef(*block);
    ++evictions_;
    return block;
  }
  return std::nullopt;
}

void BlockManager::releaseDeviceBlock(BlockId block) {
  if (device_.decRef(block) != 0) return;
  if (cache_.isRegistered(block))
    cache_.markEvictable(block);
  else
    device_.free(block);
}

std::optional<AppendResult> BlockManager::appendSlots(SeqId seq, int64_t n) {
  if (blocksNeededToAppend(seq, n) > numAvailableBlocks()) return std::nullopt;
  Sequence& s = seqs_.at(seq);
  const int64_t bs = config_.blockSize;
  AppendResult result;
  if (n == 0) return result;
  if (s.numComputed % bs != 0 && device_.refCount(s.table.back()) > 1) {
    // Only a partly filled block is ever written; a shared one is copied first so the other
    // owners keep their tokens. The last owner to write finds refcount 1 and writes in place.
    BlockId shared = s.table.back();
    BlockId copy = *allocateDeviceBlock();
    result.copies.push_back({shared, copy});
    releaseDeviceBlock(shared);
    s.table.back() = copy;
  }
  result.slots.reserve(static_cast<size_t>(n));
  for (int64_t pos = s.numComputed; pos < s.numComputed + n; ++pos) {
    if (pos % bs == 0) s.table.push_back(*allocateDeviceBlock());
    result.slots.push_back(s.table[static_cast<size_t>(pos / bs)] * bs + pos % bs);
  }
  s.numComputed += n;
  registerFullBlocks(s);
  return result;
}

void BlockManager::registerFullBlocks(Sequence& s) {
  const int64_t bs = config_.blockSize;
  const size_t numFull = static_cast<size_t>(s.numComputed / bs);
  while (s.fullHashes.size() < numFull) {
    size_t i = s.fullHashes.size();
    if (!config_.enablePrefixCaching) {
      s.fullHashes.push_back(0);
      s.fullEntries.push_back(kNoEntry);
      continue;
    }
    PrefixHash parentHash = i == 0 ? kRootPrefixHash : s.fullHashes[i - 1];
    PrefixEntryId parentEntry = i == 0 ? kRootPrefixEntry : s.fullEntries[i - 1];
    auto tokens = std::span<const TokenId>(s.tokens).subspan(i * static_cast<size_t>(bs), static_cast<size_t>(bs));
    PrefixHash hash = hashBlockTokens(parentHash, tokens);
    PrefixEntryId entry = kNoEntry;
    // A parent entry that was evicted can never be reached by a lookup again, so registering
    // its children would only fill the cache with unreachable blocks.
    bool parentLive = parentEntry == kRootPrefixEntry || (parentEntry != kNoEntry && cache_.isLive(parentEntry));
    if (parentLive) {
      if (auto hit = cache_.lookup(hash, parentEntry, tokens)) {
        // An identical block was cached first (two requests computed the same prefix at once):
        // ours stays private and is freed normally; the prefix is named by the existing entry.
        entry = hit->entry;
      } else if (!cache_.isRegistered(s.table[i])) {
        entry = cache_.insert(s.table[i], hash, parentEntry, tokens);
      }
    }
    s.fullHashes.push_back(hash);
    s.fullEntries.push_back(entry);
  }
}

void BlockManager::fork(SeqId parent, SeqId child) {
  const Sequence& p = get(parent, "fork");
  if (p.swapped) fail("block manager: fork: parent sequence ", parent, " is swapped out");
  if (hasSequence(child)) fail("block manager: fork: child sequence ", child, " already exists");
  for (BlockId block : p.table) device_.incRef(block);
  Sequence copy = p;
  seqs_.emplace(child, std::move(copy));
}

void BlockManager::freeSequence(SeqId seq) {
  Sequence& s = get(seq, "freeSequence");
  if (s.swapped) {
    for (BlockId block : s.table)
      if (host_.decRef(block) == 0) host_.free(block);
  } else {
    // Last block first: it is the least likely to be shared by a later request, so among this
    // sequence's cached blocks it becomes evictable (and is evicted) before its prefix.
    for (auto it = s.table.rbegin(); it != s.table.rend(); ++it) releaseDeviceBlock(*it);
  }
  seqs_.erase(seq);
}

std::vector<BlockId> BlockManager::uniqueBlocks(std::span<const SeqId> group, bool swapped, const char* op) const {
  std::unordered_set<SeqId> seen;
  std::unordered_set<BlockId> blockSeen;
  std::vector<BlockId> blocks;
  for (SeqId seq : group) {
    const Sequence& s = get(seq, op);
    if (!seen.insert(seq).second) fail("block manager: ", op, ": sequence ", seq, " appears twice in the group");
    if (s.swapped != swapped)
      fail("block manager: ", op, ": sequence ", seq, swapped ? " is not swapped out" : " is already swapped out");
    for (BlockId block : s.table)
      if (blockSeen.insert(block).second) blocks.push_back(block);
  }
  return blocks;
}

bool BlockManager::canSwapOut(std::span<const SeqId> group) const {
  return static_cast<int64_t>(uniqueBlocks(group, false, "swapOut").size()) <= host_.numFree();
}

bool BlockManager::canSwapIn(std::span<const SeqId> group) const {
  return static_cast<int64_t>(uniqueBlocks(group, true, "swapIn").size()) <= numAvailableBlocks();
}

std::optional<std::vector<BlockCopy>> BlockManager::swapOut(std::span<const SeqId> group) {
  if (!canSwapOut(group)) return std::nullopt;
  std::unordered_map<BlockId, BlockId> toHost;
  std::vector<BlockCopy> copies;
  for (SeqId seq : group) {
    Sequence& s = seqs_.at(seq);
    for (BlockId& block : s.table) {
      auto it = toHost.find(block);
      BlockId hostBlock;
      if (it == toHost.end()) {
        hostBlock = *host_.allocate();
        toHost.emplace(block, hostBlock);
        copies.push_back({block, hostBlock});
      } else {
        hostBlock = it->second;
        host_.incRef(hostBlock);
      }
      // A block shared with a sequence outside the group keeps its device copy for that owner;
      // a registered one whose owners all left stays cached for prefix hits.
      releaseDeviceBlock(block);
      block = hostBlock;
    }
    s.swapped = true;
  }
  return copies;
}

std::optional<std::vector<BlockCopy>> BlockManager::swapIn(std::span<const SeqId> group) {
  if (!canSwapIn(group)) return std::nullopt;
  std::unordered_map<BlockId, BlockId> toDevice;
  std::vector<BlockCopy> copies;
  for (SeqId seq : group) {
    Sequence& s = seqs_.at(seq);
    for (BlockId& block : s.table) {
      auto it = toDevice.find(block);
      BlockId deviceBlock;
      if (it == toDevice.end()) {
        deviceBlock = *allocateDeviceBlock();
        toDevice.emplace(block, deviceBlock);
        copies.push_back({block, deviceBlock});
      } else {
        deviceBlock = it->second;
        device_.incRef(deviceBlock);
      }
      if (host_.decRef(block) == 0) host_.free(block);
      block = deviceBlock;
    }
    s.swapped = false;
  }
  return copies;
}

bool BlockManager::isSwappedOut(SeqId seq) const { return get(seq, "isSwappedOut").swapped; }

const std::vector<BlockId>& BlockManager::blockTable(SeqId seq) const { return get(seq, "blockTable").table; }

int64_t BlockManager::numComputedTokens(SeqId seq) const { return get(seq, "numComputedTokens").numComputed; }

int64_t BlockManager::numTokens(SeqId seq) const {
  return static_cast<int64_t>(get(seq, "numTokens").tokens.size());
}

std::vector<int64_t> BlockManager::slots(SeqId seq, int64_t begin, int64_t end) const {
  const Sequence& s = get(seq, "slots");
  if (s.swapped) fail("block manager: slots: sequence ", seq, " is swapped out");
  if (begin < 0 || begin > end || end > s.numComputed)
    fail("block manager: slots: range [", begin, ", ", end, ") of sequence ", seq, " outside its ",
         s.numComputed, " computed tokens");
  const int64_t bs = config_.blockSize;
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(end - begin));
  for (int64_t pos = begin; pos < end; ++pos) out.push_back(s.table[static_cast<size_t>(pos / bs)] * bs + pos % bs);
  return out;
}

std::vector<BlockId> BlockManager::evictionOrder() const {
  return {cache_.lruOrder().begin(), cache_.lruOrder().end()};
}

BlockStats BlockManager::stats() const {
  BlockStats st;
  const int64_t bs = config_.blockSize;
  st.blockSize = bs;
  st.totalBlocks = device_.numBlocks();
  st.freeBlocks = device_.numFree();
  st.cachedBlocks = cache_.numEvictable();
  st.usedBlocks = st.totalBlocks - st.freeBlocks - st.cachedBlocks;
  st.hostTotalBlocks = host_.numBlocks();
  st.hostFreeBlocks = host_.numFree();
  st.hostUsedBlocks = st.hostTotalBlocks - st.hostFreeBlocks;
  st.allocatedSlots = st.usedBlocks * bs;
  std::vector<bool> counted(static_cast<size_t>(st.totalBlocks), false);
  for (const auto& [id, s] : seqs_) {
    ++st.numSequences;
    if (s.swapped) {
      ++st.numSwappedSequences;
      continue;
    }
    st.unsharedBlocks += static_cast<int64_t>(s.table.size());
    for (size_t i = 0; i < s.table.size(); ++i) {
      if (counted[static_cast<size_t>(s.table[i])]) continue;
      counted[static_cast<size_t>(s.table[i])] = true;
      st.usedSlots += std::min(bs, s.numComputed - static_cast<int64_t>(i) * bs);
    }
  }
  st.prefixQueryTokens = prefixQueryTokens_;
  st.prefixHitTokens = prefixHitTokens_;
  st.evictions = evictions_;
  return st;
}

void BlockManager::checkInvariants() const {
  cache_.checkInvariants();
  const int64_t bs = config_.blockSize;
  std::vector<int64_t> deviceOwners(static_cast<size_t>(device_.numBlocks()), 0);
  std::vector<int64_t> hostOwners(static_cast<size_t>(host_.numBlocks()), 0);
  // Tokens in each device block as seen by its owners: owners of a shared block must agree,
  // since any write into a shared block copies it first.
  std::vector<int64_t> fill(static_cast<size_t>(device_.numBlocks()), -1);
  for (const auto& [id, s] : seqs_) {
    if (s.numComputed > static_cast<int64_t>(s.tokens.size()))
      fail("invariant: sequence ", id, " has ", s.numComputed, " computed tokens but knows only ", s.tokens.size());
    if (static_cast<int64_t>(s.table.size()) != ceilDiv(s.numComputed, bs))
      fail("invariant: sequence ", id, " has ", s.table.size(), " blocks for ", s.numComputed, " computed tokens");
    if (s.fullHashes.size() != static_cast<size_t>(s.numComputed / bs) || s.fullEntries.size() != s.fullHashes.size())
      fail("invariant: sequence ", id, " tracks ", s.fullHashes.size(), " full-block hashes for ", s.numComputed / bs, " full blocks");
    std::unordered_set<BlockId> inTable;
    const BlockPool& pool = s.swapped ? host_ : device_;
    for (size_t i = 0; i < s.table.size(); ++i) {
      BlockId block = s.table[i];
      if (block < 0 || block >= pool.numBlocks())
        fail("invariant: sequence ", id, " names ", pool.name(), " block ", block, " outside the pool");
      if (!inTable.insert(block).second) fail("invariant: sequence ", id, " names block ", block, " twice");
      if (s.swapped) {
        ++hostOwners[static_cast<size_t>(block)];
        continue;
      }
      ++deviceOwners[static_cast<size_t>(block)];
      int64_t tokens = std::min(bs, s.numComputed - static_cast<int64_t>(i) * bs);
      int64_t& seen = fill[static_cast<size_t>(block)];
      if (seen != -1 && seen != tokens)
        fail("invariant: device block ", block, " is shared by owners that hold ", seen, " and ", tokens, " tokens in it");
      seen = tokens;
      if (cache_.isRegistered(block) && tokens != bs)
        fail("invariant: cached block ", block, " is only partly filled in sequence ", id);
    }
  }
  int64_t numFree = 0, numCached = 0, numOwned = 0;
  for (BlockId block = 0; block < device_.numBlocks(); ++block) {
    int64_t refs = device_.refCount(block);
    if (refs != deviceOwners[static_cast<size_t>(block)])
      fail("invariant: device block ", block, " has refcount ", refs, " but ", deviceOwners[static_cast<size_t>(block)], " owners");
    bool isFree = device_.isFree(block);
    bool evictable = cache_.isEvictable(block);
    if (refs > 0) {
      if (isFree || evictable) fail("invariant: device block ", block, " is owned and also ", isFree ? "free" : "evictable");
      ++numOwned;
    } else if (isFree) {
      if (cache_.isRegistered(block)) fail("invariant: free device block ", block, " is still registered in the prefix cache");
      ++numFree;
    } else if (evictable) {
      ++numCached;
    } else {
      fail("invariant: device block ", block, " is leaked: no owner, not free, not cached");
    }
  }
  if (numFree != device_.numFree()) fail("invariant: ", numFree, " device blocks are free but the free list holds ", device_.numFree());
  if (numCached != cache_.numEvictable()) fail("invariant: ", numCached, " cached blocks but the LRU holds ", cache_.numEvictable());
  if (numFree + numCached + numOwned != device_.numBlocks())
    fail("invariant: free ", numFree, " + cached ", numCached, " + owned ", numOwned, " != ", device_.numBlocks(), " device blocks");
  int64_t hostFree = 0;
  for (BlockId block = 0; block < host_.numBlocks(); ++block) {
    int64_t refs = host_.refCount(block);
    if (refs != hostOwners[static_cast<size_t>(block)])
      fail("invariant: host block ", block, " has refcount ", refs, " but ", hostOwners[static_cast<size_t>(block)], " owners");
    if ((refs == 0) != host_.isFree(block)) fail("invariant: host block ", block, " with refcount ", refs, " is ", host_.isFree(block) ? "" : "not ", "free");
    hostFree += refs == 0 ? 1 : 0;
  }
  if (hostFree != host_.numFree()) fail("invariant: ", hostFree, " host blocks are free but the free list holds ", host_.numFree());
}

}  // namespace pagedc
