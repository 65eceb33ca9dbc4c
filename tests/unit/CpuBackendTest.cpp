// The CPU backend (runtime/cpu/) against the reference interpreter on compiled fixtures, and its
// batch invariance.
//
// Tolerance against the reference, f32 artifacts: max |cpu - ref| / max |ref| < 1e-4 over the logits
// rows. Both compute in f32; the differences are summation order (oneDNN's GEMM blocking, the
// attention kernel's online softmax, f32 instead of double row statistics), which moves logits of
// these fixtures by ~1e-6 relative. bf16 artifacts: the CPU backend rounds GEMM activations to bf16
// (the reference keeps them f32), so the bound is the bf16 precision bound the compile tests use
// for bf16 weights: 6e-2.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <cstdlib>
#include <new>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>

#include "frontend/OnnxImporter.h"
#include "ir/Error.h"
#include "passes/CompilePipeline.h"
#include "runtime/ReferenceModelRunner.h"
#include "runtime/cpu/CpuModelRunner.h"

// GCC sees the replacement operator delete (free) inlined next to operator new calls and warns.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// Counts operator new calls and their largest size, to check that a warm CPU step allocates no
// buffers. Replacing the global operator new is allowed once per program; it only counts.
namespace {
std::atomic<int64_t> allocations{0};
std::atomic<size_t> largestAllocation{0};
}  // namespace
void* operator new(size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  size_t largest = largestAllocation.load(std::memory_order_relaxed);
  while (size > largest && !largestAllocation.compare_exchange_weak(largest, size)) {
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace pagedc {
namespace {

namespace fs = std::filesystem;

struct Compiled {
  std::unique_ptr<Graph> graph;
  ModelFacts facts;
};

Compiled compileFixture(const std::string& name, int64_t blockSize, DType dtype = DType::F32) {
  fs::path dir = fs::path(PAGEDC_SOURCE_DIR) / "models" / (name == "stories260K" ? "" : "fixtures") / name;
  Compiled c;
  c.graph = importOnnx((dir / "model.onnx").string());
  CompileOptions options;
  options.blockSize = blockSize;
  options.dtype = dtype;
  c.facts = compileGraph(*c.graph, options).facts;
  return c;
}

// Builds plans like the scheduler does: per-sequence block tables over a shuffled pool, steps that
// mix prefill chunks and decodes.
class PlanBuilder {
public:
  PlanBuilder(int64_t numBlocks, int64_t blockSize, uint32_t seed) : blockSize_(blockSize) {
    free_.resize(static_cast<size_t>(numBlocks));
    std::iota(free_.begin(), free_.end(), 0);
    std::shuffle(free_.begin(), free_.end(), std::mt19937(seed));
  }
  struct Chunk {
    int seq;
    std::vector<TokenId> tokens;
    bool allLogits = false;
  };
  StepPlan step(const std::vector<Chunk>& chunks) {
    StepPlan plan;
    for (const Chunk& c : chunks) {
      ScheduledSequence s;
      s.requestId = "seq" + std::to_string(c.seq);
      s.seq = c.seq;
      int64_t& length = lengths_[c.seq];
      std::vector<BlockId>& table = tables_[c.seq];
      for (size_t i = 0; i < c.tokens.size(); ++i) {
        const int64_t position = length + static_cast<int64_t>(i);
        if (position / blockSize_ >= static_cast<int64_t>(table.size())) {
          table.push_back(free_.back());
          free_.pop_back();
        }
        s.tokens.push_back(c.tokens[i]);
        s.positions.push_back(position);
        s.slots.push_back(table[static_cast<size_t>(position / blockSize_)] * blockSize_ + position % blockSize_);
      }
      length += static_cast<int64_t>(c.tokens.size());
      s.contextLen = length;
      s.blockTable = table;
      s.needsLogits = true;
      s.allLogits = c.allLogits;
      plan.seqs.push_back(std::move(s));
    }
    return plan;
  }

private:
  int64_t blockSize_;
  std::vector<BlockId> free_;
  std::map<int, int64_t> lengths_;
  std::map<int, std::vector<BlockId>> tables_;
};

std::vector<TokenId> randomTokens(size_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<TokenId> tokens(n);
  for (auto& t : tokens) t = static_cast<TokenId>(rng() % static_cast<uint32_t>(vocab));
  return tokens;
}

std::vector<std::vector<float>> rowsOf(const StepLogits& logits) {
  std::vector<std::vector<float>> rows;
  for (int64_t r = 0; r < logits.numRows; ++r) rows.emplace_back(logits.row(r).begin(), logits.row(r).end());
  return rows;
}

cpu::CpuRunnerConfig smallConfig(int64_t blocks) {
  cpu::CpuRunnerConfig config;
  config.numDeviceBlocks = blocks;
  config.numHostBlocks = 8;
  config.maxNumBatchedTokens = 256;
  config.maxNumSeqs = 16;
  config.maxModelLen = 256;
  return config;
}

// A mixed schedule: two prompts prefilled (one in two chunks), then decodes interleaved with a
// third prompt arriving, some steps asking for every token's logits.
std::vector<std::vector<PlanBuilder::Chunk>> mixedSchedule(int64_t vocab) {
  auto a = randomTokens(23, vocab, 1), b = randomTokens(9, vocab, 2), c = randomTokens(17, vocab, 3);
  return {
      {{0, a, true}, {1, {b.begin(), b.begin() + 5}}},
      {{1, {b.begin() + 5, b.end()}, true}, {0, {7}}},
      {{0, {11}}, {1, {3}}, {2, c}},
      {{2, {5}}, {0, {1}}, {1, {2}}},
      {{2, {4, 8, 15, 16}, true}},
  };
}

struct ReferenceCase {
  std::string fixture;
  int64_t blockSize;
  DType dtype;
};
void PrintTo(const ReferenceCase& c, std::ostream* out) { *out << c.fixture << " block " << c.blockSize << " " << dtypeName(c.dtype); }

class CpuBackendAgainstReference : public ::testing::TestWithParam<ReferenceCase> {};

TEST_P(CpuBackendAgainstReference, LogitsMatchOnMixedSteps) {
  const ReferenceCase& param = GetParam();
  Compiled compiled = compileFixture(param.fixture, param.blockSize, param.dtype);
  const int64_t blocks = 64;
  cpu::CpuModelRunner cpuRunner(*compiled.graph, compiled.facts, smallConfig(blocks));
  std::string fallbacks;
  for (const std::string& op : cpuRunner.planSummary().fallbackOps) fallbacks += op + " ";
  EXPECT_EQ(fallbacks, "") << "ops without a CPU kernel";
  ReferenceModelRunner reference(*compiled.graph, compiled.facts, blocks, 8);
  PlanBuilder forCpu(blocks, param.blockSize, 5), forReference(blocks, param.blockSize, 5);
  const double bound = param.dtype == DType::F32 ? 1e-4 : 6e-2;
  for (const auto& chunks : mixedSchedule(compiled.facts.vocabSize)) {
    StepPlan plan = forCpu.step(chunks);
    auto ours = rowsOf(cpuRunner.execute(plan));
    auto expected = rowsOf(reference.execute(forReference.step(chunks)));
    ASSERT_EQ(ours.size(), expected.size());
    ASSERT_EQ(static_cast<int64_t>(ours.size()), plan.numLogits());
    double maxError = 0, scale = 0;
    for (size_t r = 0; r < ours.size(); ++r)
      for (size_t v = 0; v < ours[r].size(); ++v) {
        maxError = std::max(maxError, static_cast<double>(std::abs(ours[r][v] - expected[r][v])));
        scale = std::max(scale, static_cast<double>(std::abs(expected[r][v])));
      }
    EXPECT_LT(maxError / scale, bound) << "max error " << maxError << " at logit scale " << scale;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CpuBackendAgainstReference,
                         ::testing::Values(ReferenceCase{"llama-past", 16, DType::F32}, ReferenceCase{"llama-past", 8, DType::F32},
                                           ReferenceCase{"mistral-past", 32, DType::F32}, ReferenceCase{"gpt2-past", 16, DType::F32},
                                           ReferenceCase{"opt-past", 16, DType::F32}, ReferenceCase{"llama-genai", 16, DType::F32},
                                           ReferenceCase{"mistral-genai", 16, DType::F32}, ReferenceCase{"llama-dynamo", 16, DType::F32},
                                           ReferenceCase{"stories260K", 16, DType::F32}, ReferenceCase{"llama-past", 16, DType::BF16},
                                           ReferenceCase{"gpt2-past", 16, DType::F16}),
                         [](const auto& info) {
                           std::string name = info.param.fixture + "_b" + std::to_string(info.param.blockSize) + "_" + std::string(dtypeName(info.param.dtype));
                           std::ranges::replace(name, '-', '_');
                           return name;
                         });

// A sequence's logits are the same bits alone, in a batch with others, with its prompt in one step
// or in chunks, and with one or two threads.
TEST(CpuBackendBatchInvariance, SameBitsWhateverTheBatchAndChunking) {
  for (DType dtype : {DType::F32, DType::BF16}) {
    Compiled compiled = compileFixture("llama-past", 16, dtype);
    const int64_t vocab = compiled.facts.vocabSize;
    auto prompt = randomTokens(37, vocab, 11);
    const std::vector<TokenId> decodes = {3, 1, 4, 1, 5};

    // Logits of every prompt token, then of each decode token.
    auto runAlone = [&](int threads) {
      omp_set_num_threads(threads);
      cpu::CpuModelRunner runner(*compiled.graph, compiled.facts, smallConfig(64));
      PlanBuilder plans(64, 16, 1);
      auto rows = rowsOf(runner.execute(plans.step({{0, prompt, true}})));
      for (TokenId t : decodes) rows.push_back(rowsOf(runner.execute(plans.step({{0, {t}}})))[0]);
      return rows;
    };
    // Two threads against one, whatever the environment's default (ctest runs with one).
    const int defaultThreads = omp_get_max_threads();
    auto alone = runAlone(2);
    EXPECT_EQ(runAlone(1), alone) << dtypeName(dtype) << ": one thread differs from two";
    omp_set_num_threads(defaultThreads);

    cpu::CpuModelRunner runner(*compiled.graph, compiled.facts, smallConfig(64));
    PlanBuilder plans(64, 16, 99);  // other physical blocks
    auto other = randomTokens(50, vocab, 12), third = randomTokens(8, vocab, 13);
    std::vector<std::vector<float>> batched;
    // The prompt in chunks of 5, 19 and 13, next to other sequences' prefill and decode.
    auto take = [&](const StepLogits& logits, size_t firstRow, size_t count) {
      for (size_t r = 0; r < count; ++r) batched.emplace_back(logits.row(static_cast<int64_t>(firstRow + r)).begin(), logits.row(static_cast<int64_t>(firstRow + r)).end());
    };
    StepLogits logits = runner.execute(plans.step({{1, other}, {0, {prompt.begin(), prompt.begin() + 5}, true}}));
    take(logits, 1, 5);
    logits = runner.execute(plans.step({{2, third}, {0, {prompt.begin() + 5, prompt.begin() + 24}, true}, {1, {9}}}));
    take(logits, 1, 19);
    logits = runner.execute(plans.step({{0, {prompt.begin() + 24, prompt.end()}, true}, {2, {6}}}));
    take(logits, 0, 13);
    for (size_t i = 0; i < decodes.size(); ++i) {
      std::vector<PlanBuilder::Chunk> chunks = {{1, {static_cast<TokenId>(i)}}, {0, {decodes[i]}}};
      if (i % 2 == 0) chunks.push_back({2, {static_cast<TokenId>(i + 1)}});
      take(runner.execute(plans.step(chunks)), 1, 1);
    }
    ASSERT_EQ(batched.size(), alone.size());
    for (size_t r = 0; r < alone.size(); ++r) EXPECT_EQ(batched[r], alone[r]) << dtypeName(dtype) << ": row " << r << " differs";
  }
}

// Once its shapes have been seen (oneDNN primitives are created per GEMM shape), a step allocates
// no buffer: the arena, the input buffers and oneDNN's scratchpad are all reserved. What remains is
// oneDNN's own bookkeeping inside dnnl_primitive_execute (its execution context builds small maps
// of the arguments on every call), a few dozen bytes each: the test bounds the largest allocation
// of a warm step by 256 bytes, far below any tensor of these models.
TEST(CpuBackend, WarmStepsDoNotAllocate) {
  for (const char* fixture : {"llama-past", "gpt2-past", "mistral-genai"}) {
    Compiled compiled = compileFixture(fixture, 16, DType::F32);
    cpu::CpuModelRunner runner(*compiled.graph, compiled.facts, smallConfig(64));
    PlanBuilder warm(64, 16, 3);
    auto prompt = randomTokens(20, compiled.facts.vocabSize, 4);
    runner.execute(warm.step({{0, prompt}, {1, prompt}}));
    runner.execute(warm.step({{0, {1}}, {1, {2}}}));
    // The same shapes again: a 40-token mixed step, then 2-token decode steps.
    std::vector<StepPlan> plans = {warm.step({{2, prompt}, {3, prompt}})};
    for (int i = 0; i < 4; ++i) plans.push_back(warm.step({{0, {3}}, {1, {4}}}));
    largestAllocation = 0;
    const int64_t before = allocations.load();
    for (const StepPlan& plan : plans) runner.execute(plan);
    const int64_t count = allocations.load() - before;
    EXPECT_LE(largestAllocation.load(), 256u) << fixture << ": " << count << " allocations";
    std::printf("%s: %lld small allocations in %zu warm steps (oneDNN's execution contexts), the largest %zu bytes\n", fixture,
                static_cast<long long>(count), plans.size(), largestAllocation.load());
  }
}

TEST(CpuBackend, BadTokenAndSlotNameTheRequest) {
  Compiled compiled = compileFixture("llama-past", 16);
  cpu::CpuModelRunner runner(*compiled.graph, compiled.facts, smallConfig(8));
  PlanBuilder plans(8, 16, 1);
  StepPlan plan = plans.step({{0, {1, 2, 3}}});
  plan.seqs[0].tokens[1] = compiled.facts.vocabSize;
  try {
    runner.execute(plan);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("request 'seq0': token id 256 is outside the vocabulary"), std::string::npos) << e.what();
  }
  plan = plans.step({{1, {1}}});
  plan.seqs[0].slots[0] = 8 * 16;
  EXPECT_THROW(runner.execute(plan), Error);
  // The runner still works after rejecting bad steps.
  EXPECT_EQ(runner.execute(plans.step({{2, {4, 5}}})).numRows, 1);
}

TEST(CpuBackend, StepBeyondTheBoundsIsAnError) {
  Compiled compiled = compileFixture("llama-past", 16);
  cpu::CpuRunnerConfig config = smallConfig(64);
  config.maxNumBatchedTokens = 8;
  cpu::CpuModelRunner runner(*compiled.graph, compiled.facts, config);
  PlanBuilder plans(64, 16, 1);
  EXPECT_THROW(runner.execute(plans.step({{0, randomTokens(9, 256, 1)}})), Error);
}

}  // namespace
}  // namespace pagedc
