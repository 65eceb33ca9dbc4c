// Formatting and parsing of byte counts for the CLI.
#include "cli/ByteSize.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "ir/Error.h"

namespace pagedc::cli {

std::string formatBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.2f %s", value, kUnits[unit]);
  return text;
}

uint64_t parseByteSize(const std::string& text, const std::string& flag) {
  auto bad = [&]() {
    fail(flag, ": cannot read '", text, "' as a size: give bytes, optionally with a unit (KiB, MiB, GiB, TiB, or KB, MB, GB, TB)");
  };
  size_t end = 0;
  double number = 0;
  try {
    number = std::stod(text, &end);
  } catch (const std::exception&) {
    bad();
  }
  std::string unit = text.substr(end);
  unit.erase(std::remove_if(unit.begin(), unit.end(), [](unsigned char c) { return std::isspace(c); }), unit.end());
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::tolower(c); });
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  static const char* const kPrefixes = "kmgt";
  for (int i = 0; i < 4; ++i) {
    std::string prefix(1, kPrefixes[i]);
    if (unit == prefix + "ib" || unit == prefix) scale = std::pow(1024.0, i + 1);
    if (unit == prefix + "b") scale = std::pow(1000.0, i + 1);
  }
  if (scale == 0 || !std::isfinite(number) || number < 0) bad();
  double bytes = number * scale;
  if (bytes >= 18446744073709551615.0) fail(flag, ": '", text, "' is too large");
  return static_cast<uint64_t>(bytes);
}

std::string groupDigits(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  // Built front to back: inserting into the middle trips GCC 12's -Wrestrict false positive.
  std::string grouped = value < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) grouped.push_back(',');
    grouped.push_back(digits[i]);
  }
  return grouped;
}

}  // namespace pagedc::cli
