// The block manager: per-sequence block tables over a device pool and a host (swap) pool, with
// on-demand allocation, copy-on-write sharing between forks, prefix caching and swapping. It
// decides which block copies the runtime must do and never touches KV data itself.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "runtime/BlockPool.h"
#include "runtime/PrefixCache.h"

namespace pagedc {

using SeqId = int64_t;

struct BlockManagerConfig {
  int64_t blockSize = 16;
  int64_t numDeviceBlocks = 0;
  int64_t numHostBlocks = 0;  // swap space; 0 disables swapping (swapOut then always refuses)
  bool enablePrefixCaching = true;
  // Fraction of the device blocks that admission (canAddSequence) keeps free, so running
  // sequences can still grow for a while before anything must be preempted.
  double watermark = 0.0;
};

// A copy the runtime performs on the cache tensors (every layer's keys and values) before the
// step that uses the destination: copy-on-write within the device pool, or a swap between pools.
struct BlockCopy {
  BlockId src;
  BlockId dst;
  bool operator==(const BlockCopy&) const = default;
};

// appendSlots(seq, numTokens), as one of several planned together.
struct SlotRequest {
  SeqId seq = 0;
  int64_t numTokens = 0;
};

struct AppendResult {
  std::vector<int64_t> slots;      // block * block_size + offset for each new token, in order
  std::vector<BlockCopy> copies;   // device-to-device copies to do before the step (copy-on-write)
};

// A snapshot for metrics and benchmarks. Device blocks: used + free + cached = total.
struct BlockStats {
  int64_t blockSize = 0;
  int64_t totalBlocks = 0;
  int64_t usedBlocks = 0;    // owned by at least one sequence
  int64_t freeBlocks = 0;
  int64_t cachedBlocks = 0;  // evictable: refcount 0, contents kept for prefix hits
  int64_t hostTotalBlocks = 0;
  int64_t hostUsedBlocks = 0;
  int64_t hostFreeBlocks = 0;
  // Token slots in the used device blocks, and how many hold a token (a shared block counts once).
  int64_t allocatedSlots = 0;
  int64_t usedSlots = 0;
  // Block-table entries of the device sequences (a shared block counted once per owner): the
  // blocks they would hold if nothing were shared. usedBlocks below it is what sharing saves.
  int64_t unsharedBlocks = 0;
  int64_t fragmentedSlots() const { return allocatedSlots - usedSlots; }  // internal fragmentation
  int64_t numSequences = 0;
  int64_t numSwappedSequences = 0;
  // Prefix caching since construction: prompt tokens looked up and found cached, evicted blocks.
  int64_t prefixQueryTokens = 0;
  int64_t prefixHitTokens = 0;
  int64_t evictions = 0;
};

// Sequences are identified by the caller's ids. A sequence holds known tokens (its prompt and
// whatever appendTokens added) of which the first numComputedTokens have cache slots; appendSlots
// hands out slots for the next tokens, allocating blocks as they are needed. Running out of
// blocks is not an error: the queries and the allocating calls return false / nullopt and change
// nothing, so the scheduler can preempt. Misuse (unknown or duplicate ids, appending to a swapped
// sequence, more slots than known tokens) throws Error.
class BlockManager {
public:
  explicit BlockManager(const BlockManagerConfig& config);

  const BlockManagerConfig& config() const { return config_; }
  int64_t blockSize() const { return config_.blockSize; }

  // --- Admission ---
  // Whether numTokens fresh tokens would fit in a new sequence, ignoring prefix hits but keeping
  // the watermark.
  bool canAllocate(int64_t numTokens) const;
  // Whether the whole prompt would fit (its cached prefix counted as hits unless usePrefixCache is
  // false), keeping the watermark.
  bool canAddSequence(std::span<const TokenId> prompt, bool usePrefixCache = true) const;
  // Adds a sequence with its prompt (at least one token) and reuses the cached full blocks of
  // an identical prefix. Returns the prompt tokens already cached, which the scheduler need not
  // compute; at least the last prompt token is always left to compute so that its logits exist.
  // The cached prefix's blocks are shared, so this never needs a free block; the rest of the
  // prompt gets its slots from appendSlots, whole or in chunks (canAddSequence first checks that
  // the whole prompt fits). usePrefixCache = false skips the lookup (every prompt token is
  // computed, e.g. for prompt logprobs); computed blocks are still registered.
  int64_t addSequence(SeqId seq, std::span<const TokenId> prompt, bool usePrefixCache = true);

