// The CUDA ModelRunner: KV pools, block operations, staging, CUDA graphs for decode.
#include "runtime/cuda/CudaModelRunner.h"

#include <algorithm>
#include <cstring>

#include "ir/Error.h"
#include "ir/RaggedInterface.h"
#include "templates/kernel_params.h"

namespace pagedc::cuda {

namespace {

constexpr size_t kRegionAlignment = 256;
size_t alignUp(size_t n) { return (n + kRegionAlignment - 1) / kRegionAlignment * kRegionAlignment; }

std::vector<int64_t> defaultBatchBuckets(int64_t maxNumSeqs) {
  std::vector<int64_t> sizes;
  const int64_t top = std::min<int64_t>(maxNumSeqs, 256);
  for (int64_t s : {1, 2, 4}) sizes.push_back(s);
  for (int64_t s = 8; s <= top; s += 8) sizes.push_back(s);
  if (sizes.back() < top) sizes.push_back(top);
  std::erase_if(sizes, [&](int64_t s) { return s > top; });
  if (sizes.empty()) sizes.push_back(1);
  return sizes;
}

}  // namespace

CudaModelRunner::CudaModelRunner(const Graph& graph, const ModelFacts& facts, const CudaRunnerConfig& config,
                                 std::shared_ptr<const CudaDriver> driver, std::shared_ptr<KernelProvider> kernels, GemmLibraryFactory gemm)
    : facts_(facts), config_(config) {
  if (!driver) fail("the CUDA backend needs a CUDA driver");
  if (config.maxNumBatchedTokens <= 0 || config.maxNumSeqs <= 0 || config.maxModelLen <= 0)
    fail("maxNumBatchedTokens, maxNumSeqs and maxModelLen must be positive");
  if (config.numDeviceBlocks < 0 || config.numHostBlocks < 0) fail("block counts must not be negative");
  device_ = std::make_unique<CudaDevice>(driver, config.device);
  kernels_ = std::make_unique<CudaKernelCache>(*device_, std::move(kernels));
  gemm_ = gemm(driver);
  if (!gemm_) fail("the CUDA backend's GEMM library factory returned nothing");
  stream_ = std::make_unique<CudaStream>(*device_);
  const CudaDriver& d = device_->driver();

  blockBytes_ = facts_.numKvHeads * facts_.blockSize * facts_.headDim * static_cast<int64_t>(dtypeSize(facts_.kvDType));
  if (blockBytes_ <= 0 || facts_.numLayers <= 0) fail("the model's KV cache geometry is empty (layers, kv heads, block size, head dim)");
  maxBlocksPerSeq_ = (config.maxModelLen + facts_.blockSize - 1) / facts_.blockSize;
  // num_blocks sizes nothing in the arena (only the caches have that dimension, and they are the
  // runner's): bound it by what the device could hold when the count is not fixed yet.
  const int64_t blocksBound = config.numDeviceBlocks > 0
                                  ? config.numDeviceBlocks
                                  : std::max<int64_t>(1, static_cast<int64_t>(device_->info().totalMemory) / (2 * facts_.numLayers * blockBytes_));
  const std::map<std::string, int64_t> bounds = {
      {ragged::kNumTokens, config.maxNumBatchedTokens}, {ragged::kNumSeqs, config.maxNumSeqs}, {ragged::kMaxBlocks, maxBlocksPerSeq_},
      {ragged::kNumLogits, config.maxNumBatchedTokens}, {ragged::kNumBlocks, blocksBound},
  };
  executor_ = std::make_unique<CudaExecutor>(graph, *device_, *kernels_, *gemm_, config.kernelChoices.value_or(CudaKernelChoices::forModel(facts_)), bounds);

  // Step inputs: one region each, at fixed offsets, sized at the bounds.
  inputIdsIndex_ = executor_->inputIndex(ragged::kInputIds);
  positionsIndex_ = executor_->inputIndex(ragged::kPositions);
  slotMappingIndex_ = executor_->inputIndex(ragged::kSlotMapping);
  blockTablesIndex_ = executor_->inputIndex(ragged::kBlockTables);
  contextLensIndex_ = executor_->inputIndex(ragged::kContextLens);
  queryStartIndex_ = executor_->inputIndex(ragged::kQueryStartLoc);
  if (executor_->hasInput(ragged::kLogitsIndices)) logitsIndicesIndex_ = executor_->inputIndex(ragged::kLogitsIndices);
  logitsOutput_ = executor_->outputIndex(ragged::kLogits);
  for (size_t index : {inputIdsIndex_, positionsIndex_, slotMappingIndex_, blockTablesIndex_, contextLensIndex_, queryStartIndex_})
    if (graph.inputs[index]->type.dtype != DType::I64)
      fail("graph input '", graph.inputs[index]->name, "' is ", dtypeName(graph.inputs[index]->type.dtype), "; the ragged interface's inputs are i64");
  size_t offset = 0;
  auto region = [&](size_t bytes) {
    Region r{offset, alignUp(std::max<size_t>(bytes, 8))};
    offset += r.capacity;
    return r;
  };
  const auto tokens = static_cast<size_t>(config.maxNumBatchedTokens), seqs = static_cast<size_t>(config.maxNumSeqs);
  inputIds_ = region(tokens * 8);
  positions_ = region(tokens * 8);
  slotMapping_ = region(tokens * 8);
  contextLens_ = region(seqs * 8);
  queryStartLoc_ = region((seqs + 1) * 8);
  logitsIndices_ = region(tokens * 8);
  blockTables_ = region(seqs * static_cast<size_t>(maxBlocksPerSeq_) * 8);
  const size_t inputBytes = offset;

  // KV pools: as many blocks as asked, or as fit in the memory left.
  if (config.numDeviceBlocks > 0) {
    numDeviceBlocks_ = config.numDeviceBlocks;
  } else {
    size_t free = 0, total = 0;
    device_->check(d.cuMemGetInfo(&free, &total), "cuMemGetInfo");
    const double usable = static_cast<double>(free) * config.kvMemoryFraction - static_cast<double>(inputBytes);
    numDeviceBlocks_ = static_cast<int64_t>(usable / static_cast<double>(2 * facts_.numLayers * blockBytes_));
    if (config.maxAutoBlocks > 0) numDeviceBlocks_ = std::min(numDeviceBlocks_, config.maxAutoBlocks);
    if (numDeviceBlocks_ < 1)
      fail("no device memory left for the KV cache on ", device_->describe(), ": ", free >> 20, " MiB free after loading, one block takes ",
           (2 * facts_.numLayers * blockBytes_) >> 10, " KiB across the layers");
  }
  const size_t poolBytes = static_cast<size_t>(blockBytes_ * numDeviceBlocks_);
  for (int64_t layer = 0; layer < facts_.numLayers; ++layer) {
    deviceKeys_.emplace_back(*device_, poolBytes, "the key cache of layer " + std::to_string(layer));
    deviceValues_.emplace_back(*device_, poolBytes, "the value cache of layer " + std::to_string(layer));
    // Zeroed: padded decode rows of graph steps read block 0, and nothing should read garbage.
    device_->check(d.cuMemsetD8Async(deviceKeys_.back().get(), 0, poolBytes, stream_->get()), "cuMemsetD8Async");
    device_->check(d.cuMemsetD8Async(deviceValues_.back().get(), 0, poolBytes, stream_->get()), "cuMemsetD8Async");
    if (config.numHostBlocks > 0) {
      const auto hostBytes = static_cast<size_t>(blockBytes_ * config.numHostBlocks);
      hostKeys_.emplace_back(*device_, hostBytes, "the swap space (keys) of layer " + std::to_string(layer));
      hostValues_.emplace_back(*device_, hostBytes, "the swap space (values) of layer " + std::to_string(layer));
    }
  }
  for (int layer = 0; layer < facts_.numLayers; ++layer) {
    const std::vector<int64_t> shape = {numDeviceBlocks_, facts_.numKvHeads, facts_.blockSize, facts_.headDim};
    const size_t k = executor_->inputIndex(ragged::keyCache(layer)), v = executor_->inputIndex(ragged::valueCache(layer));
    if (graph.inputs[k]->type.dtype != facts_.kvDType)
      fail("graph @", graph.name, ": ", graph.inputs[k]->name, " is ", graph.inputs[k]->type.str(), " but the manifest's KV dtype is ", dtypeName(facts_.kvDType));
    executor_->bindInput(k, deviceKeys_[static_cast<size_t>(layer)].get(), shape);
    executor_->bindInput(v, deviceValues_[static_cast<size_t>(layer)].get(), shape);
  }

  // Staging: step inputs, then the block pairs of swaps and copies (each list at most a pool).
  const size_t pairBytes = static_cast<size_t>(config.numHostBlocks + 2 * numDeviceBlocks_) * 16;
  blockPairs_ = region(pairBytes);
  stagingHost_ = PinnedBuffer(*device_, offset, "the step input staging buffer");
  stagingDevice_ = DeviceBuffer(*device_, offset, "the step inputs");

  // copy_blocks reads the layers' cache pointers from device memory.
  std::vector<CUdeviceptr> keyPointers, valuePointers;
  for (size_t layer = 0; layer < deviceKeys_.size(); ++layer) {
    keyPointers.push_back(deviceKeys_[layer].get());
    valuePointers.push_back(deviceValues_[layer].get());
  }
  keyCachePointers_ = DeviceBuffer(*device_, keyPointers.size() * sizeof(CUdeviceptr), "the key cache pointers");
  valueCachePointers_ = DeviceBuffer(*device_, valuePointers.size() * sizeof(CUdeviceptr), "the value cache pointers");
  device_->check(d.cuMemcpyHtoDAsync(keyCachePointers_.get(), keyPointers.data(), keyPointers.size() * sizeof(CUdeviceptr), stream_->get()), "cuMemcpyHtoDAsync");
  device_->check(d.cuMemcpyHtoDAsync(valueCachePointers_.get(), valuePointers.data(), valuePointers.size() * sizeof(CUdeviceptr), stream_->get()), "cuMemcpyHtoDAsync");
  for (const KernelKey& key : executor_->runnerKernels()) {
    if (key.kernel == "copy_blocks") {
      copyBlocks_ = kernels_->function(key);
      copyBlocksThreads_ = static_cast<unsigned>(key.intParam("threads"));
    } else if (key.kernel == "swap_blocks") {
      swapBlocks_ = kernels_->function(key);
      swapBlocksThreads_ = static_cast<unsigned>(key.intParam("threads"));
    }
  }
  if (!copyBlocks_ || !swapBlocks_) fail("the CUDA plan lacks the block copy kernels");

  logitsHost_ = PinnedBuffer(*device_, static_cast<size_t>(config.maxNumSeqs * facts_.vocabSize) * sizeof(float), "the logits");
  graphBatchSizes_ = config.graphBatchSizes.empty() ? defaultBatchBuckets(config.maxNumSeqs) : config.graphBatchSizes;
  std::ranges::sort(graphBatchSizes_);
  std::erase_if(graphBatchSizes_, [&](int64_t s) { return s <= 0 || s > config.maxNumSeqs || s > config.maxNumBatchedTokens; });
  stream_->synchronize();  // keys copied from the host vectors above, pools zeroed
}

CudaModelRunner::~CudaModelRunner() {
  // Pending work (none after execute() returns) must not outlive the buffers: wait, ignoring errors.
  if (stream_) device_->driver().cuStreamSynchronize(stream_->get());
  graphs_.clear();
}

void CudaModelRunner::validate(const StepPlan& plan) const {
  auto checkBlocks = [](std::span<const BlockCopy> copies, int64_t srcBlocks, int64_t dstBlocks, const char* what) {
    for (const BlockCopy& c : copies)
      if (c.src < 0 || c.src >= srcBlocks || c.dst < 0 || c.dst >= dstBlocks)
        fail(what, " copy ", c.src, " -> ", c.dst, " is outside the pools (", srcBlocks, " and ", dstBlocks, " blocks)");
  };
  checkBlocks(plan.swapOut, numDeviceBlocks_, config_.numHostBlocks, "swap-out");
  checkBlocks(plan.swapIn, config_.numHostBlocks, numDeviceBlocks_, "swap-in");
  checkBlocks(plan.copies, numDeviceBlocks_, numDeviceBlocks_, "copy-on-write");
  const int64_t numTokens = plan.numTokens();
  const auto numSeqs = static_cast<int64_t>(plan.seqs.size());
  if (numTokens > config_.maxNumBatchedTokens) fail("a step of ", numTokens, " tokens exceeds maxNumBatchedTokens ", config_.maxNumBatchedTokens);
  if (numSeqs > config_.maxNumSeqs) fail("a step of ", numSeqs, " sequences exceeds maxNumSeqs ", config_.maxNumSeqs);
  for (const ScheduledSequence& s : plan.seqs) {
    if (s.tokens.size() != s.positions.size() || s.tokens.size() != s.slots.size() || s.tokens.empty())
      fail("request '", s.requestId, "': ", s.tokens.size(), " tokens, ", s.positions.size(), " positions and ", s.slots.size(), " slots in one step");
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      if (s.tokens[i] < 0 || s.tokens[i] >= facts_.vocabSize)
        fail("request '", s.requestId, "': token id ", s.tokens[i], " is outside the vocabulary 0..", facts_.vocabSize - 1);
      if (s.slots[i] >= numDeviceBlocks_ * facts_.blockSize)
        fail("request '", s.requestId, "': slot ", s.slots[i], " is outside the KV pool of ", numDeviceBlocks_, " blocks");
    }
    // The attention kernels trust the block tables and context lengths (templates/paged_attention.cuh).
    if (static_cast<int64_t>(s.blockTable.size()) > maxBlocksPerSeq_)
      fail("request '", s.requestId, "': a block table of ", s.blockTable.size(), " blocks exceeds maxModelLen's ", maxBlocksPerSeq_);
    if (s.contextLen < static_cast<int64_t>(s.tokens.size()) || s.contextLen > static_cast<int64_t>(s.blockTable.size()) * facts_.blockSize)
      fail("request '", s.requestId, "': context length ", s.contextLen, " does not fit its ", s.tokens.size(), " tokens and ", s.blockTable.size(),
           " blocks");
    for (int64_t block : s.blockTable)
      if (block < 0 || block >= numDeviceBlocks_) fail("request '", s.requestId, "': block ", block, " is outside the KV pool of ", numDeviceBlocks_, " blocks");
  }
}

