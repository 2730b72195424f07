// finalize(): BatchNorm folded, weights exactly on their integer grid, activation qparams
// frozen, and the finalized forward equal to the prepared model's frozen eval forward.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "../passes/graph_builder.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace linquant {
namespace {

using ir::Op;

ir::Graph conv_bn_relu_pool_linear() {
  testing::GraphBuilder b;
  const auto x = b.input();
  auto h = b.op(Op::relu, {b.bn(b.conv(x, "conv"), "bn")}, "relu", "ReLU");
  h = b.op(Op::max_pool, {h}, "pool", "MaxPool2d");
  h = b.op(Op::flatten, {h}, "flat", "Flatten");
  ir::Graph graph = b.finish({h});
  return graph;
}

// Trains the observers and BatchNorm statistics a little, then freezes everything.
GraphModule prepare_and_calibrate(LinearQuantizer& quantizer) {
  at::manual_seed(0);
  GraphModule model = quantizer.prepare({at::randn({2, 4, 6, 6})});
  for (int i = 0; i < 3; ++i) model->forward(at::randn({8, 4, 6, 6}) * 2.0);
  model->freeze_bn_stats();
  for (auto& [name, fq] : model->quantizers()) fq->disable_observer();
  return model;
}

const ir::Node& node_named(const ir::Graph& graph, const std::string& name) {
  return graph.nodes()[*graph.find_node(name)];
}

TEST(Finalize, MatchesFrozenPreparedModelInEval) {
  LinearQuantizer quantizer(conv_bn_relu_pool_linear());
  GraphModule prepared = prepare_and_calibrate(quantizer);
  GraphModule finalized = quantizer.finalize();
  prepared->eval();
  const at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({5, 4, 6, 6}) * 2.0;
  const at::Tensor expected = prepared->forward(x);
  const at::Tensor got = finalized->forward(x);
  EXPECT_LT((got - expected).abs().max().item<float>(), 1e-5f * (1.0f + expected.abs().max().item<float>()));
  EXPECT_FALSE(finalized->is_training());
}

TEST(Finalize, WeightsSitExactlyOnTheirGrid) {
  LinearQuantizer quantizer(conv_bn_relu_pool_linear());
  prepare_and_calibrate(quantizer);
  const GraphModule finalized = quantizer.finalize();
  const ir::Graph& graph = finalized->graph();
  const ir::Node& conv = node_named(graph, "conv");
  EXPECT_FALSE(conv.attrs.has("bn_running_var"));
  EXPECT_FALSE(conv.attrs.has("weight_quantizer"));
  EXPECT_EQ(conv.attrs.i("weight_bits"), 8);
  EXPECT_EQ(conv.attrs.i("weight_axis"), 0);
  const at::Tensor w = graph.tensor(conv.attrs.s("weight")).tensor;
  const at::Tensor scale = graph.tensor(conv.attrs.s("weight_scale")).tensor;
  const at::Tensor zp = graph.tensor(conv.attrs.s("weight_zero_point")).tensor;
  const at::Tensor s = scale.reshape({-1, 1, 1, 1});
  const at::Tensor z = zp.reshape({-1, 1, 1, 1}).to(at::kFloat);
  const at::Tensor q = (w / s + z).round();
  // Exactly on the grid: the stored float is the dequantized integer, bit for bit.
  EXPECT_TRUE(((q - z) * s).equal(w)) << "weights off the grid";
  EXPECT_GE(q.min().item<float>(), -128.0f);
  EXPECT_LE(q.max().item<float>(), 127.0f);
  EXPECT_TRUE(zp.eq(0).all().item<bool>());
  EXPECT_FALSE(graph.has_tensor("bn.running_var"));
}

TEST(Finalize, FourBitWeightsStayOnTheFourBitGrid) {
  LinearQuantizerConfig config;
  config.set_global(ModuleLinearQuantizerConfig().set_weight_dtype(WeightDtype::qint4));
  LinearQuantizer quantizer(conv_bn_relu_pool_linear(), config);
  prepare_and_calibrate(quantizer);
  const ir::Graph graph = quantizer.finalize()->graph();
  const ir::Node& conv = node_named(graph, "conv");
  EXPECT_EQ(conv.attrs.i("weight_bits"), 4);
  const at::Tensor w = graph.tensor(conv.attrs.s("weight")).tensor;
  const at::Tensor s = graph.tensor(conv.attrs.s("weight_scale")).tensor.reshape({-1, 1, 1, 1});
  const at::Tensor q = (w / s).round();
  EXPECT_TRUE((q * s).equal(w));
  EXPECT_GE(q.min().item<float>(), -8.0f);
  EXPECT_LE(q.max().item<float>(), 7.0f);
}

TEST(Finalize, ActivationQuantizersBecomeFrozenQuantizeDequantize) {
  LinearQuantizer quantizer(conv_bn_relu_pool_linear());
  GraphModule prepared = prepare_and_calibrate(quantizer);
  const ir::Graph graph = quantizer.finalize()->graph();
  int count = 0;
  for (const ir::Node& node : graph.nodes()) {
    EXPECT_NE(node.op, Op::fake_quantize);
    if (node.op != Op::quantize_dequantize) continue;
    ++count;
    const auto [scale, zp] = prepared->quantizer(node.attrs.s("activation_quantizer"))->calculate_qparams();
    EXPECT_EQ(node.attrs.f("scale"), static_cast<double>(scale.item<float>()));
    EXPECT_EQ(node.attrs.i("zero_point"), zp.item<int32_t>());
  }
  EXPECT_EQ(count, 4);  // input, relu (shared by pool and flatten)
  EXPECT_TRUE(graph.quantizers().empty());
}

TEST(Finalize, LeavesThePreparedModelUntouched) {
  LinearQuantizer quantizer(conv_bn_relu_pool_linear());
  GraphModule prepared = prepare_and_calibrate(quantizer);
  const at::Tensor before = prepared->named_parameters()["conv.weight"].clone();
  GraphModule finalized = quantizer.finalize();
  EXPECT_TRUE(prepared->named_parameters()["conv.weight"].equal(before));
  EXPECT_NE(finalized->named_parameters()["conv.weight"].unsafeGetTensorImpl(),
            prepared->named_parameters()["conv.weight"].unsafeGetTensorImpl());
}

}  // namespace
}  // namespace linquant
