// The reference runner: StepPlan -> ragged inputs -> interpreter -> logits rows and updated caches.
#include "runtime/ReferenceModelRunner.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "ir/Error.h"
#include "ir/RaggedInterface.h"

namespace pagedc {

ReferenceModelRunner::ReferenceModelRunner(Artifact artifact, int64_t numDeviceBlocks, int64_t numHostBlocks)
    : artifact_(std::move(artifact)),
      graph_(*artifact_->graph),
      facts_(artifact_->facts()),
      numDeviceBlocks_(numDeviceBlocks),
      numHostBlocks_(numHostBlocks) {
  init();
}

ReferenceModelRunner::ReferenceModelRunner(const Graph& graph, const ModelFacts& facts, int64_t numDeviceBlocks,
                                           int64_t numHostBlocks)
    : graph_(graph), facts_(facts), numDeviceBlocks_(numDeviceBlocks), numHostBlocks_(numHostBlocks) {
  init();
}

void ReferenceModelRunner::init() {
  if (numDeviceBlocks_ < 1) fail("reference runner: numDeviceBlocks must be >= 1, got ", numDeviceBlocks_);
  if (numHostBlocks_ < 0) fail("reference runner: numHostBlocks must be >= 0, got ", numHostBlocks_);
  if (facts_.numLayers < 1 || facts_.blockSize < 1 || facts_.vocabSize < 1)
    fail("reference runner: the model facts lack layers, block size or vocabulary");
  interpreter_ = std::make_unique<Interpreter>(graph_);
  for (int layer = 0; layer < facts_.numLayers; ++layer)
    for (const auto& name : {ragged::keyCache(layer), ragged::valueCache(layer)})
      if (std::ranges::none_of(graph_.inputs, [&](const Value* v) { return v->name == name; }))
        fail("reference runner: the graph has no input ", name, " (not a compiled paged graph?)");
  auto shape = [&](int64_t blocks) { return std::vector<int64_t>{blocks, facts_.numKvHeads, facts_.blockSize, facts_.headDim}; };
  for (int i = 0; i < 2 * facts_.numLayers; ++i) {
    device_.push_back(Tensor::zeros(facts_.kvDType, shape(numDeviceBlocks_)));
    host_.push_back(Tensor::zeros(facts_.kvDType, shape(numHostBlocks_)));
  }
}

const Tensor& ReferenceModelRunner::cache(bool host, int layer, bool value) const {
  if (layer < 0 || layer >= facts_.numLayers) fail("reference runner: no layer ", layer);
  return (host ? host_ : device_)[static_cast<size_t>(layer * 2 + (value ? 1 : 0))];
}

void ReferenceModelRunner::copyBlocks(const std::vector<BlockCopy>& copies, bool fromHost, bool toHost, const char* what) {
  const int64_t srcBlocks = fromHost ? numHostBlocks_ : numDeviceBlocks_;
  const int64_t dstBlocks = toHost ? numHostBlocks_ : numDeviceBlocks_;
  const size_t blockBytes =
      static_cast<size_t>(facts_.numKvHeads * facts_.blockSize * facts_.headDim) * dtypeSize(facts_.kvDType);
  for (const BlockCopy& c : copies) {
    if (c.src < 0 || c.src >= srcBlocks || c.dst < 0 || c.dst >= dstBlocks)
      fail("reference runner: ", what, " copy ", c.src, " -> ", c.dst, " outside the pools (", srcBlocks, " and ",
           dstBlocks, " blocks)");
    for (size_t i = 0; i < device_.size(); ++i) {
      Tensor& dst = (toHost ? host_ : device_)[i];
      std::byte* out = dst.mutableBytes();  // first: it may copy a shared buffer, which src may be
      const Tensor& src = (fromHost ? host_ : device_)[i];
      std::memmove(out + static_cast<size_t>(c.dst) * blockBytes, src.bytes() + static_cast<size_t>(c.src) * blockBytes,
                   blockBytes);
    }
  }
}

StepLogits ReferenceModelRunner::execute(const StepPlan& plan) {
  copyBlocks(plan.swapOut, false, true, "swap-out");
  copyBlocks(plan.swapIn, true, false, "swap-in");
  copyBlocks(plan.copies, false, false, "copy-on-write");
  if (plan.seqs.empty()) return {nullptr, 0, facts_.vocabSize};

  std::vector<int64_t> ids, positions, slots, contextLens, queryStart{0}, logitsIndices;
  int64_t maxBlocks = 1;
  const int64_t numSlots = numDeviceBlocks_ * facts_.blockSize;
  for (const ScheduledSequence& s : plan.seqs) {
    if (s.tokens.empty() || s.tokens.size() != s.positions.size() || s.tokens.size() != s.slots.size())
      fail("reference runner: request ", s.requestId, " sequence ", s.seq, ": tokens, positions and slots disagree");
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      if (s.tokens[i] < 0 || s.tokens[i] >= facts_.vocabSize)
        fail("reference runner: request ", s.requestId, ": token id ", s.tokens[i], " outside the vocabulary [0, ",
             facts_.vocabSize, ")");
      if (s.slots[i] < 0 || s.slots[i] >= numSlots)
        fail("reference runner: request ", s.requestId, ": slot ", s.slots[i], " outside the pool of ", numSlots);
      if (facts_.maxPositions > 0 && s.positions[i] >= facts_.maxPositions)
        fail("reference runner: request ", s.requestId, ": position ", s.positions[i], " beyond the model's ",
             facts_.maxPositions);
      ids.push_back(s.tokens[i]);
      positions.push_back(s.positions[i]);
      slots.push_back(s.slots[i]);
      if (s.allLogits || (s.needsLogits && i + 1 == s.tokens.size()))
        logitsIndices.push_back(static_cast<int64_t>(ids.size()) - 1);
    }
    for (BlockId b : s.blockTable)
      if (b < 0 || b >= numDeviceBlocks_)
        fail("reference runner: request ", s.requestId, ": block ", b, " outside the pool of ", numDeviceBlocks_);
    if (static_cast<int64_t>(s.blockTable.size()) * facts_.blockSize < s.contextLen)
      fail("reference runner: request ", s.requestId, ": ", s.blockTable.size(), " blocks for ", s.contextLen, " tokens");
    contextLens.push_back(s.contextLen);
    queryStart.push_back(static_cast<int64_t>(ids.size()));
    maxBlocks = std::max<int64_t>(maxBlocks, static_cast<int64_t>(s.blockTable.size()));
  }
  const auto numSeqs = static_cast<int64_t>(plan.seqs.size());
  std::vector<int64_t> blockTables(static_cast<size_t>(numSeqs * maxBlocks), 0);
  for (size_t i = 0; i < plan.seqs.size(); ++i)
    std::ranges::copy(plan.seqs[i].blockTable, blockTables.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(maxBlocks)));
  const auto numRows = static_cast<int64_t>(logitsIndices.size());
  // A step that needs no logits (a prompt chunk) still asks for one row, dropped below.
  if (logitsIndices.empty()) logitsIndices.push_back(0);

  auto i64 = [](const std::vector<int64_t>& values, std::vector<int64_t> shape) {
    return Tensor::fromValues(DType::I64, std::move(shape), values);
  };
  std::map<std::string, Tensor> inputs;
  const auto numTokens = static_cast<int64_t>(ids.size());
  inputs[ragged::kInputIds] = i64(ids, {numTokens});
  inputs[ragged::kPositions] = i64(positions, {numTokens});
  inputs[ragged::kSlotMapping] = i64(slots, {numTokens});
  inputs[ragged::kBlockTables] = i64(blockTables, {numSeqs, maxBlocks});
  inputs[ragged::kContextLens] = i64(contextLens, {numSeqs});
  inputs[ragged::kQueryStartLoc] = i64(queryStart, {numSeqs + 1});
  inputs[ragged::kLogitsIndices] = i64(logitsIndices, {static_cast<int64_t>(logitsIndices.size())});
  for (int layer = 0; layer < facts_.numLayers; ++layer) {
    inputs[ragged::keyCache(layer)] = device_[static_cast<size_t>(2 * layer)];
    inputs[ragged::valueCache(layer)] = device_[static_cast<size_t>(2 * layer + 1)];
  }
  auto outputs = interpreter_->run(inputs);
  inputs.clear();  // drop the input references so the caches below are not shared
  for (int layer = 0; layer < facts_.numLayers; ++layer) {
    for (int v = 0; v < 2; ++v) {
      const std::string name = v ? ragged::valueCacheOut(layer) : ragged::keyCacheOut(layer);
      auto it = outputs.find(name);
      if (it == outputs.end()) fail("reference runner: the graph has no output ", name);
      Tensor& cache = device_[static_cast<size_t>(2 * layer + v)];
      cache = it->second.dtype() == facts_.kvDType ? it->second : it->second.convertTo(facts_.kvDType);
    }
  }
  auto logits = outputs.find(ragged::kLogits);
  if (logits == outputs.end()) fail("reference runner: the graph has no output ", ragged::kLogits);
  logits_ = logits->second;
  if (logits_.rank() != 2 || logits_.shape()[0] != static_cast<int64_t>(logitsIndices.size()))
    fail("reference runner: logits of shape ", logits_.shapeStr(), " for ", logitsIndices.size(), " rows");
  return {logits_.data<float>(), numRows, logits_.shape()[1]};
}

}  // namespace pagedc