void CudaModelRunner::swap(std::span<const BlockCopy> pairs, bool out) {
  if (pairs.empty()) return;
  const CudaDriver& d = device_->driver();
  const CUstream stream = stream_->get();
  const auto bytes = static_cast<size_t>(blockBytes_);
  const bool mapped = !hostKeys_.empty() && hostKeys_[0].devicePointer() != 0;
  if (mapped) {
    // One swap_blocks launch per layer and cache: the kernel reads (or writes) the pinned pool
    // through its device mapping. The pairs were staged by runBlockOperations.
    const size_t pairsOffset = blockPairs_.offset + (out ? 0 : static_cast<size_t>(config_.numHostBlocks) * 16);
    SwapBlocksParams p{};
    p.block_mapping = reinterpret_cast<const i64*>(static_cast<uintptr_t>(stagingDevice_.get() + pairsOffset));
    p.num_pairs = static_cast<i64>(pairs.size());
    p.block_bytes = blockBytes_;
    for (size_t layer = 0; layer < deviceKeys_.size(); ++layer) {
      for (int which = 0; which < 2; ++which) {
        const CUdeviceptr deviceAt = which == 0 ? deviceKeys_[layer].get() : deviceValues_[layer].get();
        const CUdeviceptr hostAt = which == 0 ? hostKeys_[layer].devicePointer() : hostValues_[layer].devicePointer();
        p.src_pool = reinterpret_cast<const void*>(static_cast<uintptr_t>(out ? deviceAt : hostAt));
        p.dst_pool = reinterpret_cast<void*>(static_cast<uintptr_t>(out ? hostAt : deviceAt));
        kernels_->launch(swapBlocks_, {static_cast<unsigned>(pairs.size())}, swapBlocksThreads_, p, stream, out ? "swap out" : "swap in");
      }
    }
    return;
  }
  // Not mapped: one async copy per block, layer and cache.
  for (size_t layer = 0; layer < deviceKeys_.size(); ++layer)
    for (int which = 0; which < 2; ++which) {
      const CUdeviceptr devicePool = which == 0 ? deviceKeys_[layer].get() : deviceValues_[layer].get();
      std::byte* hostPool = which == 0 ? hostKeys_[layer].data() : hostValues_[layer].data();
      for (const BlockCopy& c : pairs) {
        if (out)
          device_->check(d.cuMemcpyDtoHAsync(hostPool + static_cast<size_t>(c.dst) * bytes, devicePool + static_cast<size_t>(c.src) * bytes, bytes, stream),
                         "cuMemcpyDtoHAsync", "swap out");
        else
          device_->check(d.cuMemcpyHtoDAsync(devicePool + static_cast<size_t>(c.dst) * bytes, hostPool + static_cast<size_t>(c.src) * bytes, bytes, stream),
                         "cuMemcpyHtoDAsync", "swap in");
      }
    }
}

