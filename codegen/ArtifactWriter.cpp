// The artifact writer: weights streamed into weights.bin (hashed as written), then the graph text,
// tokenizer files and manifest, all in a temporary directory renamed into place at the end.
#include "codegen/ArtifactWriter.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "ir/Error.h"
#include "ir/TextFormat.h"
#include "runtime/Sha256.h"

namespace pagedc {

namespace fs = std::filesystem;

namespace {

// Flushes a file's (or directory's) data to disk so that the final rename publishes complete files.
void syncPath(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) fail(path.string(), ": cannot open to sync: ", std::strerror(errno));
  int rc = ::fsync(fd);
  int error = errno;
  ::close(fd);
  if (rc != 0) fail(path.string(), ": cannot sync: ", std::strerror(error));
}

// A file written through a buffer and hashed on the way, so nothing is read back to checksum it.
class HashedWriter {
public:
  explicit HashedWriter(const fs::path& path) : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
    if (!out_) fail(path.string(), ": cannot create: ", std::strerror(errno));
  }
  void write(const void* data, size_t size) {
    out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out_) fail(path_.string(), ": write failed: ", std::strerror(errno));
    hash_.update(data, size);
    bytes_ += size;
  }
  uint64_t bytes() const { return bytes_; }
  FileEntry finish() {
    out_.close();
    if (!out_) fail(path_.string(), ": write failed: ", std::strerror(errno));
    syncPath(path_, false);
    return {bytes_, hash_.hexDigest()};
  }

private:
  fs::path path_;
  std::ofstream out_;
  Sha256 hash_;
  uint64_t bytes_ = 0;
};

FileEntry writeWeights(const Graph& graph, const fs::path& path, std::vector<WeightEntry>& index) {
  HashedWriter out(path);
  std::map<std::string, TensorType> written;
  static const char kZeros[kWeightAlignment] = {};
  for (const auto& op : graph.ops()) {
    if (op->opName() != "weight") continue;
    std::string name = op->stringAttr("name", "");
    const TensorType& declared = op->result(0)->type;
    if (auto [it, inserted] = written.emplace(name, declared); !inserted) {
      // Two ops may share a weight, but then they must agree on its type: the file holds one copy.
      if (it->second != declared)
        fail(op->describe(), ": weight '", name, "' is declared ", declared.str(), " here and ", it->second.str(), " elsewhere");
      continue;
    }
    const Tensor* data = graph.weights ? graph.weights->find(name) : nullptr;
    if (!data) fail(op->describe(), ": weight '", name, "' has no data in the graph's weight store");
    bool sameShape = declared.hasRank() && declared.rank() == data->rank();
    for (size_t i = 0; sameShape && i < data->rank(); ++i) sameShape = declared.dim(i).constant() == data->shape()[i];
    if (!sameShape)
      fail(op->describe(), ": weight '", name, "' is declared ", declared.str(), " but its data has shape ", data->shapeStr());
    // The graph is the truth: the pipeline's dtype conversion changes the declared types.
    Tensor converted = data->dtype() == declared.dtype ? *data : data->convertTo(declared.dtype);
    uint64_t padding = (kWeightAlignment - out.bytes() % kWeightAlignment) % kWeightAlignment;
    out.write(kZeros, padding);
    index.push_back({name, declared.dtype, converted.shape(), out.bytes(), converted.byteSize()});
    out.write(converted.bytes(), converted.byteSize());
  }
  return out.finish();
}

FileEntry writeTextFile(const fs::path& path, const std::string& text) {
  HashedWriter out(path);
  out.write(text.data(), text.size());
  return out.finish();
}

FileEntry copyFile(const fs::path& from, const fs::path& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) fail(from.string(), ": cannot read");
  HashedWriter out(to);
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    out.write(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) fail(from.string(), ": read failed");
  return out.finish();
}

// Publishes `staged` at `target`: a plain rename when nothing is there; an atomic exchange with an
// existing artifact (Linux renameat2), falling back to remove-then-rename where the filesystem
// cannot exchange. The staged path holds the old artifact afterwards, for the caller to delete.
void publish(const fs::path& staged, const fs::path& target) {
  std::error_code ec;
  if (!fs::exists(target, ec)) {
    if (::rename(staged.c_str(), target.c_str()) != 0) fail(target.string(), ": cannot rename the finished artifact into place: ", std::strerror(errno));
    return;
  }
  if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) return;
  if (errno != EINVAL && errno != ENOSYS)
    fail(target.string(), ": cannot replace the existing artifact: ", std::strerror(errno));
  fs::remove_all(target);
  if (::rename(staged.c_str(), target.c_str()) != 0) fail(target.string(), ": cannot rename the finished artifact into place: ", std::strerror(errno));
}

}  // namespace

