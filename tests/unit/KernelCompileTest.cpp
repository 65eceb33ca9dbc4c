// NVRTC + nvJitLink through the builder: real variants compile and link for sm_80 and sm_90 with the
// linker's resource report, a warm cache serves them, and a broken source is an error naming the
// variant, the options and the source lines. Skipped in a build without the CUDA toolkit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "codegen/CudaKernelBuilder.h"
#include "codegen/NvrtcCompiler.h"
#include "ir/Error.h"

namespace pagedc {
namespace {

namespace fs = std::filesystem;

class KernelCompileTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (!haveCudaToolkit()) GTEST_SKIP() << "this build has no CUDA toolkit (NVRTC, nvJitLink)";
    dir_ = fs::temp_directory_path() / ("pagedc-kernel-compile-" + std::to_string(getpid()) + "-" + std::to_string(std::random_device{}()));
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(KernelCompileTest, VariantsLinkForSm80AndSm90WithResourcesAndAWarmCacheServesThem) {
  CudaKernelBuildOptions options;
  options.cacheDir = dir_.string();
  CudaKernelBuilder builder(options);
  for (const char* text : {"paged_attention_decode:dtype=bf16,cache=bf16,head_dim=128,block=16,q_per_kv=4,threads=128,partition=512",
                           "paged_attention_prefill:dtype=f16,cache=f16,head_dim=80,block=32,q_per_kv=2", "rms_norm:dtype=bf16,threads=256"}) {
    KernelKey key = KernelKey::parse(text);
    std::vector<BuiltKernel> cold = builder.build(key, {80, 90});
    ASSERT_EQ(cold.size(), 2u);
    for (const BuiltKernel& built : cold) {
      EXPECT_FALSE(built.cacheHit);
      EXPECT_GT(built.cubin.size(), 1000u) << text;
      EXPECT_FALSE(built.entryName.empty());
      EXPECT_GT(built.resources.registers, 0) << text << " sm_" << built.arch;
      EXPECT_FALSE(built.resources.spills()) << text << " sm_" << built.arch;
    }
    std::vector<BuiltKernel> warm = builder.build(key, {80, 90});
    for (size_t i = 0; i < warm.size(); ++i) {
      EXPECT_TRUE(warm[i].cacheHit);
      EXPECT_EQ(warm[i].cubin, cold[i].cubin);
      EXPECT_EQ(warm[i].entryName, cold[i].entryName);
      EXPECT_EQ(warm[i].resources.registers, cold[i].resources.registers);
    }
  }
}

TEST_F(KernelCompileTest, CompileErrorsNameTheVariantTheOptionsAndTheSourceLines) {
  NvrtcCompiler compiler;
  const std::string source =
      "#include \"pagedc_cuda.cuh\"\n"
      "namespace pagedc {\n"
      "template <int N> __global__ void broken(NormParams p) {\n"
      "  float x = undeclared_name * N;\n"
      "}\n"
      "}\n";
  try {
    compiler.compileSource(source, {"&pagedc::broken<4>"}, "broken:n=4");
    FAIL() << "expected a compile error";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("broken:n=4"), std::string::npos) << message;
    EXPECT_NE(message.find("--gpu-architecture=compute_80"), std::string::npos) << message;
    EXPECT_NE(message.find("undeclared_name"), std::string::npos) << message;
    EXPECT_NE(message.find(">     4 |   float x = undeclared_name * N;"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace pagedc