void CudaModelRunner::runBlockOperations(const StepPlan& plan) {
  if (plan.swapOut.empty() && plan.swapIn.empty() && plan.copies.empty()) return;
  // Pairs: swap-outs at the region's start, swap-ins after numHostBlocks pairs, copies after
  // numHostBlocks + numDeviceBlocks pairs; one upload of the region.
  auto* pairs = reinterpret_cast<int64_t*>(stagingHost_.data() + blockPairs_.offset);
  const size_t inOffset = static_cast<size_t>(config_.numHostBlocks) * 2, copyOffset = inOffset + static_cast<size_t>(numDeviceBlocks_) * 2;
  auto put = [&](std::span<const BlockCopy> list, size_t at) {
    for (size_t i = 0; i < list.size(); ++i) {
      pairs[at + 2 * i] = list[i].src;
      pairs[at + 2 * i + 1] = list[i].dst;
    }
  };
  put(plan.swapOut, 0);
  put(plan.swapIn, inOffset);
  put(plan.copies, copyOffset);
  const size_t used = (copyOffset + 2 * plan.copies.size()) * sizeof(int64_t);
  const CudaDriver& d = device_->driver();
  device_->check(d.cuMemcpyHtoDAsync(stagingDevice_.get() + blockPairs_.offset, stagingHost_.data() + blockPairs_.offset, used, stream_->get()),
                 "cuMemcpyHtoDAsync", "block pairs");
  swap(plan.swapOut, true);
  swap(plan.swapIn, false);
  if (!plan.copies.empty()) {
    CopyBlocksParams p{};
    p.key_caches = reinterpret_cast<void* const*>(static_cast<uintptr_t>(keyCachePointers_.get()));
    p.value_caches = reinterpret_cast<void* const*>(static_cast<uintptr_t>(valueCachePointers_.get()));
    p.block_mapping = reinterpret_cast<const i64*>(static_cast<uintptr_t>(stagingDevice_.get() + blockPairs_.offset + copyOffset * sizeof(int64_t)));
    p.num_layers = facts_.numLayers;
    p.num_pairs = static_cast<i64>(plan.copies.size());
    p.block_bytes = blockBytes_;
    kernels_->launch(copyBlocks_, {static_cast<unsigned>(facts_.numLayers), static_cast<unsigned>(plan.copies.size())}, copyBlocksThreads_, p,
                     stream_->get(), "copy-on-write");
  }
}

