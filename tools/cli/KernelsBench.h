// `pagedc kernels bench`: times the paged attention kernels. On the CPU always: the CPU backend's
// own kernel (runtime/cpu/PagedAttentionKernel.h) for block sizes 8/16/32 and a few head dims,
// decode and prefill, as achieved GB/s of K/V read against this machine's measured memcpy
// bandwidth. On a GPU when the CUDA driver finds one: the CUDA variants of the same shapes.
#pragma once

#include <CLI/CLI.hpp>

namespace pagedc::cli {

void addKernelsBenchCommand(CLI::App& kernels);

}  // namespace pagedc::cli
