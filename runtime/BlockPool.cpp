// Reference counting and the free list of one pool of physical KV blocks.
#include "runtime/BlockPool.h"

#include <utility>

#include "ir/Error.h"
#include "ir/ModelFacts.h"

namespace pagedc {

int64_t numBlocksForBudget(int64_t budgetBytes, int64_t kvBytesPerToken, int64_t blockSize) {
  if (budgetBytes < 0) fail("numBlocksForBudget: negative memory budget ", budgetBytes, " bytes");
  if (kvBytesPerToken <= 0) fail("numBlocksForBudget: KV bytes per token must be positive, got ", kvBytesPerToken);
  if (blockSize <= 0) fail("numBlocksForBudget: block size must be positive, got ", blockSize);
  // Divide step by step so a large budget cannot overflow bytesPerBlock * blocks.
  return budgetBytes / kvBytesPerToken / blockSize;
}

int64_t numBlocksForBudget(int64_t budgetBytes, const ModelFacts& facts) {
  return numBlocksForBudget(budgetBytes, facts.kvBytesPerToken(), facts.blockSize);
}

BlockPool::BlockPool(std::string name, int64_t numBlocks) : name_(std::move(name)) {
  if (numBlocks < 0) fail("block pool ", name_, ": negative block count ", numBlocks);
  refCounts_.assign(static_cast<size_t>(numBlocks), 0);
  isFree_.assign(static_cast<size_t>(numBlocks), true);
  freeList_.reserve(static_cast<size_t>(numBlocks));
  for (BlockId block = numBlocks - 1; block >= 0; --block) freeList_.push_back(block);
}

void BlockPool::checkId(BlockId block, const char* what) const {
  if (block < 0 || block >= numBlocks())
    fail("block pool ", name_, ": ", what, " of block ", block, " outside [0, ", numBlocks(), ")");
}

std::optional<BlockId> BlockPool::allocate() {
  if (freeList_.empty()) return std::nullopt;
  BlockId block = freeList_.back();
  freeList_.pop_back();
  isFree_[static_cast<size_t>(block)] = false;
  refCounts_[static_cast<size_t>(block)] = 1;
  return block;
}

void BlockPool::incRef(BlockId block) {
  checkId(block, "incRef");
  if (isFree_[static_cast<size_t>(block)]) fail("block pool ", name_, ": incRef of free block ", block);
  ++refCounts_[static_cast<size_t>(block)];
}

int64_t BlockPool::decRef(BlockId block) {
  checkId(block, "decRef");
  int64_t& count = refCounts_[static_cast<size_t>(block)];
  if (count == 0) fail("block pool ", name_, ": double free of block ", block, " (it has no owners)");
  return --count;
}

void BlockPool::free(BlockId block) {
  checkId(block, "free");
  if (isFree_[static_cast<size_t>(block)]) fail("block pool ", name_, ": double free of block ", block);
  if (refCounts_[static_cast<size_t>(block)] != 0)
    fail("block pool ", name_, ": freeing block ", block, " that still has ", refCounts_[static_cast<size_t>(block)], " owners");
  isFree_[static_cast<size_t>(block)] = true;
  freeList_.push_back(block);
}

int64_t BlockPool::refCount(BlockId block) const {
  checkId(block, "refCount");
  return refCounts_[static_cast<size_t>(block)];
}

bool BlockPool::isFree(BlockId block) const {
  checkId(block, "isFree");
  return isFree_[static_cast<size_t>(block)];
}

}  // namespace pagedc
