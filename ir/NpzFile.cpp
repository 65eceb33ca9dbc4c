// .npy parsing and serialisation; .npz archives through libzip.
#include "ir/NpzFile.h"

#include <zip.h>

#include <cstring>
#include <memory>
#include <regex>

#include "ir/Error.h"

namespace pagedc {

namespace {
struct DescrEntry {
  const char* descr;
  DType dtype;
};
constexpr DescrEntry kDescrs[] = {
    {"<f4", DType::F32}, {"<f2", DType::F16}, {"<f8", DType::F64}, {"<i8", DType::I64}, {"<i4", DType::I32},
    {"<i2", DType::I16}, {"|i1", DType::I8},  {"<u8", DType::U64}, {"<u4", DType::U32}, {"<u2", DType::U16},
    {"|u1", DType::U8},  {"|b1", DType::Bool},
};
}  // namespace

Tensor parseNpy(const std::string& bytes, const std::string& what) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) fail(what, ": not a .npy array (bad magic)");
  int major = static_cast<unsigned char>(bytes[6]);
  size_t headerLength = 0;
  size_t headerStart = 0;
  if (major == 1) {
    headerLength = static_cast<unsigned char>(bytes[8]) | (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    headerStart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail(what, ": truncated .npy header");
    for (int i = 0; i < 4; ++i) headerLength |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    headerStart = 12;
  } else {
    fail(what, ": unsupported .npy version ", major);
  }
  if (headerStart + headerLength > bytes.size()) fail(what, ": truncated .npy header");
  std::string header = bytes.substr(headerStart, headerLength);

  std::smatch match;
  if (!std::regex_search(header, match, std::regex(R"('descr'\s*:\s*'([^']*)')"))) fail(what, ": .npy header has no descr");
  std::string descr = match[1];
  if (descr == "<b1") descr = "|b1";
  if (descr == "<i1") descr = "|i1";
  if (descr == "<u1") descr = "|u1";
  const DescrEntry* entry = nullptr;
  for (const auto& e : kDescrs)
    if (descr == e.descr) entry = &e;
  if (!entry) fail(what, ": unsupported array type '", descr, "' (little-endian numeric or bool only)");
  if (std::regex_search(header, std::regex(R"('fortran_order'\s*:\s*True)"))) fail(what, ": Fortran-order arrays are not supported");
  if (!std::regex_search(header, match, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) fail(what, ": .npy header has no shape");
  std::vector<int64_t> shape;
  std::string dims = match[1];
  std::regex number(R"(\d+)");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number); it != std::sregex_iterator(); ++it)
    shape.push_back(std::stoll(it->str()));

  Tensor tensor = Tensor::zeros(entry->dtype, shape);
  size_t dataStart = headerStart + headerLength;
  if (bytes.size() - dataStart < tensor.byteSize())
    fail(what, ": truncated data: shape ", tensor.shapeStr(), " needs ", tensor.byteSize(), " bytes, file has ", bytes.size() - dataStart);
  if (tensor.byteSize()) std::memcpy(tensor.mutableBytes(), bytes.data() + dataStart, tensor.byteSize());
  return tensor;
}

std::string serializeNpy(const Tensor& input) {
  Tensor tensor = input.dtype() == DType::BF16 ? input.convertTo(DType::F32) : input;
  const char* descr = nullptr;
  for (const auto& e : kDescrs)
    if (e.dtype == tensor.dtype()) descr = e.descr;
  std::string shape = "(";
  for (size_t i = 0; i < tensor.rank(); ++i) shape += std::to_string(tensor.shape()[i]) + (tensor.rank() == 1 || i + 1 < tensor.rank() ? "," : "");
  shape += ")";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(1);
  out += static_cast<char>(0);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(reinterpret_cast<const char*>(tensor.bytes()), tensor.byteSize());
  return out;
}

std::map<std::string, Tensor> readNpz(const std::string& path) {
  int errorCode = 0;
  std::unique_ptr<zip_t, decltype(&zip_close)> archive(zip_open(path.c_str(), ZIP_RDONLY, &errorCode), &zip_close);
  if (!archive) {
    zip_error_t error;
    zip_error_init_with_code(&error, errorCode);
    std::string message = zip_error_strerror(&error);
    zip_error_fini(&error);
    fail(path, ": cannot open as .npz: ", message);
  }
  std::map<std::string, Tensor> arrays;
  zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t stat;
    if (zip_stat_index(archive.get(), static_cast<zip_uint64_t>(i), 0, &stat) != 0) fail(path, ": cannot read member ", i);
    std::string member = stat.name;
    std::unique_ptr<zip_file_t, decltype(&zip_fclose)> file(zip_fopen_index(archive.get(), static_cast<zip_uint64_t>(i), 0), &zip_fclose);
    if (!file) fail(path, ": cannot open member '", member, "'");
    std::string bytes(stat.size, '\0');
    zip_int64_t read = zip_fread(file.get(), bytes.data(), stat.size);
    if (read < 0 || static_cast<zip_uint64_t>(read) != stat.size) fail(path, ": member '", member, "' is truncated");
    std::string name = member.size() > 4 && member.substr(member.size() - 4) == ".npy" ? member.substr(0, member.size() - 4) : member;
    arrays[name] = parseNpy(bytes, path + ":" + member);
  }
  return arrays;
}

void writeNpz(const std::string& path, const std::map<std::string, Tensor>& arrays) {
  int errorCode = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &errorCode);
  if (!archive) fail(path, ": cannot create .npz");
  std::vector<std::string> buffers;
  buffers.reserve(arrays.size());
  for (const auto& [name, tensor] : arrays) {
    buffers.push_back(serializeNpy(tensor));
    zip_source_t* source = zip_source_buffer(archive, buffers.back().data(), buffers.back().size(), 0);
    zip_int64_t index = source ? zip_file_add(archive, (name + ".npy").c_str(), source, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8) : -1;
    if (index < 0) {
      if (source) zip_source_free(source);
      zip_discard(archive);
      fail(path, ": cannot add '", name, "'");
    }
    zip_set_file_compression(archive, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
  }
  if (zip_close(archive) != 0) {
    std::string message = zip_strerror(archive);
    zip_discard(archive);
    fail(path, ": cannot write .npz: ", message);
  }
}

}  // namespace pagedc
