// The prefix cache on its own: chained hashes, exact matching despite collisions, LRU order.
#include <gtest/gtest.h>

#include <vector>

#include "ir/Error.h"
#include "runtime/PrefixCache.h"

using namespace pagedc;

TEST(PrefixCache, HashIsChainedAndDeterministic) {
  std::vector<TokenId> a{1, 2, 3, 4};
  std::vector<TokenId> b{4, 3, 2, 1};
  PrefixHash ha = hashBlockTokens(kRootPrefixHash, a);
  EXPECT_EQ(ha, hashBlockTokens(kRootPrefixHash, a));
  EXPECT_NE(ha, hashBlockTokens(kRootPrefixHash, b));
  // The same tokens after a different prefix hash differently.
  EXPECT_NE(hashBlockTokens(ha, a), hashBlockTokens(hashBlockTokens(kRootPrefixHash, b), a));
  // FNV-1a is fixed: the hash of no tokens after parent 0 is FNV-1a of eight zero bytes.
  EXPECT_EQ(hashBlockTokens(0, {}), 0xa8c7f832281a39c5ull);
}

TEST(PrefixCache, CollisionsAreToldApartByTokensAndParent) {
  PrefixCache cache;
  std::vector<TokenId> x{1, 2};
  std::vector<TokenId> y{3, 4};
  // Force a collision: both blocks under the same hash.
  PrefixEntryId ex = cache.insert(3, 42, kRootPrefixEntry, x);
  PrefixEntryId ey = cache.insert(5, 42, kRootPrefixEntry, y);
  EXPECT_NE(ex, ey);
  ASSERT_TRUE(cache.lookup(42, kRootPrefixEntry, y).has_value());
  EXPECT_EQ(cache.lookup(42, kRootPrefixEntry, y)->block, 5);
  EXPECT_EQ(cache.lookup(42, kRootPrefixEntry, x)->block, 3);
  EXPECT_FALSE(cache.lookup(42, kRootPrefixEntry, std::vector<TokenId>{9, 9}).has_value());
  EXPECT_FALSE(cache.lookup(42, ex, x).has_value());  // same tokens, different prefix
  EXPECT_FALSE(cache.lookup(7, kRootPrefixEntry, x).has_value());
  EXPECT_THROW(cache.insert(3, 1, kRootPrefixEntry, x), Error);
  cache.checkInvariants();
}

TEST(PrefixCache, EvictsLeastRecentlyUsedFirst) {
  PrefixCache cache;
  for (BlockId block : {1, 2, 3}) cache.insert(block, static_cast<PrefixHash>(block), kRootPrefixEntry, std::vector<TokenId>{block});
  cache.markEvictable(2);
  cache.markEvictable(1);
  cache.markEvictable(3);
  cache.markInUse(1);   // a prefix hit
  cache.markEvictable(1);  // released again: now the most recent
  EXPECT_EQ(std::vector<BlockId>(cache.lruOrder().begin(), cache.lruOrder().end()), (std::vector<BlockId>{2, 3, 1}));
  EXPECT_EQ(cache.evictLeastRecentlyUsed(), 2);
  EXPECT_FALSE(cache.isRegistered(2));
  EXPECT_FALSE(cache.lookup(2, kRootPrefixEntry, std::vector<TokenId>{2}).has_value());
  EXPECT_EQ(cache.evictLeastRecentlyUsed(), 3);
  EXPECT_EQ(cache.evictLeastRecentlyUsed(), 1);
  EXPECT_EQ(cache.evictLeastRecentlyUsed(), std::nullopt);
  EXPECT_EQ(cache.numRegistered(), 0);
  cache.checkInvariants();
}