StepAttention CudaModelRunner::stage(const StepPlan& plan, int64_t padSeqs, int64_t tableWidth) {
  std::byte* base = stagingHost_.data();
  auto* ids = reinterpret_cast<int64_t*>(base + inputIds_.offset);
  auto* positions = reinterpret_cast<int64_t*>(base + positions_.offset);
  auto* slots = reinterpret_cast<int64_t*>(base + slotMapping_.offset);
  auto* contextLens = reinterpret_cast<int64_t*>(base + contextLens_.offset);
  auto* queryStart = reinterpret_cast<int64_t*>(base + queryStartLoc_.offset);
  auto* logitsIndices = reinterpret_cast<int64_t*>(base + logitsIndices_.offset);
  auto* tables = reinterpret_cast<int64_t*>(base + blockTables_.offset);

  const auto realSeqs = static_cast<int64_t>(plan.seqs.size());
  const int64_t numSeqs = std::max(realSeqs, padSeqs);
  int64_t width = tableWidth;
  if (width <= 0) {
    width = 1;
    for (const ScheduledSequence& s : plan.seqs) width = std::max<int64_t>(width, static_cast<int64_t>(s.blockTable.size()));
  }
  StepAttention attention{.anyDecode = false, .anyPrefill = false, .maxQueryLen = 1, .maxContextLen = 1};
  logitsRows_.clear();
  int64_t token = 0;
  queryStart[0] = 0;
  for (int64_t s = 0; s < numSeqs; ++s) {
    int64_t* row = tables + s * width;
    std::fill(row, row + width, 0);
    if (s < realSeqs) {
      const ScheduledSequence& seq = plan.seqs[static_cast<size_t>(s)];
      for (size_t i = 0; i < seq.tokens.size(); ++i) {
        if (seq.allLogits || (seq.needsLogits && i + 1 == seq.tokens.size())) logitsRows_.push_back(token);
        ids[token] = seq.tokens[i];
        positions[token] = seq.positions[i];
        slots[token] = seq.slots[i];
        ++token;
      }
      contextLens[s] = seq.contextLen;
      // A graph step's width covers the context bucket, which covers every block the sequence's
      // context uses; blocks allocated beyond it (for tokens to come) are not read.
      const auto copied = std::min<int64_t>(width, static_cast<int64_t>(seq.blockTable.size()));
      std::copy(seq.blockTable.begin(), seq.blockTable.begin() + copied, row);
      const auto queryLen = static_cast<int64_t>(seq.tokens.size());
      if (queryLen == 1) {
        attention.anyDecode = true;
        attention.maxContextLen = std::max(attention.maxContextLen, seq.contextLen);
      } else {
        attention.anyPrefill = true;
        attention.maxQueryLen = std::max(attention.maxQueryLen, queryLen);
      }
    } else {
      // Padding of a graph step: one token at position 0 that writes nothing (slot -1) and attends
      // to key 0 of block 0; its logits row is never returned.
      ids[token] = 0;
      positions[token] = 0;
      slots[token] = -1;
      ++token;
      contextLens[s] = 1;
    }
    queryStart[s + 1] = token;
  }
  numTokens_ = token;
  int64_t numLogits = static_cast<int64_t>(logitsRows_.size());
  std::copy(logitsRows_.begin(), logitsRows_.end(), logitsIndices);
  if (padSeqs > 0) {
    // A graph step always gathers padSeqs rows: the wanted ones first, then row 0 again.
    std::fill(logitsIndices + numLogits, logitsIndices + padSeqs, 0);
    numLogits = padSeqs;
  }

  const int64_t tokensShape[] = {numTokens_};
  const int64_t tablesShape[] = {numSeqs, width};
  const int64_t seqsShape[] = {numSeqs};
  const int64_t startShape[] = {numSeqs + 1};
  const int64_t logitsShape[] = {numLogits};
  const CUdeviceptr device = stagingDevice_.get();
  // The host side too: integer arithmetic on the inputs (positions + 2) runs on the host.
  executor_->bindInput(inputIdsIndex_, device + inputIds_.offset, tokensShape, ids);
  executor_->bindInput(positionsIndex_, device + positions_.offset, tokensShape, positions);
  executor_->bindInput(slotMappingIndex_, device + slotMapping_.offset, tokensShape, slots);
  executor_->bindInput(blockTablesIndex_, device + blockTables_.offset, tablesShape, tables);
  executor_->bindInput(contextLensIndex_, device + contextLens_.offset, seqsShape, contextLens);
  executor_->bindInput(queryStartIndex_, device + queryStartLoc_.offset, startShape, queryStart);
  if (logitsIndicesIndex_) executor_->bindInput(*logitsIndicesIndex_, device + logitsIndices_.offset, logitsShape, logitsIndices);
  uploadStaging(blockTables_.offset + static_cast<size_t>(numSeqs * width) * sizeof(int64_t));
  return attention;
}

