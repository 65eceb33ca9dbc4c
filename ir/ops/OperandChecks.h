// Shape-rule checks on an op's operands and attributes; each fails through ctx.error, naming the op and operand.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "ir/OpDef.h"

namespace pagedc {

// Every operand check takes an optional `name` for its message ("X", "indices"); without one the
// operand is named by index and value: "operand 1 (%x)".
std::string operandLabel(const InferContext& ctx, size_t operand, std::string_view name = {});

// Element-type checks.
void requireFloat(const InferContext& ctx, size_t operand, std::string_view name = {});
void requireNumeric(const InferContext& ctx, size_t operand, std::string_view name = {});  // integer or floating, not bool
void requireBool(const InferContext& ctx, size_t operand, std::string_view name = {});
void requireInteger(const InferContext& ctx, size_t operand, std::string_view name = {});
// i64 or i32 only: the index and shape operands (indices, axes, pads, repeats, ...).
void requireIndexInteger(const InferContext& ctx, size_t operand, std::string_view name = {});
// All present operands in [first, last) share operand `first`'s dtype.
void requireSameDType(const InferContext& ctx, size_t first, size_t last);

// The operand's rank, which must be one of `ranks`.
size_t requireRank(const InferContext& ctx, size_t operand, std::initializer_list<size_t> ranks, std::string_view name = {});
// The operand must broadcast unidirectionally (numpy rule, its dims 1 or equal) to `target`.
void requireUnidirectionalBroadcast(const InferContext& ctx, size_t operand, const Shape& target, std::string_view name = {});
// The rank of the operand, or nullopt when the type does not say (shape rules then give up
// precision rather than fail: the ONNX importer may hand over values of unknown rank).
std::optional<size_t> rankOf(const InferContext& ctx, size_t operand);
// The constant length of a 1-D operand (a shape, axes, pads vector), when its type says it.
std::optional<int64_t> vectorLength(const InferContext& ctx, size_t operand, std::string_view name = {});

// Two sizes that must be equal: an error only when both are constants that differ, since
// symbolic sizes may still agree at run time (the interpreter checks the real ones).
void requireSameDim(const InferContext& ctx, const Dim& a, const Dim& b, std::string_view what);
// a / b exactly; a constant remainder is an error, a symbolic one gives a fresh dimension.
Dim divideDim(InferContext& ctx, const Dim& a, const Dim& b, std::string_view what);
// Attribute value, checked positive, for head counts and sizes.
int64_t positiveIntAttr(const InferContext& ctx, std::string_view name, int64_t fallback);

}  // namespace pagedc
