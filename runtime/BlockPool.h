// A pool of physical KV-cache blocks (device or host): reference counts and a free list, no KV data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pagedc {

struct ModelFacts;

// A physical block: an index into the first dimension of the key and value cache tensors
// (docs/COMPILER.md), or into the host swap space for a host pool.
using BlockId = int64_t;

// How many blocks of blockSize tokens fit in budgetBytes, each token taking kvBytesPerToken
// (keys and values across all layers, ModelFacts::kvBytesPerToken()). Rounds down: a partial
// block is of no use. Throws Error on a non-positive size.
int64_t numBlocksForBudget(int64_t budgetBytes, int64_t kvBytesPerToken, int64_t blockSize);
int64_t numBlocksForBudget(int64_t budgetBytes, const ModelFacts& facts);

// Every block is in exactly one of three states:
//   free   refcount 0, on the free list, handed out by allocate();
//   owned  refcount > 0 (the number of block-table entries naming it);
//   held   refcount 0 but kept off the free list by its caller (the prefix cache keeps evictable
//          blocks this way, so their contents survive until they are evicted).
// The pool only counts; what a block holds and who owns it is the block manager's business.
class BlockPool {
public:
  // name appears in error messages ("device", "host").
  BlockPool(std::string name, int64_t numBlocks);

  const std::string& name() const { return name_; }
  int64_t numBlocks() const { return static_cast<int64_t>(refCounts_.size()); }
  int64_t numFree() const { return static_cast<int64_t>(freeList_.size()); }

  // A free block with refcount 1, or nullopt when none is free (not an error: the caller decides
  // whether to evict, preempt or wait).
  std::optional<BlockId> allocate();
  // Adds an owner to an owned or held block; a free block cannot gain owners.
  void incRef(BlockId block);
  // Removes an owner and returns the owners left. The block does not go back to the free list
  // by itself at zero: the caller either frees it or holds it (cached).
  int64_t decRef(BlockId block);
  // Returns a held block (refcount 0, not free) to the free list.
  void free(BlockId block);

  int64_t refCount(BlockId block) const;
  bool isFree(BlockId block) const;
  // The free list, for invariant checks.
  const std::vector<BlockId>& freeList() const { return freeList_; }

private:
  void checkId(BlockId block, const char* what) const;

  std::string name_;
  std::vector<int64_t> refCounts_;
  std::vector<bool> isFree_;
  // A stack: the most recently freed block is reused first, and block 0 is handed out first
  // from a fresh pool, which keeps block ids deterministic for tests and traces.
  std::vector<BlockId> freeList_;
};

}  // namespace pagedc