void CudaModelRunner::uploadStaging(size_t bytes) {
  const CudaDriver& d = device_->driver();
  device_->check(d.cuMemcpyHtoDAsync(stagingDevice_.get(), stagingHost_.data(), bytes, stream_->get()), "cuMemcpyHtoDAsync", "step inputs");
}

std::optional<CudaModelRunner::GraphKey> CudaModelRunner::graphKeyFor(const StepPlan& plan) const {
  if (!config_.cudaGraphs || !logitsIndicesIndex_ || graphBatchSizes_.empty()) return std::nullopt;
  int64_t maxContext = 1;
  for (const ScheduledSequence& s : plan.seqs) {
    if (s.tokens.size() != 1) return std::nullopt;
    maxContext = std::max(maxContext, s.contextLen);
  }
  const auto numSeqs = static_cast<int64_t>(plan.seqs.size());
  auto bucket = std::ranges::lower_bound(graphBatchSizes_, numSeqs);
  if (bucket == graphBatchSizes_.end()) return std::nullopt;
  // Contexts bucket by powers of two (at least 256 keys), capped at the longest table: the graph's
  // block table width and split-K partition count follow the bucket, so few graphs cover all.
  const int64_t longest = maxBlocksPerSeq_ * facts_.blockSize;
  int64_t context = 256;
  while (context < maxContext) context *= 2;
  context = std::min(context, longest);
  return GraphKey{*bucket, context};
}