  // --- Growth ---
  // Adds known tokens (sampled ones) without slots; appendSlots gives them slots.
  void appendTokens(SeqId seq, std::span<const TokenId> tokens);
  // Whether appendSlots(seq, n) would succeed now.
  bool canAppendSlots(SeqId seq, int64_t n) const;
  // Blocks appendSlots(seq, n) would take from the pool (new blocks and copy-on-write copies).
  int64_t blocksNeededToAppend(SeqId seq, int64_t n) const;
  // The same for several appendSlots calls made in this order (distinct sequences): a shared, partly
  // filled block that k of them write is copied k times, or k - 1 when they are all its owners
  // (the last writer then finds it unshared).
  int64_t blocksNeededToAppend(std::span<const SlotRequest> requests) const;
  // Slots for the next n known tokens without slots, allocating blocks on demand. Writing into
  // a shared, partly filled last block first copies it (reported in copies). Full blocks are
  // registered in the prefix cache here, as their tokens are computed by this step. nullopt
  // (and no change) when the blocks cannot be had.
  std::optional<AppendResult> appendSlots(SeqId seq, int64_t n);

  // --- Sharing and release ---
  // child shares all of parent's blocks (parallel sampling, beam candidates): no copy until one
  // of them writes into a shared, partly filled block.
  void fork(SeqId parent, SeqId child);
  // Releases the sequence's blocks (device or host). Registered blocks whose last owner leaves
  // stay cached; the others become free.
  void freeSequence(SeqId seq);

  // --- Swapping ---
  bool canSwapOut(std::span<const SeqId> group) const;
  bool canSwapIn(std::span<const SeqId> group) const;
  // Moves every block of the group's sequences to the host pool (or back), each shared block once,
  // and returns the copies (device -> host, or host -> device) the runtime must do. nullopt (and
  // no change) when the other pool lacks room.
  std::optional<std::vector<BlockCopy>> swapOut(std::span<const SeqId> group);
  std::optional<std::vector<BlockCopy>> swapIn(std::span<const SeqId> group);

  // --- Queries ---
  bool hasSequence(SeqId seq) const { return seqs_.count(seq) != 0; }
  bool isSwappedOut(SeqId seq) const;
  const std::vector<BlockId>& blockTable(SeqId seq) const;
  int64_t numComputedTokens(SeqId seq) const;  // tokens with slots
  int64_t numTokens(SeqId seq) const;          // known tokens
  // Slots of the tokens [begin, end) already given slots, e.g. to rebuild a step's slot mapping.
  std::vector<int64_t> slots(SeqId seq, int64_t begin, int64_t end) const;
  // Free plus evictable device blocks: what allocation can obtain without preempting anyone.
  int64_t numAvailableBlocks() const { return device_.numFree() + cache_.numEvictable(); }
  BlockStats stats() const;
  // Evictable blocks, least recently used first.
  std::vector<BlockId> evictionOrder() const;

  // Throws Error naming the first broken invariant: every block free, cached or owned and in
  // exactly one of these states; refcounts equal the block-table entries naming each block; the
  // prefix cache consistent; each table as long as its computed tokens need.
  void checkInvariants() const;

private:
  struct Sequence {
    std::vector<TokenId> tokens;           // known tokens
    int64_t numComputed = 0;               // tokens with slots
    std::vector<BlockId> table;            // ceil(numComputed / blockSize) blocks
    bool swapped = false;                  // table names host blocks
    // For each full block: its chained hash and the cache entry naming this prefix (its own
    // block's or an identical block's registered earlier); kNoEntry when not known.
    std::vector<PrefixHash> fullHashes;
    std::vector<PrefixEntryId> fullEntries;
  };
  static constexpr PrefixEntryId kNoEntry = ~PrefixEntryId{0};

  Sequence& get(SeqId seq, const char* op);
  const Sequence& get(SeqId seq, const char* op) const;
  struct CachedBlock {
    PrefixHit hit;
    PrefixHash hash;
  };
  std::vector<CachedBlock> findCachedPrefix(std::span<const TokenId> prompt) const;
  int64_t blocksNeededToAdd(std::span<const TokenId> prompt) const;
  int64_t watermarkBlocks() const;
  std::optional<BlockId> allocateDeviceBlock();
  void releaseDeviceBlock(BlockId block);
  void registerFullBlocks(Sequence& s);
  std::vector<BlockId> uniqueBlocks(std::span<const SeqId> group, bool swapped, const char* op) const;

  BlockManagerConfig config_;
  BlockPool device_;
  BlockPool host_;
  PrefixCache cache_;
  std::unordered_map<SeqId, Sequence> seqs_;
  int64_t prefixQueryTokens_ = 0;
  int64_t prefixHitTokens_ = 0;
  int64_t evictions_ = 0;
};

}  // namespace pagedc
