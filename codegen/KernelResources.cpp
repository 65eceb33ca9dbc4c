#include "codegen/KernelResources.h"

#include <cctype>
#include <sstream>
#include <vector>

namespace pagedc {

namespace {

// The function a "Function properties for NAME" line names (ptxas writes the name bare,
// nvJitLink's own summary in quotes with a colon), or "" for other lines.
std::string propertiesFunction(const std::string& line) {
  static const std::string marker = "Function properties for ";
  const size_t at = line.find(marker);
  if (at == std::string::npos) return "";
  std::string name = line.substr(at + marker.size());
  while (!name.empty() && (name.back() == ':' || name.back() == '\'' || std::isspace(static_cast<unsigned char>(name.back())))) {
    name.pop_back();
  }
  if (!name.empty() && name.front() == '\'') name.erase(0, 1);
  return name;
}

// The comma-separated "N unit" items of a properties line after its "info :" or "ptxas ." prefix.
std::vector<std::pair<int64_t, std::string>> quantities(const std::string& line) {
  std::vector<std::pair<int64_t, std::string>> items;
  size_t start = line.find(':');
  const size_t dot = line.find(" . ");
  if (start == std::string::npos || (dot != std::string::npos && dot < start)) start = dot;
  if (start == std::string::npos) return items;
  std::stringstream rest(line.substr(start + 1));
  std::string item;
  while (std::getline(rest, item, ',')) {
    std::istringstream words(item);
    std::string word;
    std::string unit;
    int64_t number = -1;
    while (words >> word) {
      if (number < 0 && !word.empty() && std::isdigit(static_cast<unsigned char>(word[0]))) {
        try {
          number = std::stoll(word);
        } catch (...) {
          number = -1;
        }
      } else if (number >= 0) {
        unit += (unit.empty() ? "" : " ") + word;
      }
    }
    if (number >= 0) items.emplace_back(number, unit);
  }
  return items;
}

}  // namespace

std::map<std::string, KernelResources> parseKernelResources(const std::string& linkerLog) {
  std::map<std::string, KernelResources> result;
  std::map<std::string, bool> sawPtxasShared;
  std::istringstream lines(linkerLog);
  std::string line;
  std::string current;
  while (std::getline(lines, line)) {
    const std::string function = propertiesFunction(line);
    if (!function.empty()) {
      current = function;
      result[current];
      continue;
    }
    if (current.empty()) continue;
    // "Compiling entry function" and "Compile time" lines do not belong to the properties.
    if (line.find("Compil") != std::string::npos || line.find("gmem") != std::string::npos) continue;
    const bool ptxasLine = line.rfind("ptxas", 0) == 0;
    KernelResources& resources = result[current];
    for (const auto& [number, unit] : quantities(line)) {
      if (unit == "registers") {
        resources.registers = number;
      } else if (unit == "bytes spill stores") {
        resources.spillStores = number;
      } else if (unit == "bytes spill loads") {
        resources.spillLoads = number;
      } else if (unit == "bytes stack frame" || unit == "stack") {
        resources.stackBytes = number;
      } else if (unit == "bytes smem") {
        // ptxas reports what the kernel declares; nvJitLink's summary adds the 1 KiB the driver
        // reserves per CTA on sm_90, so ptxas' figure wins when both are there.
        if (ptxasLine || !sawPtxasShared[current]) resources.sharedBytes = number;
        if (ptxasLine) sawPtxasShared[current] = true;
      } else if (unit == "bytes lmem") {
        resources.localBytes = number;
      } else if (unit == "barriers") {
        resources.barriers = number;
      }
    }
  }
  return result;
}

std::string describeKernelResources(const KernelResources& resources) {
  std::ostringstream out;
  out << "regs " << resources.registers << ", spill " << resources.spillStores << "/" << resources.spillLoads << " B, stack "
      << resources.stackBytes << " B, smem " << resources.sharedBytes << " B, lmem " << resources.localBytes << " B";
  return out.str();
}

}  // namespace pagedc