void CudaModelRunner::runModel(const StepAttention& attention, std::optional<GraphKey> key) {
  const CUstream stream = stream_->get();
  if (!key) {
    executor_->run(stream, attention);
    ++stats_.plainSteps;
    return;
  }
  if (auto it = graphs_.find(*key); it != graphs_.end()) {
    it->second->launch(stream);
    ++stats_.graphReplays;
    return;
  }
  // The first step of a bucket runs plainly: it warms up what a capture must not do for the first
  // time (cuBLASLt's algorithm choice, lazily loaded library kernels). The second is captured.
  if (notCapturable_.contains(*key) || !warmedUp_.contains(*key)) {
    executor_->run(stream, attention);
    warmedUp_.insert(*key);
    ++stats_.plainSteps;
    return;
  }
  const CudaDriver& d = device_->driver();
  std::unique_ptr<CudaGraph> graph;
  device_->check(d.cuStreamBeginCapture(stream, kCuStreamCaptureModeThreadLocal), "cuStreamBeginCapture");
  bool captured = false;
  try {
    executor_->run(stream, attention);
    captured = true;
  } catch (const Error&) {
    captured = false;
  }
  CUgraph raw = nullptr;
  const CUresult ended = d.cuStreamEndCapture(stream, &raw);
  if (captured && ended == kCudaSuccess && raw) {
    try {
      graph = std::make_unique<CudaGraph>(d, raw);
    } catch (const Error&) {
      graph.reset();  // CudaGraph destroyed `raw` when instantiation failed
    }
  } else if (raw) {
    d.cuGraphDestroy(raw);
  }
  if (!graph) {
    // Not capturable here: plain launches for this bucket from now on (a real error in the step
    // itself is thrown again by the plain run).
    notCapturable_.insert(*key);
    ++stats_.captureFailures;
    executor_->run(stream, attention);
    ++stats_.plainSteps;
    return;
  }
  graph->launch(stream);
  ++stats_.graphCaptures;
  ++stats_.graphReplays;
  graphs_.emplace(*key, std::move(graph));
}

