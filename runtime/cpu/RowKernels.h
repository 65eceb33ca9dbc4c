// The CPU backend's row-wise kernels: normalisations, activations and rotary embeddings, the
// fused ops the compiler emits (ir/ops/FusedOps.cpp holds their reference semantics).
//
// Every kernel computes each row (or element) with a fixed arithmetic order that does not depend
// on how many rows there are or which thread runs them, so a token's result is the same bits
// whatever else is in the batch. Threads split the rows (OpenMP).
#pragma once

#include <cstdint>

namespace pagedc::cpu {

// out = norm(x (+ residual)) * weight (+ bias); sumOut (optional) receives x + residual.
// RMS norm when subtractMean is false, layer norm when true. Statistics accumulate in double, as
// the reference does, so the kernels differ from it only in the last bits of the sum.
struct NormArgs {
  const float* x = nullptr;
  const float* residual = nullptr;  // optional
  const float* weight = nullptr;
  const float* bias = nullptr;      // optional (layer norm)
  float* out = nullptr;
  float* sumOut = nullptr;          // optional (x + residual, or x); may alias neither x nor residual
  int64_t rows = 0;
  int64_t hidden = 0;
  double epsilon = 1e-5;
  bool subtractMean = false;
};
void normalize(const NormArgs& args);

enum class Activation { Silu, GeluErf, GeluTanh, Relu };

// out[i] = act(x[i]); out may alias x.
void activate(const float* x, float* out, int64_t count, Activation activation);
// out[i] = act(gate[i]) * up[i]; out may alias gate or up.
void gatedActivate(const float* gate, const float* up, float* out, int64_t count, Activation activation);

// RoPE on x [batch, heads, seq, headDim], or [batch, seq, heads, headDim] when tokenMajor (ONNX
// RotaryEmbedding's 3-D input), at positions [positionsBatch, seq] with tables [maxPositions,
// rotaryDim / 2]; out may alias x. Throws naming the token when a position is outside the tables.
struct RopeArgs {
  const float* x = nullptr;
  float* out = nullptr;
  const int64_t* positions = nullptr;
  const float* cosTable = nullptr;
  const float* sinTable = nullptr;
  int64_t batch = 0, heads = 0, seq = 0, headDim = 0;
  int64_t positionsBatch = 1;  // 1 (shared) or batch
  int64_t maxPositions = 0;
  int64_t rotaryDim = 0;
  bool interleaved = false;
  bool tokenMajor = false;
};
void rope(const RopeArgs& args);

}  // namespace pagedc::cpu
