// The on-disk cache of compiled kernels (PTX and cubins), shared by every pagedc process of a user.
//
// Location: $PAGEDC_CACHE_DIR, else $XDG_CACHE_HOME/pagedc/kernels, else ~/.cache/pagedc/kernels.
// An entry is named by the SHA-256 of its key text, which the builder composes from everything that
// determines the payload (the variant's key, the template source hash, the compile options, the
// NVRTC/nvJitLink versions and the target architecture), so a change to any of them misses.
//
// Entry file: a fixed header (magic "PGDCKRNL", format version, key text length, payload length,
// the payload's SHA-256), the key text, then the payload. Guarantees:
//  - writes are atomic: written to a unique temporary file in the same directory, fsync'ed, then
//    renamed over the entry (and the directory fsync'ed), so a reader sees a whole entry or none,
//    and several processes writing the same entry at once leave one whole copy;
//  - a damaged entry (truncated, a flipped byte, another key's text, a different format) is
//    detected on load, reported at debug level, deleted and treated as a miss, so it is rebuilt.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pagedc {

class KernelCache {
public:
  // `dir` empty: defaultDir(). The directory is created on first store.
  explicit KernelCache(std::string dir = "");

  // $PAGEDC_CACHE_DIR, else $XDG_CACHE_HOME/pagedc/kernels, else $HOME/.cache/pagedc/kernels.
  static std::string defaultDir();

  // The payload stored under `keyText`, or nullopt (a miss, or a damaged entry that was deleted).
  std::optional<std::vector<char>> load(const std::string& keyText) const;
  // Stores atomically; throws Error naming the file when it cannot be written.
  void store(const std::string& keyText, const std::vector<char>& payload) const;

  // <dir>/<sha256(keyText)>.bin
  std::string entryPath(const std::string& keyText) const;
  const std::string& dir() const { return dir_; }

  // Where debug messages go (a damaged entry, a failed removal). Default: stderr when
  // $PAGEDC_DEBUG is set to anything but "" or "0", else nowhere.
  void setDebugSink(std::function<void(const std::string&)> sink) { debug_ = std::move(sink); }

  static constexpr unsigned kFormatVersion = 1;

private:
  void debug(const std::string& message) const;

  std::string dir_;
  std::function<void(const std::string&)> debug_;
};

}  // namespace pagedc
