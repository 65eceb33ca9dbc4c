// The paged rewrite of attention ops (ONNX Attention-23, com.microsoft.MultiHeadAttention): a small
// decoder built around each op, compiled, must compute what the uncompiled graph computes (its
// reference implementation), for a prompt and a decode step through the cache; and attentions that
// cannot be paged fail with a diagnostic naming the op and the reason.
#include <gtest/gtest.h>

#include <random>

#include "PagedTestHarness.h"
#include "ir/Error.h"
#include "ir/TextFormat.h"
#include "passes/CompilePipeline.h"

namespace pagedc {
namespace {

struct OpCase {
  const char* name;
  int64_t kvWidth;        // width of the key and value projections
  const char* attention;  // the op line, reading %q, %k, %v and the past inputs
};

std::string decoderWith(const OpCase& c, int64_t kvHeads) {
  std::string kv = std::to_string(c.kvWidth);
  return std::string("graph @decoder(%input_ids: i64[batch, seq], %attention_mask: i64[batch, total], ") +
         "%past_key_values.0.key: f32[batch, " + std::to_string(kvHeads) + ", past, 8], %past_key_values.0.value: f32[batch, " +
         std::to_string(kvHeads) + ", past, 8]) {\n" +
         "  %emb = weight() {name = \"emb\"} : f32[40, 32]\n"
         "  %wq = weight() {name = \"wq\"} : f32[32, 32]\n"
         "  %wk = weight() {name = \"wk\"} : f32[32, " + kv + "]\n"
         "  %wv = weight() {name = \"wv\"} : f32[32, " + kv + "]\n"
         "  %wo = weight() {name = \"wo\"} : f32[32, 40]\n"
         "  %x = Gather(%emb, %input_ids) {axis = 0} : f32[batch, seq, 32]\n"
         "  %q = MatMul(%x, %wq) : f32[batch, seq, 32]\n"
         "  %k = MatMul(%x, %wk) : f32[batch, seq, " + kv + "]\n"
         "  %v = MatMul(%x, %wv) : f32[batch, seq, " + kv + "]\n" +
         c.attention + "\n"
         "  %logits = MatMul(%y, %wo) : f32[batch, seq, 40]\n"
         "  return %logits, %present.0.key, %present.0.value\n}\n";
}

std::unique_ptr<Graph> buildDecoder(const OpCase& c, int64_t kvHeads) {
  auto weights = std::make_shared<WeightStore>();
  std::mt19937 random(3);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  auto add = [&](const char* name, std::vector<int64_t> shape) {
    Tensor t = Tensor::zeros(DType::F32, shape);
    for (int64_t i = 0; i < t.numElements(); ++i) t.mutableData<float>()[i] = normal(random);
    weights->add(name, t);
  };
  add("emb", {40, 32});
  add("wq", {32, 32});
  add("wk", {32, c.kvWidth});
  add("wv", {32, c.kvWidth});
  add("wo", {32, 40});
  return parseGraph(decoderWith(c, kvHeads), c.name, weights);
}

const OpCase kOnnxAttention = {
    "onnx-attention-gqa", 16,
    "  %y, %present.0.key, %present.0.value = Attention(%q, %k, %v, none, %past_key_values.0.key, %past_key_values.0.value) "
    "{is_causal = 1, kv_num_heads = 2, q_num_heads = 4} : f32[batch, seq, 32], f32[batch, 2, past + seq, 8], f32[batch, 2, past + seq, 8]"};
const OpCase kMultiHeadAttention = {
    "ort-multi-head-attention", 32,
    "  %y, %present.0.key, %present.0.value = com.microsoft.MultiHeadAttention(%q, %k, %v, none, none, none, %past_key_values.0.key, "
    "%past_key_values.0.value) {num_heads = 4, unidirectional = 1} : f32[batch, seq, 32], f32[batch, 4, past + seq, 8], f32[batch, 4, past + seq, 8]"};

class AttentionOpRewrite : public ::testing::TestWithParam<std::pair<OpCase, int64_t>> {};

TEST_P(AttentionOpRewrite, CompiledMatchesReference) {
  const auto& [c, kvHeads] = GetParam();
  auto reference = buildDecoder(c, kvHeads);
  auto compiled = buildDecoder(c, kvHeads);
  CompileResult result = compileGraph(*compiled, {.blockSize = 8});
  EXPECT_EQ(result.opCountsAfter["paged_attention"], 1);
  EXPECT_EQ(result.facts.numKvHeads, kvHeads);

  // Prompt of 11 tokens (two blocks of 8), then one decode step.
  std::vector<int64_t> prompt = {3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 31};
  auto i64 = [](std::vector<int64_t> v, std::vector<int64_t> shape) { return Tensor::fromValues(DType::I64, std::move(shape), v); };
  int64_t n = static_cast<int64_t>(prompt.size());
  std::map<std::string, Tensor> inputs;
  inputs["input_ids"] = i64(prompt, {1, n});
  inputs["attention_mask"] = i64(std::vector<int64_t>(static_cast<size_t>(n), 1), {1, n});
  inputs["past_key_values.0.key"] = Tensor::zeros(DType::F32, {1, kvHeads, 0, 8});
  inputs["past_key_values.0.value"] = Tensor::zeros(DType::F32, {1, kvHeads, 0, 8});
  auto prefill = Interpreter(*reference).run(inputs);
  inputs["input_ids"] = i64({17}, {1, 1});
  inputs["attention_mask"] = i64(std::vector<int64_t>(static_cast<size_t>(n + 1), 1), {1, n + 1});
  inputs["past_key_values.0.key"] = prefill.at("present.0.key");
  inputs["past_key_values.0.value"] = prefill.at("present.0.value");
  auto decode = Interpreter(*reference).run(inputs);

  test::PagedHarness harness(*compiled, result.facts, 16);
  auto ours = harness.step({{0, prompt, true}});
  auto next = harness.step({{0, {17}}});
  double worst = 0, scale = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t v = 0; v < 40; ++v) {
      worst = std::max(worst, std::abs(static_cast<double>(ours[0][static_cast<size_t>(t)][static_cast<size_t>(v)]) - prefill.at("logits").data<float>()[t * 40 + v]));
      scale = std::max(scale, std::abs(static_cast<double>(prefill.at("logits").data<float>()[t * 40 + v])));
    }
  for (int64_t v = 0; v < 40; ++v)
    worst = std::max(worst, std::abs(static_cast<double>(next[0][0][static_cast<size_t>(v)]) - decode.at("logits").data<float>()[v]));
  EXPECT_LT(worst / scale, 1e-5) << "max abs error " << worst;
}

INSTANTIATE_TEST_SUITE_P(Ops, AttentionOpRewrite, ::testing::Values(std::make_pair(kOnnxAttention, int64_t{2}), std::make_pair(kMultiHeadAttention, int64_t{4})),
                         [](const auto& info) { return std::string(info.param.first.name[0] == 'o' && info.param.first.name[1] == 'n' ? "OnnxAttention" : "MultiHeadAttention"); });

std::string compileError(const std::string& text) {
  auto weights = std::make_shared<WeightStore>();
  auto graph = parseGraph(text, "test", weights);
  try {
    compileGraph(*graph, {});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(AttentionRewriteDiagnostics, NonCausalAttentionIsRefusedNamingTheOp) {
  OpCase bidirectional = kOnnxAttention;
  std::string text = decoderWith(bidirectional, 2);
  text.replace(text.find("is_causal = 1"), 13, "is_causal = 0");
  auto graph = parseGraph(text, "test", buildDecoder(kOnnxAttention, 2)->weights);
  try {
    compileGraph(*graph, {});
    FAIL() << "a bidirectional attention was paged";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Attention (result %y): only causal attention (is_causal = 1) can be paged"), std::string::npos) << e.what();
  }
}

// A decomposed attention with no mask is bidirectional: the probe check refuses to page it.
TEST(AttentionRewriteDiagnostics, DecomposedBidirectionalAttentionFailsTheProbeCheck) {
  auto weights = buildDecoder(kOnnxAttention, 2)->weights;
  auto graph = parseGraph(R"(graph @g(%input_ids: i64[batch, seq], %past_key_values.0.key: f32[batch, 4, past, 8], %past_key_values.0.value: f32[batch, 4, past, 8]) {
  %emb = weight() {name = "emb"} : f32[40, 32]
  %wq = weight() {name = "wq"} : f32[32, 32]
  %wo = weight() {name = "wo"} : f32[32, 40]
  %heads = Constant() {value = tensor<i64[4]>[0, 0, 4, 8]} : i64[4]
  %merge = Constant() {value = tensor<i64[3]>[0, 0, 32]} : i64[3]
  %scale = Constant() {value = tensor<f32[]>[0.35355339]} : f32[]
  %x = Gather(%emb, %input_ids) {axis = 0} : f32[batch, seq, 32]
  %h = MatMul(%x, %wq) : f32[batch, seq, 32]
  %h4 = Reshape(%h, %heads) : f32[batch, seq, 4, 8]
  %q = Transpose(%h4) {perm = [0, 2, 1, 3]} : f32[batch, 4, seq, 8]
  %present.0.key = Concat(%past_key_values.0.key, %q) {axis = 2} : f32[batch, 4, past + seq, 8]
  %present.0.value = Concat(%past_key_values.0.value, %q) {axis = 2} : f32[batch, 4, past + seq, 8]
  %kt = Transpose(%present.0.key) {perm = [0, 1, 3, 2]} : f32[batch, 4, 8, past + seq]
  %s = MatMul(%q, %kt) : f32[batch, 4, seq, past + seq]
  %ss = Mul(%s, %scale) : f32[batch, 4, seq, past + seq]
  %p = Softmax(%ss) {axis = -1} : f32[batch, 4, seq, past + seq] loc("/layers.0/attn/Softmax")
  %o = MatMul(%p, %present.0.value) : f32[batch, 4, seq, 8]
  %ot = Transpose(%o) {perm = [0, 2, 1, 3]} : f32[batch, seq, 4, 8]
  %y = Reshape(%ot, %merge) : f32[batch, seq, 32]
  %logits = MatMul(%y, %wo) : f32[batch, seq, 40]
  return %logits, %present.0.key, %present.0.value
})", "bidirectional", weights);
  try {
    compileGraph(*graph, {});
    FAIL() << "a bidirectional attention was paged";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("Softmax '/layers.0/attn/Softmax'"), std::string::npos) << message;
    EXPECT_NE(message.find("its mask is not the causal mask"), std::string::npos) << message;
  }
}

TEST(AttentionRewriteDiagnostics, SoftmaxWithoutAttentionAboveNamesTheStep) {
  std::string error = compileError(R"(graph @g(%input_ids: i64[batch, seq]) {
  %axes = Constant() {value = tensor<i64[2]>[1, 2]} : i64[2]
  %f = Cast(%input_ids) {to = f32} : f32[batch, seq]
  %f4 = Unsqueeze(%f, %axes) : f32[batch, 1, 1, seq]
  %p = Softmax(%f4) {axis = -1} : f32[batch, 1, 1, seq] loc("/head/Softmax")
  return %p
})");
  EXPECT_NE(error.find("Softmax '/head/Softmax'"), std::string::npos) << error;
  EXPECT_NE(error.find("step 'scores'"), std::string::npos) << error;
}

TEST(AttentionRewriteDiagnostics, GraphWithoutAttentionIsRefused) {
  std::string error = compileError(R"(graph @g(%input_ids: i64[batch, seq]) {
  %x = Cast(%input_ids) {to = f32} : f32[batch, seq]
  return %x
})");
  EXPECT_NE(error.find("no attention found"), std::string::npos) << error;
}

TEST(AttentionRewriteDiagnostics, SoftmaxWithoutScoresMatMulNamesTheStep) {
  std::string error = compileError(R"(graph @g(%input_ids: i64[batch, seq], %s: f32[batch, 4, seq, seq]) {
  %p = Softmax(%s) {axis = -1} : f32[batch, 4, seq, seq] loc("/attn/Softmax")
  return %p
})");
  EXPECT_NE(error.find("graph input 's'"), std::string::npos) << error;
}

}  // namespace
}  // namespace pagedc
