// Reads and writes NumPy .npy arrays and .npz archives (zip files of .npy), the format of goldens.
#pragma once

#include <map>
#include <string>

#include "ir/Tensor.h"

namespace pagedc {

// Arrays by name (the .npy member name without its extension). Errors name the file and member.
std::map<std::string, Tensor> readNpz(const std::string& path);
// Writes an uncompressed archive; bf16 tensors are widened to f32 (NumPy has no bf16).
void writeNpz(const std::string& path, const std::map<std::string, Tensor>& arrays);

Tensor parseNpy(const std::string& bytes, const std::string& what);
std::string serializeNpy(const Tensor& tensor);

}  // namespace pagedc
