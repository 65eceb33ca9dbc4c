// The block manager: on-demand allocation, slots, copy-on-write, parallel sampling, prefix
// caching, LRU eviction, swapping, accounting and misuse.
#include <gtest/gtest.h>

#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include "ir/Error.h"
#include "runtime/BlockManager.h"

using namespace pagedc;

namespace pagedc {
// Readable failure messages for copy lists.
void PrintTo(const BlockCopy& copy, std::ostream* os) { *os << "{" << copy.src << " -> " << copy.dst << "}"; }
}  // namespace pagedc

namespace {

std::vector<TokenId> iota(TokenId first, int64_t count) {
  std::vector<TokenId> tokens(static_cast<size_t>(count));
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

std::vector<TokenId> concat(std::vector<TokenId> a, const std::vector<TokenId>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

BlockManagerConfig config(int64_t blockSize, int64_t deviceBlocks, int64_t hostBlocks = 0, bool prefixCaching = true) {
  BlockManagerConfig c;
  c.blockSize = blockSize;
  c.numDeviceBlocks = deviceBlocks;
  c.numHostBlocks = hostBlocks;
  c.enablePrefixCaching = prefixCaching;
  return c;
}

// The slots of a whole prompt, computed in one step.
std::vector<int64_t> prefill(BlockManager& m, SeqId seq, const std::vector<TokenId>& prompt) {
  int64_t cached = m.addSequence(seq, prompt);
  auto result = m.appendSlots(seq, static_cast<int64_t>(prompt.size()) - cached);
  EXPECT_TRUE(result.has_value());
  EXPECT_TRUE(result->copies.empty());
  m.checkInvariants();
  return result->slots;
}

// One decode step: the sampled token's slot.
AppendResult decode(BlockManager& m, SeqId seq, TokenId token) {
  m.appendTokens(seq, std::vector<TokenId>{token});
  auto result = m.appendSlots(seq, 1);
  EXPECT_TRUE(result.has_value());
  m.checkInvariants();
  return *result;
}

template <class F>
std::string errorOf(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(BlockManager, AllocatesOnDemandAndReportsSlotsAndFragmentation) {
  BlockManager m(config(4, 8, 0, false));
  EXPECT_EQ(prefill(m, 1, iota(0, 6)), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(m.blockTable(1), (std::vector<BlockId>{0, 1}));
  BlockStats st = m.stats();
  EXPECT_EQ(st.usedBlocks, 2);
  EXPECT_EQ(st.freeBlocks, 6);
  EXPECT_EQ(st.cachedBlocks, 0);
  EXPECT_EQ(st.allocatedSlots, 8);
  EXPECT_EQ(st.usedSlots, 6);
  EXPECT_EQ(st.fragmentedSlots(), 2);
  EXPECT_EQ(decode(m, 1, 100).slots, (std::vector<int64_t>{6}));
  EXPECT_EQ(decode(m, 1, 101).slots, (std::vector<int64_t>{7}));
  AppendResult third = decode(m, 1, 102);  // a new block only when the last one is full
  EXPECT_EQ(third.slots, (std::vector<int64_t>{8}));
  EXPECT_EQ(m.blockTable(1), (std::vector<BlockId>{0, 1, 2}));
  EXPECT_EQ(m.stats().fragmentedSlots(), 3);
  EXPECT_EQ(m.slots(1, 3, 6), (std::vector<int64_t>{3, 4, 5}));

  // A second sequence's slots are in its own blocks.
  EXPECT_EQ(prefill(m, 2, iota(50, 3)), (std::vector<int64_t>{12, 13, 14}));
  m.freeSequence(1);
  m.freeSequence(2);
  m.checkInvariants();
  EXPECT_EQ(m.stats().freeBlocks, 8);
  EXPECT_EQ(m.stats().usedSlots, 0);
}

TEST(BlockManager, ChunkedPrefillGetsTheSameSlots) {
  BlockManager whole(config(4, 8, 0, false));
  BlockManager chunked(config(4, 8, 0, false));
  auto prompt = iota(0, 10);
  auto expected = prefill(whole, 1, prompt);
  EXPECT_EQ(chunked.addSequence(1, prompt), 0);
  std::vector<int64_t> slots;
  for (int64_t chunk : {3, 4, 3}) {
    auto r = chunked.appendSlots(1, chunk);
    ASSERT_TRUE(r.has_value());
    slots.insert(slots.end(), r->slots.begin(), r->slots.end());
    chunked.checkInvariants();
  }
  EXPECT_EQ(slots, expected);
  EXPECT_EQ(chunked.numComputedTokens(1), 10);
}

TEST(BlockManager, RunningOutOfBlocksIsAStatusAndChangesNothing) {
  BlockManager m(config(4, 2, 0, false));
  auto prompt = iota(0, 12);
  EXPECT_FALSE(m.canAllocate(12));
  EXPECT_TRUE(m.canAllocate(8));
  EXPECT_FALSE(m.canAddSequence(prompt));
  EXPECT_EQ(m.addSequence(1, prompt), 0);
  EXPECT_FALSE(m.canAppendSlots(1, 12));
  EXPECT_EQ(m.blocksNeededToAppend(1, 12), 3);
  EXPECT_EQ(m.appendSlots(1, 12), std::nullopt);
  m.checkInvariants();
  EXPECT_EQ(m.stats().freeBlocks, 2);
  EXPECT_EQ(m.numComputedTokens(1), 0);
  ASSERT_TRUE(m.appendSlots(1, 8).has_value());
  EXPECT_EQ(m.appendSlots(1, 1), std::nullopt);
  EXPECT_EQ(m.numComputedTokens(1), 8);
  m.checkInvariants();
}

TEST(BlockManager, WatermarkHoldsBackBlocksAtAdmission) {
  BlockManagerConfig c = config(4, 10);
  c.watermark = 0.2;  // two blocks kept free
  BlockManager m(c);
  EXPECT_TRUE(m.canAllocate(32));
  EXPECT_FALSE(m.canAllocate(33));
  EXPECT_FALSE(m.canAddSequence(iota(0, 33)));
  // Running sequences may still grow into the watermark.
  m.addSequence(1, iota(0, 40));
  EXPECT_TRUE(m.canAppendSlots(1, 40));
}

TEST(BlockManager, CopyOnWriteReportsTheCopy) {
  BlockManager m(config(4, 8, 0, false));
  prefill(m, 1, iota(0, 6));  // blocks 0 (full) and 1 (two tokens)
  m.fork(1, 2);
  m.checkInvariants();
  EXPECT_EQ(m.blockTable(2), (std::vector<BlockId>{0, 1}));
  EXPECT_EQ(m.stats().usedBlocks, 2);
  // The child writes first into the shared partial block: it gets a copy of block 1 in block 2.
  AppendResult child = decode(m, 2, 7);
  EXPECT_EQ(child.copies, (std::vector<BlockCopy>{{1, 2}}));
  EXPECT_EQ(child.slots, (std::vector<int64_t>{2 * 4 + 2}));
  EXPECT_EQ(m.blockTable(2), (std::vector<BlockId>{0, 2}));
  // The parent is now block 1's only owner and writes in place.
  AppendResult parent = decode(m, 1, 8);
  EXPECT_TRUE(parent.copies.empty());
  EXPECT_EQ(parent.slots, (std::vector<int64_t>{1 * 4 + 2}));
  EXPECT_EQ(m.stats().usedBlocks, 3);

  // Forking at a block boundary copies nothing: the next token starts a new block.
  BlockManager n(config(4, 8, 0, false));
  prefill(n, 1, iota(0, 8));
  n.fork(1, 2);
  AppendResult r = decode(n, 2, 9);
  EXPECT_TRUE(r.copies.empty());
  EXPECT_EQ(n.blockTable(2), (std::vector<BlockId>{0, 1, 2}));
  // Freeing the parent leaves the shared blocks to the child.
  n.freeSequence(1);
  n.checkInvariants();
  EXPECT_EQ(n.stats().usedBlocks, 3);
}

TEST(BlockManager, ParallelSamplingUsesFewerBlocksThanIndependentCopies) {
  const int64_t n = 4;
  auto prompt = iota(0, 40);  // block size 16: two full blocks and one with 8 tokens
  BlockManager shared(config(16, 64, 0, false));
  prefill(shared, 0, prompt);
  for (SeqId child = 1; child < n; ++child) shared.fork(0, child);
  std::vector<BlockCopy> copies;
  for (SeqId seq = 0; seq < n; ++seq) {
    for (int step = 0; step < 10; ++step) {  // each sample draws different tokens
      AppendResult r = decode(shared, seq, 1000 * (seq + 1) + step);
      copies.insert(copies.end(), r.copies.begin(), r.copies.end());
    }
  }
  // The last block shared with 8 tokens is copied for the first three writers; the fourth
  // writes in place. Sequence 0 copies block 2 into 3 and then opens 4, and so on.
  EXPECT_EQ(copies, (std::vector<BlockCopy>{{2, 3}, {2, 5}, {2, 7}}));
  EXPECT_EQ(shared.blockTable(0), (std::vector<BlockId>{0, 1, 3, 4}));
  EXPECT_EQ(shared.blockTable(3), (std::vector<BlockId>{0, 1, 2, 9}));
  // 2 shared full blocks + 4 private copies of the third + 4 fourth blocks.
  BlockStats st = shared.stats();
  EXPECT_EQ(st.usedBlocks, 10);
  EXPECT_EQ(st.usedSlots, 2 * 16 + n * (16 + 2));

  BlockManager independent(config(16, 64, 0, false));
  for (SeqId seq = 0; seq < n; ++seq) {
    prefill(independent, seq, prompt);
    for (int step = 0; step < 10; ++step) decode(independent, seq, 1000 * (seq + 1) + step);
  }
  EXPECT_EQ(independent.stats().usedBlocks, 16);
  EXPECT_EQ(independent.stats().usedSlots, n * 50);
}

TEST(BlockManager, GroupAppendCountsEachSharedBlockCopyOnce) {
  BlockManager m(config(4, 32, 0, false));
  prefill(m, 0, iota(1, 6));  // two blocks, the second half full
  m.fork(0, 1);
  m.fork(0, 2);
  m.fork(0, 3);
  for (SeqId s = 0; s < 4; ++s) m.appendTokens(s, std::vector<TokenId>{100 + s});
  // Three of the four owners write into the shared half-full block: three copies (the fourth
  // owner keeps it); all four: three copies, the last writes in place.
  std::vector<SlotRequest> three{{0, 1}, {1, 1}, {2, 1}}, four{{0, 1}, {1, 1}, {2, 1}, {3, 1}};
  EXPECT_EQ(m.blocksNeededToAppend(three), 3);
  EXPECT_EQ(m.blocksNeededToAppend(four), 3);
  const int64_t before = m.stats().usedBlocks;
  for (const SlotRequest& r : four) ASSERT_TRUE(m.appendSlots(r.seq, r.numTokens).has_value());
  EXPECT_EQ(m.stats().usedBlocks - before, 3);
  m.checkInvariants();
  // Crossing into new blocks: two tokens each from offset 3 fill the block and open a new one.
  for (SeqId s = 0; s < 4; ++s) m.appendTokens(s, std::vector<TokenId>{7, 8});
  EXPECT_EQ(m.blocksNeededToAppend(std::vector<SlotRequest>{{0, 2}, {1, 2}}), 2);
  EXPECT_EQ(m.blocksNeededToAppend(std::vector<SlotRequest>{{0, 0}}), 0);
  EXPECT_THROW(m.blocksNeededToAppend(std::vector<SlotRequest>{{0, 1}, {0, 1}}), Error);
}

TEST(BlockManager, PrefixLookupCanBeSkipped) {
  BlockManager m(config(4, 32));
  prefill(m, 0, iota(1, 10));
  m.freeSequence(0);
  EXPECT_EQ(m.addSequence(1, iota(1, 10), false), 0);  // every token computed (prompt logprobs)
  EXPECT_EQ(m.addSequence(2, iota(1, 10)), 8);
  m.checkInvariants();
}

TEST(BlockManager, PrefixCachingReusesASharedSystemPrompt) {
  auto system = iota(1000, 80);  // five full blocks of 16
  BlockManager m(config(16, 64));
  auto a = concat(system, iota(1, 7));
  EXPECT_EQ(m.addSequence(1, a), 0);  // nothing cached yet
  ASSERT_TRUE(m.appendSlots(1, 87).has_value());
  m.checkInvariants();

  // A concurrent request with the same system prompt: five cached blocks, 80 tokens skipped.
  auto b = concat(system, iota(500, 5));
  EXPECT_TRUE(m.canAddSequence(b));
  EXPECT_EQ(m.addSequence(2, b), 80);
  EXPECT_EQ(m.numComputedTokens(2), 80);
  std::vector<BlockId> firstFive(m.blockTable(1).begin(), m.blockTable(1).begin() + 5);
  EXPECT_EQ(m.blockTable(2), firstFive);
  auto rest = m.appendSlots(2, 5);
  ASSERT_TRUE(rest.has_value());
  EXPECT_TRUE(rest->copies.empty());
  EXPECT_EQ(m.stats().usedBlocks, 6 + 1);
  m.checkInvariants();

  // Once both finish the system prompt's blocks stay cached (the partial last blocks are freed)
  // and a later request still reuses them.
  m.freeSequence(1);
  m.freeSequence(2);
  m.checkInvariants();
  BlockStats st = m.stats();
  EXPECT_EQ(st.cachedBlocks, 5);
  EXPECT_EQ(st.freeBlocks, 59);
  EXPECT_EQ(st.usedBlocks, 0);
  auto c = concat(system, iota(900, 30));
  EXPECT_EQ(m.addSequence(3, c), 80);
  EXPECT_EQ(m.blockTable(3), firstFive);
  EXPECT_EQ(m.stats().cachedBlocks, 0);
  EXPECT_EQ(m.stats().usedBlocks, 5);
  st = m.stats();
  EXPECT_EQ(st.prefixQueryTokens, 87 + 85 + 110);
  EXPECT_EQ(st.prefixHitTokens, 160);
  m.checkInvariants();

  // A different system prompt shares nothing; switched off, nothing is ever cached.
  EXPECT_EQ(m.addSequence(4, concat(iota(2000, 80), iota(1, 3))), 0);
  BlockManager off(config(16, 64, 0, false));
  prefill(off, 1, a);
  EXPECT_EQ(off.addSequence(2, b), 0);
  off.freeSequence(1);
  EXPECT_EQ(off.stats().cachedBlocks, 0);
}

TEST(BlockManager, PrefixCachingLeavesTheLastPromptTokenToCompute) {
  BlockManager m(config(16, 64));
  auto prompt = iota(0, 32);
  prefill(m, 1, prompt);
  // An identical prompt of exactly two blocks: only the first is reused, so the step that
  // computes token 31 writes a block of its own and produces logits.
  EXPECT_EQ(m.addSequence(2, prompt), 16);
  auto r = m.appendSlots(2, 16);
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(m.blockTable(2)[1], m.blockTable(1)[1]);
  m.checkInvariants();
  // One more token and both full blocks are reused.
  EXPECT_EQ(m.addSequence(3, iota(0, 33)), 32);
  // Freeing sequence 2 frees its duplicate of block 1 (the original stays cached or owned).
  m.freeSequence(2);
  m.checkInvariants();
  EXPECT_EQ(m.addSequence(4, std::vector<TokenId>{0}), 0);
}

TEST(BlockManager, EvictsCachedBlocksLeastRecentlyUsedFirst) {
  BlockManager m(config(4, 4));
  prefill(m, 1, iota(10, 4));  // block 0
  prefill(m, 2, iota(20, 4));  // block 1
  prefill(m, 3, iota(30, 4));  // block 2
  m.freeSequence(2);
  m.freeSequence(1);
  m.freeSequence(3);
  EXPECT_EQ(m.evictionOrder(), (std::vector<BlockId>{1, 0, 2}));
  EXPECT_EQ(m.stats().cachedBlocks, 3);
  EXPECT_EQ(m.stats().freeBlocks, 1);

  // A hit takes block 0 out of the evictable set; new blocks come from the free list first.
  EXPECT_EQ(m.addSequence(4, concat(iota(10, 4), {99})), 4);
  EXPECT_EQ(m.evictionOrder(), (std::vector<BlockId>{1, 2}));
  auto r = m.appendSlots(4, 1);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(m.blockTable(4), (std::vector<BlockId>{0, 3}));
  EXPECT_EQ(m.stats().evictions, 0);
  // Now the pool is full of owned and cached blocks: allocation evicts block 1, then block 2.
  EXPECT_TRUE(m.canAddSequence(iota(50, 5)));
  m.addSequence(5, iota(50, 5));
  ASSERT_TRUE(m.appendSlots(5, 5).has_value());
  EXPECT_EQ(m.blockTable(5), (std::vector<BlockId>{1, 2}));
  EXPECT_EQ(m.stats().evictions, 2);
  EXPECT_TRUE(m.evictionOrder().empty());
  m.checkInvariants();
  // The evicted prefixes are no longer found.
  EXPECT_EQ(m.addSequence(6, concat(iota(20, 4), {1})), 0);
  EXPECT_FALSE(m.canAddSequence(iota(0, 1)));

  // A finished sequence's blocks become evictable last block first, so its prefix outlives its tail.
  BlockManager n(config(4, 8));
  prefill(n, 1, iota(0, 12));
  n.freeSequence(1);
  EXPECT_EQ(n.evictionOrder(), (std::vector<BlockId>{2, 1, 0}));
}

TEST(BlockManager, SwapsOutAndInKeepingSharedBlocksShared) {
  BlockManager m(config(4, 8, 8, false));
  prefill(m, 1, iota(0, 6));  // blocks 0, 1
  m.fork(1, 2);
  decode(m, 2, 77);  // copy-on-write: sequence 2 holds blocks 0, 2
  ASSERT_EQ(m.blockTable(2), (std::vector<BlockId>{0, 2}));
  std::vector<SeqId> group{1, 2};
  EXPECT_TRUE(m.canSwapOut(group));
  auto out = m.swapOut(group);
  ASSERT_TRUE(out.has_value());
  // The shared block 0 goes to the host once.
  EXPECT_EQ(*out, (std::vector<BlockCopy>{{0, 0}, {1, 1}, {2, 2}}));
  m.checkInvariants();
  EXPECT_TRUE(m.isSwappedOut(1));
  EXPECT_EQ(m.blockTable(1), (std::vector<BlockId>{0, 1}));
  EXPECT_EQ(m.blockTable(2), (std::vector<BlockId>{0, 2}));
  BlockStats st = m.stats();
  EXPECT_EQ(st.usedBlocks, 0);
  EXPECT_EQ(st.hostUsedBlocks, 3);
  EXPECT_EQ(st.numSwappedSequences, 2);

  EXPECT_NE(errorOf([&] { m.appendSlots(1, 1); }).find("sequence 1 is swapped out"), std::string::npos);
  EXPECT_THROW(m.appendTokens(2, std::vector<TokenId>{1}), Error);
  EXPECT_THROW(m.fork(1, 3), Error);
  EXPECT_THROW(m.swapOut(group), Error);  // already out

  auto in = m.swapIn(group);
  ASSERT_TRUE(in.has_value());
  ASSERT_EQ(in->size(), 3u);
  m.checkInvariants();
  EXPECT_EQ(m.blockTable(1)[0], m.blockTable(2)[0]);  // still shared
  EXPECT_EQ((*in)[0], (BlockCopy{0, m.blockTable(1)[0]}));
  EXPECT_EQ((*in)[1], (BlockCopy{1, m.blockTable(1)[1]}));
  EXPECT_EQ((*in)[2], (BlockCopy{2, m.blockTable(2)[1]}));
  EXPECT_EQ(m.stats().usedBlocks, 3);
  EXPECT_EQ(m.stats().hostUsedBlocks, 0);
  EXPECT_FALSE(m.isSwappedOut(1));
  decode(m, 1, 5);  // running again

  // Swapping one of two sharers copies the shared block out and leaves it to the other.
  auto one = m.swapOut(std::vector<SeqId>{2});
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->size(), 2u);
  EXPECT_EQ(m.stats().usedBlocks, 2);
  m.checkInvariants();
  m.freeSequence(2);  // a swapped-out sequence frees its host blocks
  m.freeSequence(1);
  m.checkInvariants();
  EXPECT_EQ(m.stats().hostFreeBlocks, 8);
  EXPECT_EQ(m.stats().freeBlocks, 8);
}

TEST(BlockManager, SwapRefusesWhenTheOtherPoolIsFull) {
  BlockManager m(config(4, 4, 1, false));
  prefill(m, 1, iota(0, 8));
  EXPECT_FALSE(m.canSwapOut(std::vector<SeqId>{1}));
  EXPECT_EQ(m.swapOut(std::vector<SeqId>{1}), std::nullopt);
  EXPECT_FALSE(m.isSwappedOut(1));
  m.checkInvariants();

  BlockManager n(config(4, 2, 4, false));
  prefill(n, 1, iota(0, 8));
  ASSERT_TRUE(n.swapOut(std::vector<SeqId>{1}).has_value());
  prefill(n, 2, iota(0, 5));  // takes the device back
  EXPECT_FALSE(n.canSwapIn(std::vector<SeqId>{1}));
  EXPECT_EQ(n.swapIn(std::vector<SeqId>{1}), std::nullopt);
  EXPECT_TRUE(n.isSwappedOut(1));
  n.checkInvariants();
}

TEST(BlockManager, RejectsMisuseWithClearErrors) {
  BlockManager m(config(4, 8, 4));
  EXPECT_NE(errorOf([&] { m.appendSlots(7, 1); }).find("appendSlots: unknown sequence 7"), std::string::npos);
  prefill(m, 1, iota(0, 3));
  EXPECT_NE(errorOf([&] { m.addSequence(1, iota(0, 3)); }).find("sequence 1 already exists"), std::string::npos);
  EXPECT_NE(errorOf([&] { m.addSequence(2, {}); }).find("empty prompt"), std::string::npos);
  EXPECT_NE(errorOf([&] { m.appendSlots(1, 1); }).find("only 0 known tokens lack slots"), std::string::npos);
  EXPECT_THROW(m.appendSlots(1, -1), Error);
  EXPECT_THROW(m.fork(1, 1), Error);
  EXPECT_THROW(m.fork(9, 10), Error);
  EXPECT_THROW(m.swapIn(std::vector<SeqId>{1}), Error);        // not swapped out
  EXPECT_THROW(m.swapOut(std::vector<SeqId>{1, 1}), Error);    // twice in the group
  EXPECT_THROW(m.slots(1, 0, 4), Error);                       // beyond the computed tokens
  m.freeSequence(1);
  EXPECT_NE(errorOf([&] { m.freeSequence(1); }).find("freeSequence: unknown sequence 1 (never added or already freed)"),
            std::string::npos);
  EXPECT_THROW(BlockManager(config(0, 8)), Error);
  m.checkInvariants();
}
