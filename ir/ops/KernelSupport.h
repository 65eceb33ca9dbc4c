// Helpers shared by the normalization, attention and quantization ops: operand checks in shape
// rules and the small index computations their reference implementations repeat.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <vector>

#include "ir/OpDef.h"

namespace pagedc::kernels {

// The DType of an ONNX TensorProto data-type code (stash_type, softmax_precision), if it is one.
std::optional<DType> dtypeFromOnnxCode(int64_t code);

// Shape-rule checks; each throws through ctx.error so the message names the op and operand.
size_t requireRank(const InferContext& ctx, size_t operand, std::string_view name, std::initializer_list<size_t> ranks);
void requireFloat(const InferContext& ctx, size_t operand, std::string_view name);
void requireInteger(const InferContext& ctx, size_t operand, std::string_view name);
// Two sizes that must be equal: an error only when both are constants that differ, since
// symbolic sizes may still agree at run time (the interpreter checks the real ones).
void requireSameDim(const InferContext& ctx, const Dim& a, const Dim& b, std::string_view what);
// a / b exactly; a constant remainder is an error, a symbolic one gives a fresh dimension.
Dim divideDim(InferContext& ctx, const Dim& a, const Dim& b, std::string_view what);
// Operand `operand` must broadcast unidirectionally (numpy rule, its dims 1 or equal) to `target`.
void requireUnidirectionalBroadcast(const InferContext& ctx, size_t operand, std::string_view name, const Shape& target);
// Attribute value, checked positive, for head counts and sizes.
int64_t positiveIntAttr(const InferContext& ctx, std::string_view name, int64_t fallback);

std::vector<int64_t> rowMajorStrides(const std::vector<int64_t>& shape);

// Maps a flat index of `to` onto the element of a tensor of shape `from` that numpy broadcasting
// reads there (`from` must broadcast to `to`).
class BroadcastIndexer {
public:
  BroadcastIndexer(const std::vector<int64_t>& from, const std::vector<int64_t>& to);
  int64_t operator()(int64_t flatIndex) const;

private:
  std::vector<int64_t> toShape_;
  std::vector<int64_t> fromStrides_;  // aligned with toShape_, 0 where broadcast
};

// Rotates the first rotaryDim elements of one head vector in place (RoPE): pairs are (i, i + rot/2)
// or, interleaved, (2i, 2i + 1); cos and sin hold rot/2 values.
void rotateHead(float* head, const float* cos, const float* sin, int64_t rotaryDim, bool interleaved);

}  // namespace pagedc::kernels
