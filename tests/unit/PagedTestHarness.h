// A minimal paged-KV driver for compiled graphs in tests: per-layer caches, block tables with
// deliberately scattered physical blocks, and ragged steps that mix sequences, prefill and decode.
#pragma once

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "ir/Graph.h"
#include "ir/Interpreter.h"
#include "ir/ModelFacts.h"
#include "ir/RaggedInterface.h"

namespace pagedc::test {

class PagedHarness {
public:
  PagedHarness(const Graph& graph, const ModelFacts& facts, int64_t numBlocks, uint32_t seed = 7)
      : graph_(graph), facts_(facts), interpreter_(graph), numBlocks_(numBlocks) {
    freeBlocks_.resize(static_cast<size_t>(numBlocks));
    std::iota(freeBlocks_.begin(), freeBlocks_.end(), 0);
    std::shuffle(freeBlocks_.begin(), freeBlocks_.end(), std::mt19937(seed));  // scattered physical order
    for (const Value* input : graph.inputs)
      if (input->name.rfind("key_cache.", 0) == 0 || input->name.rfind("value_cache.", 0) == 0)
        caches_[input->name] = Tensor::zeros(DType::F32, {numBlocks, facts.numKvHeads, facts.blockSize, facts.headDim});
  }

  struct Chunk {
    int sequence = 0;
    std::vector<int64_t> tokens;
    bool allLogits = false;  // logits for every token of the chunk, not only the last
  };

  // Runs one step; returns logits rows [tokens-with-logits, vocab] per chunk, in chunk order.
  std::vector<std::vector<std::vector<float>>> step(const std::vector<Chunk>& chunks) {
    std::vector<int64_t> ids, positions, slots, contextLens, queryStart{0}, logitsIndices;
    int64_t maxBlocks = 1;
    for (const Chunk& chunk : chunks) {
      int64_t& length = lengths_[chunk.sequence];
      std::vector<int64_t>& table = tables_[chunk.sequence];
      for (size_t i = 0; i < chunk.tokens.size(); ++i) {
        int64_t position = length + static_cast<int64_t>(i);
        if (position / facts_.blockSize >= static_cast<int64_t>(table.size())) {
          if (freeBlocks_.empty()) throw std::runtime_error("harness out of blocks");
          table.push_back(freeBlocks_.back());
          freeBlocks_.pop_back();
        }
        ids.push_back(chunk.tokens[i]);
        positions.push_back(position);
        slots.push_back(table[static_cast<size_t>(position / facts_.blockSize)] * facts_.blockSize + position % facts_.blockSize);
        if (chunk.allLogits || i + 1 == chunk.tokens.size()) logitsIndices.push_back(static_cast<int64_t>(ids.size()) - 1);
      }
      length += static_cast<int64_t>(chunk.tokens.size());
      contextLens.push_back(length);
      queryStart.push_back(static_cast<int64_t>(ids.size()));
      maxBlocks = std::max<int64_t>(maxBlocks, static_cast<int64_t>(table.size()));
    }
    std::vector<int64_t> blockTables(chunks.size() * static_cast<size_t>(maxBlocks), 0);
    for (size_t s = 0; s < chunks.size(); ++s) {
      const auto& table = tables_[chunks[s].sequence];
      std::copy(table.begin(), table.end(), blockTables.begin() + static_cast<std::ptrdiff_t>(s * static_cast<size_t>(maxBlocks)));
    }
    auto i64 = [](std::vector<int64_t> values, std::vector<int64_t> shape) { return Tensor::fromValues(DType::I64, std::move(shape), values); };
    std::map<std::string, Tensor> inputs = caches_;
    const auto numTokens = static_cast<int64_t>(ids.size()), numSeqs = static_cast<int64_t>(chunks.size());
    inputs[ragged::kInputIds] = i64(ids, {numTokens});
    inputs[ragged::kPositions] = i64(positions, {numTokens});
    inputs[ragged::kSlotMapping] = i64(slots, {numTokens});
    inputs[ragged::kBlockTables] = i64(blockTables, {numSeqs, maxBlocks});
    inputs[ragged::kContextLens] = i64(contextLens, {numSeqs});
    inputs[ragged::kQueryStartLoc] = i64(queryStart, {numSeqs + 1});
    inputs[ragged::kLogitsIndices] = i64(logitsIndices, {static_cast<int64_t>(logitsIndices.size())});
    auto outputs = interpreter_.run(inputs);
    for (int layer = 0; layer < facts_.numLayers; ++layer) {
      caches_[ragged::keyCache(layer)] = outputs.at(ragged::keyCacheOut(layer));
      caches_[ragged::valueCache(layer)] = outputs.at(ragged::valueCacheOut(layer));
    }
    const Tensor& logits = outputs.at(ragged::kLogits);
    int64_t vocab = logits.shape()[1];
    std::vector<std::vector<std::vector<float>>> result;
    size_t row = 0;
    for (const Chunk& chunk : chunks) {
      result.emplace_back();
      size_t rows = chunk.allLogits ? chunk.tokens.size() : 1;
      for (size_t r = 0; r < rows; ++r, ++row)
        result.back().emplace_back(logits.data<float>() + static_cast<int64_t>(row) * vocab, logits.data<float>() + static_cast<int64_t>(row + 1) * vocab);
    }
    return result;
  }

  int64_t blocksInUse() const { return numBlocks_ - static_cast<int64_t>(freeBlocks_.size()); }

private:
  const Graph& graph_;
  ModelFacts facts_;
  Interpreter interpreter_;
  int64_t numBlocks_;
  std::vector<int64_t> freeBlocks_;
  std::map<std::string, Tensor> caches_;
  std::map<int, int64_t> lengths_;
  std::map<int, std::vector<int64_t>> tables_;
};

}  // namespace pagedc::test
