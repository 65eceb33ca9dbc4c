// The CUDA toolkit, when the build found it, works without a GPU and targets the architectures pagedc needs.
#include <gtest/gtest.h>

#include <algorithm>

#include "codegen/CudaToolkitInfo.h"

namespace pagedc {
namespace {

TEST(CudaToolkitInfo, ReportsWhatTheBuildFound) {
  CudaToolkitInfo info = queryCudaToolkit();
#if PAGEDC_HAVE_CUDA_TOOLKIT
  ASSERT_TRUE(info.available) << "built with NVRTC and nvJitLink, but they do not answer";
  EXPECT_FALSE(info.nvrtcVersion.empty());
  EXPECT_FALSE(info.nvJitLinkVersion.empty());
  for (int arch : {80, 86, 89, 90})
    EXPECT_NE(std::find(info.architectures.begin(), info.architectures.end(), arch), info.architectures.end()) << "sm_" << arch;
#else
  EXPECT_FALSE(info.available);
  GTEST_SKIP() << "built without the CUDA toolkit";
#endif
}

}  // namespace
}  // namespace pagedc
