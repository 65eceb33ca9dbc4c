// Byte counts for people: "1.50 GiB" out, "1GiB" / "512MiB" / "4e9" in.
#pragma once

#include <cstdint>
#include <string>

namespace pagedc::cli {

std::string formatBytes(uint64_t bytes);  // binary units: "512 B", "1.50 KiB", "3.25 GiB"
// A count of bytes with an optional unit: B, KiB/MiB/GiB/TiB or K/M/G/T (powers of 1024), KB/MB/GB/TB
// (powers of 1000), case-insensitive, fractions allowed ("1.5GiB"). Throws Error naming `flag` otherwise.
uint64_t parseByteSize(const std::string& text, const std::string& flag);
// 1234567 -> "1,234,567"
std::string groupDigits(int64_t value);

}  // namespace pagedc::cli
