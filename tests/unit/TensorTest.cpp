// Host tensors: 16-bit float conversions, copy-on-write storage, .npy/.npz files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "ir/Error.h"
#include "ir/HalfFloat.h"
#include "ir/NpzFile.h"
#include "ir/Tensor.h"

namespace pagedc {
namespace {

TEST(HalfFloat, KnownBitPatterns) {
  EXPECT_EQ(floatToF16(1.0f), 0x3c00);
  EXPECT_EQ(floatToF16(-2.0f), 0xc000);
  EXPECT_EQ(floatToF16(65504.0f), 0x7bff);
  EXPECT_EQ(floatToF16(65520.0f), 0x7c00);         // rounds up to infinity
  EXPECT_EQ(floatToF16(5.960464477539063e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(floatToF16(1.0f + 1.0f / 2048), 0x3c00);      // tie rounds to even
  EXPECT_EQ(floatToF16(1.0f + 3.0f / 2048), 0x3c02);      // tie rounds to even (up)
  EXPECT_FLOAT_EQ(f16ToFloat(0x3555), 0.333251953125f);
  EXPECT_FLOAT_EQ(f16ToFloat(0x0001), 5.960464477539063e-08f);
  EXPECT_TRUE(std::isnan(f16ToFloat(floatToF16(NAN))));
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(floatToBf16(1.00390625f), 0x3f80);  // halfway between bf16 neighbours: to even
  EXPECT_EQ(floatToBf16(1.01171875f), 0x3f82);
  EXPECT_FLOAT_EQ(bf16ToFloat(0x4049), 3.140625f);
}

TEST(Tensor, WritesCopyWhenStorageIsShared) {
  Tensor a = Tensor::fromValues<float>(DType::F32, {2}, {1.0f, 2.0f});
  Tensor b = a;
  b.mutableData<float>()[0] = 5.0f;
  EXPECT_EQ(a.data<float>()[0], 1.0f);
  EXPECT_EQ(b.data<float>()[0], 5.0f);
}

TEST(Tensor, ConvertRoundsToTargetPrecision) {
  Tensor a = Tensor::fromValues<float>(DType::F32, {2}, {0.1f, 3.7f});
  Tensor half = a.convertTo(DType::F16);
  EXPECT_FLOAT_EQ(static_cast<float>(half.elementAsDouble(0)), 0.0999755859375f);
  Tensor ints = a.convertTo(DType::I64);
  EXPECT_EQ(ints.elementAsInt(1), 3);
  EXPECT_THROW(a.reshaped({3}), Error);
}

TEST(Npz, RoundTripsEveryDType) {
  auto path = std::filesystem::temp_directory_path() / "pagedc_npz_roundtrip.npz";
  std::map<std::string, Tensor> arrays;
  arrays["f32"] = Tensor::fromValues<float>(DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6});
  arrays["i64"] = Tensor::fromValues<int64_t>(DType::I64, {3}, {-1, 0, 1LL << 40});
  arrays["scalar"] = Tensor::fromValues<int32_t>(DType::I32, {}, {7});
  arrays["flags"] = Tensor::fromValues<uint8_t>(DType::Bool, {2}, {1, 0});
  arrays["half"] = Tensor::fromValues<uint16_t>(DType::F16, {1}, {0x3c00});
  arrays["empty"] = Tensor::zeros(DType::F32, {2, 0, 4});
  writeNpz(path.string(), arrays);
  auto back = readNpz(path.string());
  ASSERT_EQ(back.size(), arrays.size());
  for (const auto& [name, tensor] : arrays) {
    EXPECT_EQ(back[name].dtype(), tensor.dtype()) << name;
    EXPECT_EQ(back[name].shape(), tensor.shape()) << name;
    EXPECT_EQ(std::memcmp(back[name].bytes(), tensor.bytes(), tensor.byteSize()), 0) << name;
  }
  std::filesystem::remove(path);
}

TEST(Npz, DamagedFilesAreClearErrors) {
  auto path = std::filesystem::temp_directory_path() / "pagedc_npz_bad.npz";
  { std::ofstream(path) << "this is not a zip file"; }
  try {
    readNpz(path.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open as .npz"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parseNpy("\x93NUMPY\x01\x00", "x.npy"), Error);
  std::string good = serializeNpy(Tensor::fromValues<float>(DType::F32, {4}, {1, 2, 3, 4}));
  try {
    parseNpy(good.substr(0, good.size() - 3), "cut.npy");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.npy: truncated data"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace pagedc
