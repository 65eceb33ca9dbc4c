#include "bench/serving/SimulatedModelRunner.h"

#include <algorithm>
#include <cmath>

#include "ir/Error.h"

namespace pagedc::bench {

SimulatedModelRunner::SimulatedModelRunner(const ModelFacts& facts, int64_t numDeviceBlocks, int64_t numHostBlocks, const StepCostModel& cost)
    : facts_(facts), numDeviceBlocks_(numDeviceBlocks), numHostBlocks_(numHostBlocks), cost_(cost) {
  if (numDeviceBlocks <= 0) fail("simulated runner: needs at least one KV block, got ", numDeviceBlocks);
  if (numHostBlocks < 0) fail("simulated runner: host blocks must be >= 0, got ", numHostBlocks);
  if (facts.vocabSize < 2) fail("simulated runner: vocabulary must have at least 2 tokens, got ", facts.vocabSize);
}

namespace {
uint64_t mix(uint64_t x) {  // splitmix64's finaliser: a cheap, well-spread hash
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

// A peaked next-token distribution, as a trained model's: 16 likely successors of the last token
// (Zipf-like logits 0, -0.7, -1.1, ...) drawn from a hash of the token and its position, everything
// else far below. Beam search then keeps several plausible continuations and forks and drops beams
// as it would on real text; parallel samples diverge.
void SimulatedModelRunner::fillRow(float* row, TokenId last, int64_t position) const {
  std::fill(row, row + facts_.vocabSize, -12.0f);
  const uint64_t base = mix(static_cast<uint64_t>(last) * 1000003ull + static_cast<uint64_t>(position));
  for (int rank = 0; rank < 16; ++rank) {
    const auto token = static_cast<int64_t>(mix(base + static_cast<uint64_t>(rank)) % static_cast<uint64_t>(facts_.vocabSize));
    row[token] = std::max(row[token], -static_cast<float>(std::log1p(rank)));
  }
}

StepLogits SimulatedModelRunner::execute(const StepPlan& plan) {
  auto checkCopies = [&](const std::vector<BlockCopy>& copies, int64_t srcBlocks, int64_t dstBlocks, const char* what) {
    for (const BlockCopy& c : copies)
      if (c.src < 0 || c.src >= srcBlocks || c.dst < 0 || c.dst >= dstBlocks)
        fail(what, " copy ", c.src, " -> ", c.dst, " is outside the pools (", srcBlocks, " and ", dstBlocks, " blocks)");
  };
  checkCopies(plan.swapOut, numDeviceBlocks_, numHostBlocks_, "swap-out");
  checkCopies(plan.swapIn, numHostBlocks_, numDeviceBlocks_, "swap-in");
  checkCopies(plan.copies, numDeviceBlocks_, numDeviceBlocks_, "copy-on-write");
  const int64_t slots = numDeviceBlocks_ * facts_.blockSize;
  const int64_t rows = plan.numLogits();
  logits_.resize(static_cast<size_t>(rows * facts_.vocabSize));
  int64_t row = 0;
  for (const ScheduledSequence& s : plan.seqs) {
    if (s.tokens.empty() || s.tokens.size() != s.positions.size() || s.tokens.size() != s.slots.size())
      fail("request ", s.requestId, ": sequence ", s.seq, " has ", s.tokens.size(), " tokens, ", s.positions.size(), " positions and ",
           s.slots.size(), " slots");
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      if (s.tokens[i] < 0 || s.tokens[i] >= facts_.vocabSize)
        fail("request ", s.requestId, ": token ", s.tokens[i], " is outside the vocabulary [0, ", facts_.vocabSize, ")");
      if (s.slots[i] < 0 || s.slots[i] >= slots) fail("request ", s.requestId, ": slot ", s.slots[i], " is outside the pool of ", slots);
    }
    for (BlockId b : s.blockTable)
      if (b < 0 || b >= numDeviceBlocks_) fail("request ", s.requestId, ": block ", b, " is outside the pool of ", numDeviceBlocks_);
    const size_t first = s.allLogits ? 0 : s.tokens.size() - 1;
    if (!s.allLogits && !s.needsLogits) continue;
    for (size_t i = first; i < s.tokens.size(); ++i, ++row)
      fillRow(logits_.data() + row * facts_.vocabSize, s.tokens[i], s.positions[i]);
  }
  lastSeconds_ = cost_.seconds(StepShape::of(plan));
  return {logits_.data(), rows, facts_.vocabSize};
}

}  // namespace pagedc::bench
