// The contract between a kernel variant compiled for the host (codegen/HostKernelBuilder: the
// variant's emitted CUDA source + templates/emulation/cuda_emulation.h, built into a shared
// library) and whoever runs it (the emulated CUDA driver, `pagedc kernels check`).
//
// The library exports C functions only, so no C++ exception, type or allocator crosses the
// boundary: the launch entry catches everything the emulator throws and returns it as text. The
// "module image" of such a library, what KernelProvider hands to cuModuleLoadData, is a short
// text naming the library's path (the emulated driver dlopens it), so runtime/ needs nothing from
// codegen/ to load one.
#pragma once

#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

extern "C" {

// How the emulator orders the threads of a CTA between barriers (races show as differences
// between schedules): the values of kEmulatedSchedule... below.
struct PagedcEmulatedLaunch {
  unsigned grid[3];
  unsigned block[3];
  const void* params;  // the kernel's params struct (kernel_params.h), copied by value into the launch
  int schedule;
  unsigned long long seed;  // of the shuffled schedule
};

// Runs the whole grid; 0 on success, else nonzero with a NUL-terminated message in `error`
// (truncated to errorCapacity - 1 characters).
using PagedcEmulatedLaunchFn = int (*)(const PagedcEmulatedLaunch* launch, char* error, size_t errorCapacity);
// sizeof the params struct the kernel takes (checked against the caller's before a launch).
using PagedcEmulatedParamsSizeFn = size_t (*)();
// The specialisation key the library was built for (KernelKey::str()).
using PagedcEmulatedKeyFn = const char* (*)();
}

namespace pagedc {

inline constexpr const char* kEmulatedLaunchEntry = "pagedc_emulated_launch";
inline constexpr const char* kEmulatedParamsSizeEntry = "pagedc_emulated_params_size";
inline constexpr const char* kEmulatedKeyEntry = "pagedc_emulated_key";

inline constexpr int kEmulatedScheduleForward = 0;   // threads in index order
inline constexpr int kEmulatedScheduleReverse = 1;   // highest index first
inline constexpr int kEmulatedScheduleShuffled = 2;  // a random order per barrier interval, from the seed

// The schedule's name ("forward", "reverse", "shuffled"), for messages.
inline const char* emulatedScheduleName(int schedule) {
  switch (schedule) {
    case kEmulatedScheduleForward: return "forward";
    case kEmulatedScheduleReverse: return "reverse";
    case kEmulatedScheduleShuffled: return "shuffled";
  }
  return "unknown";
}

// An emulated module image: the magic line then the library's absolute path, NUL-terminated.
inline constexpr std::string_view kEmulatedImageMagic = "pagedc-emulated-kernel-library\n";

inline std::vector<char> makeEmulatedKernelImage(const std::string& libraryPath) {
  // Built as one string first: GCC 12 warns (-Warray-bounds, falsely) on inserting a string_view's
  // characters into a vector.
  std::string text(kEmulatedImageMagic);
  text += libraryPath;
  return std::vector<char>(text.c_str(), text.c_str() + text.size() + 1);
}

// The library path of an emulated image, or nullopt when `image` is not one (a cubin, PTX).
inline std::optional<std::string> emulatedKernelLibraryPath(const void* image) {
  if (!image) return std::nullopt;
  const char* text = static_cast<const char*>(image);
  if (std::strncmp(text, kEmulatedImageMagic.data(), kEmulatedImageMagic.size()) != 0) return std::nullopt;
  return std::string(text + kEmulatedImageMagic.size());
}

}  // namespace pagedc
