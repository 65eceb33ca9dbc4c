// Reference kernels of the paged ops: kv_cache_write's slots, paged_attention through scattered block
// tables against plain causal attention, and the errors bad tables and slots get.
#include <gtest/gtest.h>

#include <cmath>

#include "OpTestSupport.h"
#include "ir/Error.h"

namespace pagedc {
namespace {

using namespace test;

const char* kWrite = R"(graph @g(%k: f32[t, 1, 2], %v: f32[t, 1, 2], %kc: f32[n, 1, 2, 2], %vc: f32[n, 1, 2, 2], %slots: i64[t]) {
  %kc2, %vc2 = kv_cache_write(%k, %v, %kc, %vc, %slots) : f32[n, 1, 2, 2], f32[n, 1, 2, 2]
  return %kc2, %vc2
})";

TEST(KvCacheWrite, WritesEachTokenToItsSlotAndSkipsMinusOne) {
  std::map<std::string, Tensor> in;
  in["k"] = f32({3, 1, 2}, {1, 2, 3, 4, 5, 6});
  in["v"] = f32({3, 1, 2}, {-1, -2, -3, -4, -5, -6});
  in["kc"] = Tensor::zeros(DType::F32, {3, 1, 2, 2});
  in["vc"] = Tensor::zeros(DType::F32, {3, 1, 2, 2});
  in["slots"] = i64({3}, {5, -1, 0});  // block 2 offset 1, skipped, block 0 offset 0
  auto out = runGraph(kWrite, in);
  expectNear(out.at("kc2"), {5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2});
  expectNear(out.at("vc2"), {-5, -6, 0, 0, 0, 0, 0, 0, 0, 0, -1, -2});
  in["slots"] = i64({3}, {5, 6, 0});
  try {
    runGraph(kWrite, in);
    FAIL() << "slot 6 of a 6-slot cache was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token 1 has slot 6 beyond the cache of 3 blocks of 2"), std::string::npos) << e.what();
  }
}

const char* kAttend = R"(graph @g(%q: f32[t, 2, 2], %kc: f32[n, 1, 2, 2], %vc: f32[n, 1, 2, 2], %tables: i64[s, m], %lens: i64[s], %starts: i64[s + 1]) {
  %o = paged_attention(%q, %kc, %vc, %tables, %lens, %starts) {scale = 0.5} : f32[t, 2, 2]
  return %o
})";

// One sequence of 3 cached tokens in blocks 2 then 0 (block size 2); two query tokens (positions 1, 2).
TEST(PagedAttention, ScatteredBlocksGiveCausalAttention) {
  const std::vector<std::vector<float>> keys = {{1, 0}, {0, 1}, {1, 1}}, values = {{1, 2}, {3, 4}, {5, 6}};
  Tensor kc = Tensor::zeros(DType::F32, {3, 1, 2, 2}), vc = Tensor::zeros(DType::F32, {3, 1, 2, 2});
  const int64_t physical[] = {2, 0};
  for (int64_t p = 0; p < 3; ++p)
    for (int64_t d = 0; d < 2; ++d) {
      int64_t at = (physical[p / 2] * 2 + p % 2) * 2 + d;
      kc.mutableData<float>()[at] = keys[static_cast<size_t>(p)][static_cast<size_t>(d)];
      vc.mutableData<float>()[at] = values[static_cast<size_t>(p)][static_cast<size_t>(d)];
    }
  std::map<std::string, Tensor> in;
  in["q"] = f32({2, 2, 2}, {1, 2, -1, 0.5f, 0, 1, 2, -1});  // token 0: heads 0, 1; token 1: heads 0, 1
  in["kc"] = kc;
  in["vc"] = vc;
  in["tables"] = i64({1, 2}, {2, 0});
  in["lens"] = i64({1}, {3});
  in["starts"] = i64({2}, {0, 2});
  auto out = runGraph(kAttend, in).at("o");
  // Plain causal attention by hand: both query heads read the one kv head.
  std::vector<float> expected;
  const float* q = in["q"].data<float>();
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t h = 0; h < 2; ++h) {
      int64_t position = 1 + t;
      std::vector<double> w;
      double sum = 0;
      for (int64_t j = 0; j <= position; ++j) {
        double score = 0.5 * (q[(t * 2 + h) * 2] * keys[static_cast<size_t>(j)][0] + q[(t * 2 + h) * 2 + 1] * keys[static_cast<size_t>(j)][1]);
        w.push_back(std::exp(score));
        sum += w.back();
      }
      for (int64_t d = 0; d < 2; ++d) {
        double o = 0;
        for (int64_t j = 0; j <= position; ++j) o += w[static_cast<size_t>(j)] / sum * values[static_cast<size_t>(j)][static_cast<size_t>(d)];
        expected.push_back(static_cast<float>(o));
      }
    }
  expectNear(out, expected);

  in["tables"] = i64({1, 2}, {2, 7});
  try {
    runGraph(kAttend, in);
    FAIL() << "block 7 of a 3-block cache was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sequence 0: block table entry 1 is 7, outside 0..2"), std::string::npos) << e.what();
  }
  in["tables"] = i64({1, 2}, {2, 0});
  in["starts"] = i64({2}, {0, 1});
  try {
    runGraph(kAttend, in);
    FAIL() << "query_start_loc ending before num_tokens was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("query_start_loc must run from 0 to num_tokens (2)"), std::string::npos) << e.what();
  }
}

TEST(PagedAttention, ShapeRuleChecksGeometry) {
  auto types = inferredTypes(R"(graph @g(%q: f32[num_tokens, 6, 16], %kc: bf16[num_blocks, 2, 16, 16], %vc: bf16[num_blocks, 2, 16, 16], %tables: i64[num_seqs, m], %lens: i64[num_seqs], %starts: i64[num_seqs + 1]) {
  %o = paged_attention(%q, %kc, %vc, %tables, %lens, %starts) : f32[num_tokens, 6, 16]
  return %o
})", {"o"});
  EXPECT_EQ(types[0], "f32[num_tokens, 6, 16]");
  EXPECT_THROW(inferred(R"(graph @g(%q: f32[t, 5, 16], %kc: f32[n, 2, 16, 16], %vc: f32[n, 2, 16, 16], %tables: i64[s, m], %lens: i64[s], %starts: i64[s + 1]) {
  %o = paged_attention(%q, %kc, %vc, %tables, %lens, %starts) : f32[t, 5, 16]
  return %o
})"),
               Error);
}

}  // namespace
}  // namespace pagedc
