// Thousands of random block-manager operations against a simulated KV cache: the invariants hold
// after every operation, every computed token reads back from its slot (so copy-on-write, prefix
// hits and swaps move the right data), and freeing everything leaves no block owned.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "runtime/BlockManager.h"

using namespace pagedc;

namespace {

struct Counts {
  int64_t adds = 0, prefixHitTokens = 0, copies = 0, outOfBlocks = 0, forks = 0, frees = 0, swapOuts = 0, swapIns = 0;
};

// The cache tensors reduced to one token id per slot: what the runtime would have written.
struct SimulatedCache {
  std::vector<TokenId> device, host;
  int64_t blockSize;
  void copyBlocks(const std::vector<BlockCopy>& copies, std::vector<TokenId>& from, std::vector<TokenId>& to) const {
    for (const BlockCopy& c : copies)
      std::copy_n(from.begin() + c.src * blockSize, blockSize, to.begin() + c.dst * blockSize);
  }
};

Counts runRandom(bool prefixCaching, uint64_t seed, int numOps) {
  BlockManagerConfig config;
  config.blockSize = 4;
  config.numDeviceBlocks = 48;
  config.numHostBlocks = 24;
  config.enablePrefixCaching = prefixCaching;
  BlockManager m(config);
  const int64_t bs = config.blockSize;
  SimulatedCache cache{std::vector<TokenId>(static_cast<size_t>(48 * bs), -1),
                       std::vector<TokenId>(static_cast<size_t>(24 * bs), -1), bs};
  std::mt19937_64 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  // Three shared "system prompts", some of them whole blocks long, so prefixes repeat.
  std::vector<std::vector<TokenId>> prefixes{{1, 2, 3, 4, 5, 6, 7, 8}, {1, 2, 3, 4, 9, 9, 9, 9, 9, 9}, {7, 7, 7}};
  std::vector<SeqId> live;
  std::vector<std::vector<TokenId>> tokensOf;  // by SeqId: the known tokens, as the test tracks them
  Counts counts;
  SeqId nextId = 0;

  auto pick = [&](bool swapped) -> std::optional<SeqId> {
    std::vector<SeqId> candidates;
    for (SeqId s : live)
      if (m.isSwappedOut(s) == swapped) candidates.push_back(s);
    if (candidates.empty()) return std::nullopt;
    return candidates[static_cast<size_t>(uniform(0, static_cast<int64_t>(candidates.size()) - 1))];
  };
  auto applyAppend = [&](SeqId seq, int64_t n) {
    int64_t first = m.numComputedTokens(seq);
    auto r = m.appendSlots(seq, n);
    if (!r) {
      ++counts.outOfBlocks;
      return;
    }
    counts.copies += static_cast<int64_t>(r->copies.size());
    cache.copyBlocks(r->copies, cache.device, cache.device);
    for (int64_t i = 0; i < n; ++i)
      cache.device[static_cast<size_t>(r->slots[static_cast<size_t>(i)])] = tokensOf[static_cast<size_t>(seq)][static_cast<size_t>(first + i)];
  };
  auto checkContents = [&] {
    for (SeqId seq : live) {
      if (m.isSwappedOut(seq)) {
        const auto& table = m.blockTable(seq);
        for (int64_t p = 0; p < m.numComputedTokens(seq); ++p)
          ASSERT_EQ(cache.host[static_cast<size_t>(table[static_cast<size_t>(p / bs)] * bs + p % bs)], tokensOf[static_cast<size_t>(seq)][static_cast<size_t>(p)]);
        continue;
      }
      auto slots = m.slots(seq, 0, m.numComputedTokens(seq));
      for (size_t p = 0; p < slots.size(); ++p)
        ASSERT_EQ(cache.device[static_cast<size_t>(slots[p])], tokensOf[static_cast<size_t>(seq)][p]) << "sequence " << seq << " token " << p;
    }
  };

  for (int op = 0; op < numOps; ++op) {
    int64_t kind = uniform(0, 99);
    // Keep the population near what the pool holds, so that most steps succeed and the pool
    // still runs out now and then.
    if (live.size() > 14 && kind < 20) kind = 70;
    if (live.size() > 20 && kind < 65) kind = 70;
    if (kind < 20 || live.empty()) {  // a new request
      std::vector<TokenId> prompt;
      if (uniform(0, 3) != 0) prompt = prefixes[static_cast<size_t>(uniform(0, 2))];
      int64_t extra = uniform(prompt.empty() ? 1 : 0, 9);
      for (int64_t i = 0; i < extra; ++i) prompt.push_back(uniform(0, 5));
      if (prompt.empty()) prompt.push_back(1);
      SeqId seq = nextId++;
      tokensOf.push_back(prompt);
      int64_t cached = m.addSequence(seq, prompt);
      EXPECT_LT(cached, static_cast<int64_t>(prompt.size()));
      EXPECT_EQ(cached % bs, 0);
      counts.prefixHitTokens += cached;
      ++counts.adds;
      live.push_back(seq);
      // Prefill the rest at once or only a first chunk.
      applyAppend(seq, uniform(0, 1) ? static_cast<int64_t>(prompt.size()) - cached : std::min<int64_t>(3, static_cast<int64_t>(prompt.size()) - cached));
    } else if (kind < 55) {  // a step: finish the prompt chunk by chunk, or decode a sampled token
      if (auto seq = pick(false)) {
        int64_t pending = m.numTokens(*seq) - m.numComputedTokens(*seq);
        if (pending == 0) {
          TokenId token = uniform(0, 5);
          m.appendTokens(*seq, std::vector<TokenId>{token});
          tokensOf[static_cast<size_t>(*seq)].push_back(token);
          pending = 1;
        }
        applyAppend(*seq, uniform(1, pending));
      }
    } else if (kind < 65) {  // parallel samples / beam candidates
      if (auto seq = pick(false)) {
        SeqId child = nextId++;
        m.fork(*seq, child);
        tokensOf.push_back(tokensOf[static_cast<size_t>(*seq)]);
        live.push_back(child);
        ++counts.forks;
      }
    } else if (kind < 80) {  // a finished or aborted sequence
      size_t i = static_cast<size_t>(uniform(0, static_cast<int64_t>(live.size()) - 1));
      m.freeSequence(live[i]);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
      ++counts.frees;
    } else if (kind < 90) {  // preempt a group by swapping
      std::vector<SeqId> group;
      for (int k = 0; k < 2; ++k)
        if (auto seq = pick(false); seq && std::find(group.begin(), group.end(), *seq) == group.end()) group.push_back(*seq);
      if (!group.empty()) {
        if (auto copies = m.swapOut(group)) {
          cache.copyBlocks(*copies, cache.device, cache.host);
          ++counts.swapOuts;
        } else {
          ++counts.outOfBlocks;
        }
      }
    } else {
      if (auto seq = pick(true)) {
        std::vector<SeqId> group{*seq};
        if (auto copies = m.swapIn(group)) {
          cache.copyBlocks(*copies, cache.host, cache.device);
          ++counts.swapIns;
        } else {
          ++counts.outOfBlocks;
        }
      }
    }
    m.checkInvariants();
    checkContents();
    if (::testing::Test::HasFatalFailure()) return counts;
    BlockStats st = m.stats();
    EXPECT_EQ(st.usedBlocks + st.freeBlocks + st.cachedBlocks, st.totalBlocks);
    EXPECT_GE(st.fragmentedSlots(), 0);
    if (!prefixCaching) {
      EXPECT_EQ(st.cachedBlocks, 0);
    }
  }

  for (SeqId seq : live) m.freeSequence(seq);
  m.checkInvariants();
  BlockStats st = m.stats();
  EXPECT_EQ(st.usedBlocks, 0);
  EXPECT_EQ(st.freeBlocks + st.cachedBlocks, st.totalBlocks);
  EXPECT_EQ(st.hostFreeBlocks, st.hostTotalBlocks);
  EXPECT_EQ(st.numSequences, 0);
  if (!prefixCaching) {
    EXPECT_EQ(st.freeBlocks, st.totalBlocks);
  }
  return counts;
}

}  // namespace

TEST(BlockManagerRandom, InvariantsHoldWithPrefixCaching) {
  Counts c = runRandom(true, 20240611, 10000);
  // The run exercised what it is meant to.
  EXPECT_GT(c.prefixHitTokens, 0);
  EXPECT_GT(c.copies, 0);
  EXPECT_GT(c.outOfBlocks, 0);
  EXPECT_GT(c.swapOuts, 0);
  EXPECT_GT(c.swapIns, 0);
  EXPECT_GT(c.forks, 0);
}

TEST(BlockManagerRandom, InvariantsHoldWithoutPrefixCaching) {
  Counts c = runRandom(false, 7, 10000);
  EXPECT_EQ(c.prefixHitTokens, 0);
  EXPECT_GT(c.copies, 0);
  EXPECT_GT(c.outOfBlocks, 0);
  EXPECT_GT(c.swapOuts, 0);
  EXPECT_GT(c.swapIns, 0);
}
