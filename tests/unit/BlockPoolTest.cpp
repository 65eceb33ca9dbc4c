// The physical block pool: sizing from a memory budget, allocation order, reference counts, misuse.
#include <gtest/gtest.h>

#include "ir/Error.h"
#include "ir/ModelFacts.h"
#include "runtime/BlockPool.h"

using namespace pagedc;

TEST(BlockPool, SizesFromMemoryBudget) {
  EXPECT_EQ(numBlocksForBudget(1000, 10, 16), 6);  // 160 bytes a block, a partial block is dropped
  EXPECT_EQ(numBlocksForBudget(0, 10, 16), 0);
  ModelFacts facts;
  facts.numLayers = 2;
  facts.numKvHeads = 4;
  facts.headDim = 8;
  facts.kvDType = DType::F16;
  facts.blockSize = 16;
  // 2 (K and V) * 2 layers * 4 heads * 8 dims * 2 bytes = 256 bytes a token, 4 KiB a block.
  EXPECT_EQ(numBlocksForBudget(int64_t{1} << 20, facts), 256);
  // A large budget does not overflow.
  EXPECT_EQ(numBlocksForBudget(int64_t{80} << 30, 256, 16), (int64_t{80} << 30) / 4096);
  EXPECT_THROW(numBlocksForBudget(1000, 0, 16), Error);
  EXPECT_THROW(numBlocksForBudget(1000, 10, 0), Error);
  EXPECT_THROW(numBlocksForBudget(-1, 10, 16), Error);
}

TEST(BlockPool, AllocatesLowIdsFirstAndReusesFreedBlocks) {
  BlockPool pool("device", 3);
  EXPECT_EQ(pool.numFree(), 3);
  EXPECT_EQ(pool.allocate(), 0);
  EXPECT_EQ(pool.allocate(), 1);
  EXPECT_EQ(pool.allocate(), 2);
  EXPECT_EQ(pool.allocate(), std::nullopt);  // out of blocks is a status, not an error
  pool.incRef(1);
  EXPECT_EQ(pool.refCount(1), 2);
  EXPECT_EQ(pool.decRef(1), 1);
  EXPECT_EQ(pool.decRef(1), 0);
  EXPECT_FALSE(pool.isFree(1));  // held until its caller frees it
  pool.free(1);
  EXPECT_TRUE(pool.isFree(1));
  EXPECT_EQ(pool.allocate(), 1);
}

TEST(BlockPool, RejectsMisuseNamingPoolAndBlock) {
  BlockPool pool("host", 2);
  BlockId block = *pool.allocate();
  EXPECT_THROW(pool.free(block), Error);  // still owned
  EXPECT_EQ(pool.decRef(block), 0);
  try {
    pool.decRef(block);
    FAIL() << "decRef below zero must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block pool host: double free of block 0"), std::string::npos) << e.what();
  }
  pool.free(block);
  EXPECT_THROW(pool.free(block), Error);   // double free
  EXPECT_THROW(pool.incRef(block), Error); // a free block gains no owners
  EXPECT_THROW(pool.refCount(2), Error);   // outside the pool
  EXPECT_THROW(BlockPool("device", -1), Error);
}
