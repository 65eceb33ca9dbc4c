// `pagedc kernels check` as a library: a correct variant passes on the emulator, a corrupted kernel
// output or a corrupted reference fails (so the check can fail), and a missing host compiler is a
// clear error in the result.
#include <gtest/gtest.h>

#include <sstream>

#include "codegen/KernelCheck.h"

namespace pagedc {
namespace {

const KernelKey& normKey() {
  static const KernelKey key = KernelKey::parse("rms_norm:dtype=f16,threads=64");
  return key;
}

TEST(KernelCheck, CorrectVariantPassesEveryOutputUnderEverySchedule) {
  KernelCheckResult result = checkKernel(normKey());
  EXPECT_TRUE(result.passed()) << result.error;
  EXPECT_TRUE(result.error.empty()) << result.error;
  EXPECT_GE(result.schedules.size(), 3u);
  ASSERT_FALSE(result.outputs.empty());
  for (const KernelOutputCheck& output : result.outputs) EXPECT_TRUE(output.passed()) << output.caseName << " " << output.output;
  std::ostringstream report;
  printKernelCheck(report, result);
  EXPECT_NE(report.str().find("PASS rms_norm:dtype=f16,threads=64"), std::string::npos) << report.str();
}

TEST(KernelCheck, SplitDecodeAttentionPassesWithItsReduce) {
  KernelCheckResult result =
      checkKernel(KernelKey::parse("paged_attention_decode:dtype=f32,cache=bf16,head_dim=64,block=8,q_per_kv=2,threads=64,partition=16"));
  EXPECT_TRUE(result.passed()) << result.error;
  EXPECT_EQ(result.variants.size(), 2u) << "a split-K decode is checked together with paged_attention_reduce";
}

TEST(KernelCheck, WrongKernelOutputFails) {
  KernelCheckOptions options;
  options.tamperKernelOutput = [](const std::string&, std::vector<float>& values) {
    if (!values.empty()) values[values.size() / 2] += 1.0f;
  };
  KernelCheckResult result = checkKernel(normKey(), options);
  EXPECT_FALSE(result.passed());
  std::ostringstream report;
  printKernelCheck(report, result);
  EXPECT_NE(report.str().find("FAIL"), std::string::npos) << report.str();
}

TEST(KernelCheck, WrongReferenceFails) {
  KernelCheckOptions options;
  options.tamperReference = [](const std::string&, std::vector<float>& values) {
    if (!values.empty()) values.front() = values.front() * 2.0f + 1.0f;
  };
  EXPECT_FALSE(checkKernel(normKey(), options).passed());
}

TEST(KernelCheck, MissingHostCompilerIsAClearError) {
  KernelCheckOptions options;
  options.build.compiler = "pagedc-no-such-compiler";
  options.build.extraFlags = {"-DPAGEDC_UNCACHED_FOR_THIS_TEST"};  // a distinct cache entry, so the compiler is needed
  KernelCheckResult result = checkKernel(normKey(), options);
  EXPECT_FALSE(result.passed());
  EXPECT_NE(result.error.find("pagedc-no-such-compiler"), std::string::npos) << result.error;
}

}  // namespace
}  // namespace pagedc
