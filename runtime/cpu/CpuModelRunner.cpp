// The CPU ModelRunner: KV pools, block copies, ragged inputs, and the executor.
#include "runtime/cpu/CpuModelRunner.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "ir/Error.h"
#include "ir/RaggedInterface.h"

namespace pagedc::cpu {

namespace {
// Zeroed by all threads at construction, as vLLM allocates its caches up front: the pages are
// faulted in now rather than during steps (first writes into a fresh page cost a fault each,
// which made decode steps of a large batch several times slower until every slot had been used).
std::unique_ptr<std::byte[]> zeroedPool(size_t bytes) {
  auto pool = std::unique_ptr<std::byte[]>(new std::byte[std::max<size_t>(bytes, 1)]);
  constexpr size_t kChunk = size_t{1} << 21;
  const auto chunks = static_cast<int64_t>((bytes + kChunk - 1) / kChunk);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t begin = static_cast<size_t>(c) * kChunk;
    std::memset(pool.get() + begin, 0, std::min(kChunk, bytes - begin));
  }
  return pool;
}
}  // namespace

CpuModelRunner::CpuModelRunner(const Graph& graph, const ModelFacts& facts, const CpuRunnerConfig& config) : facts_(facts), config_(config) {
  if (config.numDeviceBlocks <= 0) fail("the CPU backend needs at least one KV cache block, got ", config.numDeviceBlocks);
  if (config.maxNumBatchedTokens <= 0 || config.maxNumSeqs <= 0 || config.maxModelLen <= 0)
    fail("maxNumBatchedTokens, maxNumSeqs and maxModelLen must be positive");
  if (config.threads > 0) omp_set_num_threads(config.threads);
  const int64_t maxBlocksPerSeq = (config.maxModelLen + facts_.blockSize - 1) / facts_.blockSize;
  std::map<std::string, int64_t> bounds = {
      {ragged::kNumTokens, config.maxNumBatchedTokens}, {ragged::kNumSeqs, config.maxNumSeqs},
      {ragged::kMaxBlocks, maxBlocksPerSeq},            {ragged::kNumLogits, config.maxNumBatchedTokens},
      {ragged::kNumBlocks, config.numDeviceBlocks},
  };
  executor_ = std::make_unique<CpuExecutor>(graph, bounds);

  blockBytes_ = facts_.numKvHeads * facts_.blockSize * facts_.headDim * static_cast<int64_t>(dtypeSize(facts_.kvDType));
  device_ = makePool(config.numDeviceBlocks);
  host_ = makePool(config.numHostBlocks);
  for (int layer = 0; layer < facts_.numLayers; ++layer) {
    const std::vector<int64_t> shape = {config.numDeviceBlocks, facts_.numKvHeads, facts_.blockSize, facts_.headDim};
    const size_t k = executor_->inputIndex(ragged::keyCache(layer)), v = executor_->inputIndex(ragged::valueCache(layer));
    const Value* declared = graph.inputs[k];
    if (declared->type.dtype != facts_.kvDType)
      fail("graph @", graph.name, ": ", declared->name, " is ", declared->type.str(), " but the manifest's KV dtype is ", dtypeName(facts_.kvDType));
    executor_->bindInput(k, device_.keys[static_cast<size_t>(layer)].get(), shape);
    executor_->bindInput(v, device_.values[static_cast<size_t>(layer)].get(), shape);
  }
  inputIdsIndex_ = executor_->inputIndex(ragged::kInputIds);
  positionsIndex_ = executor_->inputIndex(ragged::kPositions);
  slotMappingIndex_ = executor_->inputIndex(ragged::kSlotMapping);
  blockTablesIndex_ = executor_->inputIndex(ragged::kBlockTables);
  contextLensIndex_ = executor_->inputIndex(ragged::kContextLens);
  queryStartIndex_ = executor_->inputIndex(ragged::kQueryStartLoc);
  if (executor_->hasInput(ragged::kLogitsIndices)) logitsIndicesIndex_ = executor_->inputIndex(ragged::kLogitsIndices);
  logitsOutput_ = executor_->outputIndex(ragged::kLogits);

  const auto tokens = static_cast<size_t>(config.maxNumBatchedTokens), seqs = static_cast<size_t>(config.maxNumSeqs);
  for (auto* buffer : {&inputIds_, &positions_, &slotMapping_, &logitsIndices_}) buffer->reserve(tokens);
  blockTables_.reserve(seqs * static_cast<size_t>(maxBlocksPerSeq));
  contextLens_.reserve(seqs);
  queryStartLoc_.reserve(seqs + 1);
  if (!logitsIndicesIndex_) logitRows_.reserve(tokens * static_cast<size_t>(facts_.vocabSize));
}

