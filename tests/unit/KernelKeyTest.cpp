// Kernel specialisation keys: text form, defaults, validation and the C++ instantiation they name.
#include <gtest/gtest.h>

#include <set>

#include "ir/Error.h"
#include "runtime/kernels/KernelCatalog.h"
#include "runtime/kernels/KernelKey.h"

namespace pagedc {
namespace {

std::string errorOf(const std::string& text) {
  try {
    KernelKey::parse(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(KernelKey, ParseFillsDefaultsAndRoundTrips) {
  KernelKey key = KernelKey::parse("paged_attention_decode:head_dim=128,dtype=bf16,q_per_kv=4");
  EXPECT_EQ(key.param("dtype"), "bf16");
  EXPECT_EQ(key.intParam("head_dim"), 128);
  EXPECT_EQ(key.intParam("q_per_kv"), 4);
  EXPECT_TRUE(key.hasParam("threads"));
  EXPECT_TRUE(key.hasParam("partition"));
  EXPECT_EQ(KernelKey::parse(key.str()), key);
  EXPECT_EQ(key.header(), "paged_attention.cuh");
  EXPECT_EQ(key.paramsType(), "pagedc::PagedAttentionParams");
}

TEST(KernelKey, TemplateExpressionNamesTheInstantiation) {
  KernelKey key = KernelKey::parse(
      "paged_attention_decode:dtype=bf16,cache=f16,head_dim=128,block=16,q_per_kv=4,threads=128,partition=512");
  EXPECT_EQ(key.templateExpression(), "pagedc::paged_attention_decode<pagedc::bf16, pagedc::f16, 128, 16, 4, 128, 512>");
  EXPECT_EQ(KernelKey::parse("activation:dtype=f32,act=gelu_tanh,threads=256").templateExpression(),
            "pagedc::activation<float, 2, 256>");
}

TEST(KernelKey, BadKeysNameTheKernelAndTheParameter) {
  EXPECT_NE(errorOf("no_such_kernel").find("no_such_kernel"), std::string::npos);
  std::string threads = errorOf("rms_norm:dtype=f32,threads=100");
  EXPECT_NE(threads.find("threads"), std::string::npos) << threads;
  std::string dtype = errorOf("rms_norm:dtype=f64");
  EXPECT_NE(dtype.find("dtype"), std::string::npos) << dtype;
  std::string partition = errorOf("paged_attention_decode:block=16,partition=24");
  EXPECT_NE(partition.find("partition"), std::string::npos) << partition;
  std::string unknown = errorOf("rms_norm:colour=red");
  EXPECT_NE(unknown.find("colour"), std::string::npos) << unknown;
  std::string twice = errorOf("rms_norm:threads=64,threads=128");
  EXPECT_NE(twice.find("threads"), std::string::npos) << twice;
}

TEST(KernelKey, GridCoversEveryKernelDtypeHeadDimBlockSizeAndGqaRatio) {
  std::vector<KernelKey> grid = kernelGrid();
  std::set<std::string> kernels, dtypes, headDims, blocks, ratios;
  std::set<std::string> distinct;
  for (const KernelKey& key : grid) {
    distinct.insert(key.str());
    kernels.insert(key.kernel);
    if (key.kernel != "paged_attention_decode") continue;
    dtypes.insert(key.param("dtype"));
    headDims.insert(key.param("head_dim"));
    blocks.insert(key.param("block"));
    ratios.insert(key.param("q_per_kv"));
  }
  EXPECT_EQ(distinct.size(), grid.size()) << "the grid lists a variant twice";
  for (const KernelSpec& spec : kernelCatalog()) EXPECT_TRUE(kernels.count(spec.name)) << spec.name << " is not in the grid";
  EXPECT_EQ(dtypes, (std::set<std::string>{"f32", "f16", "bf16"}));
  EXPECT_EQ(headDims, (std::set<std::string>{"64", "80", "96", "112", "128", "256"}));
  EXPECT_EQ(blocks, (std::set<std::string>{"8", "16", "32"}));
  EXPECT_EQ(ratios, (std::set<std::string>{"1", "2", "4", "8"}));
}

}  // namespace
}  // namespace pagedc
