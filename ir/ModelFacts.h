// What the runtime must know about a compiled model, found by the compiler and stored in the
// artifact's manifest: attention geometry, vocabulary, rotary parameters, KV cache layout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ir/DType.h"

namespace pagedc {

struct RotaryFacts {
  bool present = false;
  bool interleaved = false;  // rotates adjacent pairs (2i, 2i+1) instead of halves
  int64_t rotaryDim = 0;     // leading dims of each head that rotate (partial rotary when < head dim)
  double base = 0;           // theta base when it could be recovered from the tables, else 0
};

struct ModelFacts {
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKvHeads = 0;
  int64_t headDim = 0;
  int64_t hiddenSize = 0;
  int64_t vocabSize = 0;
  int64_t maxPositions = 0;  // rows of the position table (rotary or learned), 0 when unbounded
  int64_t slidingWindow = -1;
  double attentionScale = 0;
  RotaryFacts rotary;
  int64_t blockSize = 16;
  DType weightDType = DType::F32;
  DType kvDType = DType::F32;
  // Key and value bytes one token occupies across all layers: 2 * layers * kv_heads * head_dim * sizeof(kv).
  int64_t kvBytesPerToken() const { return 2 * numLayers * numKvHeads * headDim * static_cast<int64_t>(dtypeSize(kvDType)); }
  std::vector<std::string> kernelVariants;  // specialisation keys of the kernels the graph needs
};

}  // namespace pagedc