CpuModelRunner::~CpuModelRunner() = default;

int64_t CpuModelRunner::cacheBytesPerLayer() const { return blockBytes_ * config_.numDeviceBlocks; }

CpuModelRunner::Pool CpuModelRunner::makePool(int64_t blocks) const {
  Pool pool;
  for (int64_t layer = 0; layer < facts_.numLayers; ++layer) {
    pool.keys.push_back(zeroedPool(static_cast<size_t>(blockBytes_ * blocks)));
    pool.values.push_back(zeroedPool(static_cast<size_t>(blockBytes_ * blocks)));
  }
  return pool;
}

void CpuModelRunner::copyBlocks(const Pool& from, Pool& to, std::span<const BlockCopy> copies) const {
  const auto bytes = static_cast<size_t>(blockBytes_);
  const auto layers = static_cast<int64_t>(from.keys.size());
#pragma omp parallel for schedule(static) if (static_cast<int64_t>(copies.size()) * layers > 8)
  for (int64_t i = 0; i < static_cast<int64_t>(copies.size()) * layers; ++i) {
    const BlockCopy& copy = copies[static_cast<size_t>(i / layers)];
    const auto layer = static_cast<size_t>(i % layers);
    std::memcpy(to.keys[layer].get() + copy.dst * bytes, from.keys[layer].get() + copy.src * bytes, bytes);
    std::memcpy(to.values[layer].get() + copy.dst * bytes, from.values[layer].get() + copy.src * bytes, bytes);
  }
}