StepLogits CudaModelRunner::downloadLogits() {
  const CudaDriver& d = device_->driver();
  const CUstream stream = stream_->get();
  std::span<const int64_t> shape = executor_->outputShape(logitsOutput_);
  const int64_t vocab = shape.empty() ? facts_.vocabSize : shape.back();
  const auto rows = static_cast<int64_t>(logitsRows_.size());
  const size_t rowBytes = static_cast<size_t>(vocab) * sizeof(float);
  const size_t bytes = static_cast<size_t>(rows) * rowBytes;
  if (bytes > logitsHost_.size()) logitsHost_ = PinnedBuffer(*device_, bytes, "the logits");  // prompt logprobs: many rows
  const CUdeviceptr logits = executor_->outputData(logitsOutput_);
  if (logitsIndicesIndex_) {
    // The graph gathered the wanted rows first.
    if (bytes) device_->check(d.cuMemcpyDtoHAsync(logitsHost_.data(), logits, bytes, stream), "cuMemcpyDtoHAsync", "logits");
  } else {
    // A graph without logits_indices computes every token's logits: fetch the rows asked for.
    for (int64_t r = 0; r < rows; ++r)
      device_->check(d.cuMemcpyDtoHAsync(logitsHost_.data() + static_cast<size_t>(r) * rowBytes,
                                         logits + static_cast<size_t>(logitsRows_[static_cast<size_t>(r)]) * rowBytes, rowBytes, stream),
                     "cuMemcpyDtoHAsync", "logits");
  }
  stream_->synchronize();
  return {reinterpret_cast<const float*>(logitsHost_.data()), rows, vocab};
}

StepLogits CudaModelRunner::execute(const StepPlan& plan) {
  device_->makeCurrent();  // the engine may call from a thread other than the constructor's
  validate(plan);
  ++stats_.steps;
  runBlockOperations(plan);
  if (plan.seqs.empty()) {
    stream_->synchronize();
    return {nullptr, 0, facts_.vocabSize};
  }
  const std::optional<GraphKey> key = graphKeyFor(plan);
  const int64_t padSeqs = key ? key->batch : 0;
  const int64_t tableWidth = key ? (key->context + facts_.blockSize - 1) / facts_.blockSize : 0;
  StepAttention attention = stage(plan, padSeqs, tableWidth);
  if (key) {
    // Graph steps launch for the bucket, not the step: every padded row is a decode row.
    attention = {.anyDecode = true, .anyPrefill = false, .maxQueryLen = 1, .maxContextLen = key->context};
  }
  executor_->prepareHostValues(stream_->get());  // outside any graph: inputs change every step
  runModel(attention, key);
  return downloadLogits();
}

}  // namespace pagedc::cuda