namespace {
fs::path targetPath(const std::string& outputPath) {
  fs::path target = fs::absolute(fs::path(outputPath).lexically_normal());
  if (!target.has_filename()) target = target.parent_path();  // "model.pgc/" names the directory
  return target;
}
}  // namespace

void checkArtifactOutput(const std::string& outputPath) {
  fs::path target = targetPath(outputPath);
  std::error_code ec;
  // Only an earlier artifact (or an empty directory) may be replaced: never a user's other files.
  if (fs::exists(target, ec) && !(fs::is_directory(target, ec) && (fs::exists(target / kManifestFile, ec) || fs::is_empty(target, ec))))
    fail(outputPath, ": exists and is not a pagedc artifact; refusing to replace it");
}

ArtifactManifest writeArtifact(const Graph& graph, const ArtifactContents& contents, const std::string& outputPath) {
  fs::path target = targetPath(outputPath);
  checkArtifactOutput(outputPath);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) fail(target.parent_path().string(), ": cannot create the output directory: ", ec.message());

  std::string pattern = (target.parent_path() / (target.filename().string() + ".tmp-XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) fail(pattern, ": cannot create a temporary directory: ", std::strerror(errno));
  fs::path staged(pattern);
  // mkdtemp creates the directory private (0700); the artifact gets the usual permissions instead.
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::chmod(staged.c_str(), 0777 & ~mask);
  // Removes the staging directory however this function exits: on success it holds the replaced artifact, if any.
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } cleanup{staged};

  ArtifactManifest manifest;
  manifest.pagedcVersion = pagedcVersion();
  manifest.options = contents.options;
  manifest.facts = contents.facts;
  manifest.opCountsBefore = contents.opCountsBefore;
  manifest.opCountsAfter = contents.opCountsAfter;
  for (const Value* input : graph.inputs) manifest.inputs.push_back({input->name, input->type.str()});
  for (const Value* output : graph.outputs) manifest.outputs.push_back({output->name, output->type.str()});

  manifest.files[kWeightsFile] = writeWeights(graph, staged / kWeightsFile, manifest.weights);
  manifest.files[kGraphFile] = writeTextFile(staged / kGraphFile, printGraph(graph));
  if (!contents.sourceModel.empty()) {
    fs::path source = fs::absolute(contents.sourceModel).lexically_normal();
    manifest.sourcePath = source.string();
    manifest.sourceSha256 = sha256File(source.string());
    for (const char* name : kTokenizerFiles)
      if (fs::is_regular_file(source.parent_path() / name, ec)) manifest.files[name] = copyFile(source.parent_path() / name, staged / name);
  }
  if (!contents.kernels.empty()) {
    // kernels/sm_<arch>/<kernel>-<first 16 hex digits of SHA-256(key)>.cubin: readable, and unique
    // per (key, arch).
    for (const ArtifactKernel& kernel : contents.kernels) {
      const std::string kernelName = kernel.key.substr(0, kernel.key.find(':'));
      const std::string file = "kernels/sm_" + std::to_string(kernel.arch) + "/" + kernelName + "-" +
                               sha256Hex(kernel.key.data(), kernel.key.size()).substr(0, 16) + ".cubin";
      if (manifest.files.count(file)) fail(outputPath, ": kernel ", kernel.key, " for sm_", kernel.arch, " is given twice");
      fs::create_directories((staged / file).parent_path(), ec);
      if (ec) fail((staged / file).parent_path().string(), ": cannot create: ", ec.message());
      HashedWriter out(staged / file);
      out.write(kernel.cubin.data(), kernel.cubin.size());
      const FileEntry entry = out.finish();
      manifest.files[file] = entry;
      manifest.kernels.push_back({kernel.key, kernel.arch, kernel.entry, file, entry.bytes, entry.sha256});
    }
    syncPath(staged / "kernels", true);
  }
  writeTextFile(staged / kManifestFile, printManifest(manifest));
  syncPath(staged, true);
  publish(staged, target);
  syncPath(target.parent_path(), true);
  return manifest;
}

}  // namespace pagedc
