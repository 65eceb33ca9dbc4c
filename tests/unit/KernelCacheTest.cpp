// The on-disk kernel cache: hits, atomic writes from several processes, damaged entries detected,
// deleted and rebuilt.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "codegen/KernelCache.h"

namespace pagedc {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("pagedc-kernel-cache-" + std::to_string(getpid()) + "-" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<char> payloadOf(size_t size, char seed) {
  std::vector<char> payload(size);
  for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>(seed + i * 7);
  return payload;
}

TEST(KernelCache, StoredPayloadLoadsBackAndOtherKeysMiss) {
  TempDir dir;
  KernelCache cache(dir.path.string());
  EXPECT_FALSE(cache.load("key a").has_value());
  cache.store("key a", payloadOf(1000, 1));
  std::optional<std::vector<char>> loaded = cache.load("key a");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(*loaded, payloadOf(1000, 1));
  EXPECT_FALSE(cache.load("key b").has_value());
  // No temporary files are left behind.
  for (const auto& entry : fs::directory_iterator(dir.path)) EXPECT_EQ(entry.path().string(), cache.entryPath("key a"));
}

TEST(KernelCache, DamagedEntriesAreDetectedDeletedAndMiss) {
  TempDir dir;
  KernelCache cache(dir.path.string());
  std::vector<std::string> messages;
  cache.setDebugSink([&](const std::string& m) { messages.push_back(m); });
  const std::string path = cache.entryPath("key");
  auto damage = [&](const std::function<void(std::string&)>& edit) {
    cache.store("key", payloadOf(4096, 3));
    std::string bytes;
    {
      std::ifstream in(path, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    edit(bytes);
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_FALSE(cache.load("key").has_value());
    EXPECT_FALSE(fs::exists(path)) << "a damaged entry must be deleted";
    cache.store("key", payloadOf(4096, 3));  // rebuilt
    EXPECT_EQ(cache.load("key"), payloadOf(4096, 3));
  };
  damage([](std::string& b) { b.resize(b.size() / 2); });         // truncated
  damage([](std::string& b) { b[b.size() - 10] ^= 0x40; });       // a flipped payload byte
  damage([](std::string& b) { b[0] = 'X'; });                     // not an entry
  damage([](std::string& b) { b.clear(); });                      // empty
  EXPECT_GE(messages.size(), 4u);
  // Another key's entry copied over this one's name is not taken for it.
  cache.store("other", payloadOf(100, 9));
  fs::copy_file(cache.entryPath("other"), path, fs::copy_options::overwrite_existing);
  EXPECT_FALSE(cache.load("key").has_value());
}

TEST(KernelCache, ConcurrentWritersLeaveOneWholeEntry) {
  TempDir dir;
  const std::string cacheDir = dir.path.string();
  constexpr int kWriters = 6;
  std::vector<pid_t> children;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      KernelCache cache(cacheDir);
      for (int round = 0; round < 20; ++round) {
        cache.store("shared key", payloadOf(256 * 1024, 5));
        std::optional<std::vector<char>> seen = cache.load("shared key");
        // A reader sees nothing (between a damaged-entry removal and a rename) or a whole entry.
        if (seen && *seen != payloadOf(256 * 1024, 5)) _exit(2);
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a writer saw a partial entry";
  }
  KernelCache cache(cacheDir);
  EXPECT_EQ(cache.load("shared key"), payloadOf(256 * 1024, 5));
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path)) ++files;
  EXPECT_EQ(files, 1u) << "temporary files left behind";
}

}  // namespace
}  // namespace pagedc