StepLogits CpuModelRunner::execute(const StepPlan& plan) {
  auto checkBlocks = [](std::span<const BlockCopy> copies, int64_t srcBlocks, int64_t dstBlocks, const char* what) {
    for (const BlockCopy& c : copies)
      if (c.src < 0 || c.src >= srcBlocks || c.dst < 0 || c.dst >= dstBlocks)
        fail(what, " copy ", c.src, " -> ", c.dst, " is outside the pools (", srcBlocks, " and ", dstBlocks, " blocks)");
  };
  checkBlocks(plan.swapOut, config_.numDeviceBlocks, config_.numHostBlocks, "swap-out");
  checkBlocks(plan.swapIn, config_.numHostBlocks, config_.numDeviceBlocks, "swap-in");
  checkBlocks(plan.copies, config_.numDeviceBlocks, config_.numDeviceBlocks, "copy-on-write");
  copyBlocks(device_, host_, plan.swapOut);
  copyBlocks(host_, device_, plan.swapIn);
  copyBlocks(device_, device_, plan.copies);
  if (plan.seqs.empty()) return {nullptr, 0, facts_.vocabSize};

  const int64_t numTokens = plan.numTokens();
  const auto numSeqs = static_cast<int64_t>(plan.seqs.size());
  if (numTokens > config_.maxNumBatchedTokens) fail("a step of ", numTokens, " tokens exceeds maxNumBatchedTokens ", config_.maxNumBatchedTokens);
  if (numSeqs > config_.maxNumSeqs) fail("a step of ", numSeqs, " sequences exceeds maxNumSeqs ", config_.maxNumSeqs);
  inputIds_.clear();
  positions_.clear();
  slotMapping_.clear();
  contextLens_.clear();
  queryStartLoc_.assign(1, 0);
  logitsIndices_.clear();
  int64_t maxBlocks = 1;
  for (const ScheduledSequence& s : plan.seqs) {
    if (s.tokens.size() != s.positions.size() || s.tokens.size() != s.slots.size() || s.tokens.empty())
      fail("request '", s.requestId, "': ", s.tokens.size(), " tokens, ", s.positions.size(), " positions and ", s.slots.size(), " slots in one step");
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      if (s.tokens[i] < 0 || s.tokens[i] >= facts_.vocabSize)
        fail("request '", s.requestId, "': token id ", s.tokens[i], " is outside the vocabulary 0..", facts_.vocabSize - 1);
      if (s.slots[i] >= config_.numDeviceBlocks * facts_.blockSize)
        fail("request '", s.requestId, "': slot ", s.slots[i], " is outside the KV pool of ", config_.numDeviceBlocks, " blocks");
      if (s.allLogits || (s.needsLogits && i + 1 == s.tokens.size())) logitsIndices_.push_back(static_cast<int64_t>(inputIds_.size()));
      inputIds_.push_back(s.tokens[i]);
      positions_.push_back(s.positions[i]);
      slotMapping_.push_back(s.slots[i]);
    }
    contextLens_.push_back(s.contextLen);
    queryStartLoc_.push_back(static_cast<int64_t>(inputIds_.size()));
    maxBlocks = std::max<int64_t>(maxBlocks, static_cast<int64_t>(s.blockTable.size()));
  }
  blockTables_.assign(static_cast<size_t>(numSeqs * maxBlocks), 0);
  for (size_t s = 0; s < plan.seqs.size(); ++s)
    std::ranges::copy(plan.seqs[s].blockTable, blockTables_.begin() + static_cast<std::ptrdiff_t>(s * static_cast<size_t>(maxBlocks)));

  const int64_t tokensShape[] = {numTokens};
  const int64_t tablesShape[] = {numSeqs, maxBlocks};
  const int64_t seqsShape[] = {numSeqs};
  const int64_t startShape[] = {numSeqs + 1};
  const int64_t logitsShape[] = {static_cast<int64_t>(logitsIndices_.size())};
  executor_->bindInput(inputIdsIndex_, inputIds_.data(), tokensShape);
  executor_->bindInput(positionsIndex_, positions_.data(), tokensShape);
  executor_->bindInput(slotMappingIndex_, slotMapping_.data(), tokensShape);
  executor_->bindInput(blockTablesIndex_, blockTables_.data(), tablesShape);
  executor_->bindInput(contextLensIndex_, contextLens_.data(), seqsShape);
  executor_->bindInput(queryStartIndex_, queryStartLoc_.data(), startShape);
  if (logitsIndicesIndex_) executor_->bindInput(*logitsIndicesIndex_, logitsIndices_.data(), logitsShape);
  executor_->run();

  const auto* logits = static_cast<const float*>(executor_->outputData(logitsOutput_));
  std::span<const int64_t> shape = executor_->outputShape(logitsOutput_);
  const int64_t vocab = shape.back();
  if (logitsIndicesIndex_) return {logits, static_cast<int64_t>(logitsIndices_.size()), vocab};
  // A graph without logits_indices computes every token's logits: pick the rows asked for.
  logitRows_.resize(logitsIndices_.size() * static_cast<size_t>(vocab));
  for (size_t r = 0; r < logitsIndices_.size(); ++r)
    std::memcpy(logitRows_.data() + r * static_cast<size_t>(vocab), logits + logitsIndices_[r] * vocab, static_cast<size_t>(vocab) * sizeof(float));
  return {logitRows_.data(), static_cast<int64_t>(logitsIndices_.size()), vocab};
}

}  // namespace pagedc::cpu
