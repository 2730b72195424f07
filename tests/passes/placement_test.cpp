// Fake-quant placement on graphs built like the frontends capture them. Expectations are
// written from the reference tables (coremltools.md 3.4, 3.5 and Appendix C), not from
// running linquant.
#include <gtest/gtest.h>

#include "graph_builder.h"
#include "linquant/passes/passes.h"

namespace linquant {
namespace {

using ir::Op;
using testing::GraphBuilder;
using testing::placement;

std::string prepared(ir::Graph graph, const LinearQuantizerConfig& config = {}) {
  passes::prepare_graph(graph, config);
  return placement(graph);
}

LinearQuantizerConfig affine_config() {
  LinearQuantizerConfig config;
  config.set_global(ModuleLinearQuantizerConfig().set_quantization_scheme(QuantizationScheme::affine));
  return config;
}

TEST(Placement, ConvReluInputSymmetricOutputAffine) {
  GraphBuilder b;
  const auto x = b.input();
  const auto y = b.op(Op::relu, {b.conv(x, "0")}, "1", "ReLU");
  EXPECT_EQ(prepared(b.finish({y})), "fq:0:s conv[w:s0] +relu fq:1:a");
}

TEST(Placement, ConvBnReluFoldsBatchNorm) {
  GraphBuilder b;
  const auto x = b.input();
  const auto y = b.op(Op::relu, {b.bn(b.conv(x, "conv"), "bn")}, "relu", "ReLU");
  EXPECT_EQ(prepared(b.finish({y})), "fq:0:s conv+bn[w:s0] +relu fq:1:a");
}

TEST(Placement, AffineSchemeEverywhere) {
  GraphBuilder b;
  const auto x = b.input();
  const auto y = b.op(Op::relu, {b.conv(x, "0")}, "1", "ReLU");
  EXPECT_EQ(prepared(b.finish({y}), affine_config()), "fq:0:a conv[w:a0] +relu fq:1:a");
}

// The coremltools tutorial net: pools and flatten share the ReLU's quantizer; Linear fuses
// with the LogSoftmax module.
TEST(Placement, TutorialNetSharesThroughPoolAndFlatten) {
  GraphBuilder b;
  const auto x = b.input();
  auto h = b.op(Op::relu, {b.conv(x, "0")}, "1", "ReLU");
  h = b.op(Op::max_pool, {h}, "2", "MaxPool2d");
  h = b.op(Op::flatten, {h}, "3", "Flatten");
  h = b.op(Op::log_softmax, {b.linear(h, "4")}, "5", "LogSoftmax");
  EXPECT_EQ(prepared(b.finish({h})),
            "fq:0:s conv[w:s0] +relu fq:1:a max_pool fq:1:a flatten fq:1:a linear[w:s0] "
            "+log_softmax fq:4:s");
}

// Reference 3.5, the observed table of the larger example.
TEST(Placement, ObservedResidualExample) {
  GraphBuilder b;
  const auto x = b.input();
  auto a = b.op(Op::relu, {b.bn(b.conv(x, "conv1"), "bn1")}, "relu1", "ReLU");
  auto m = b.op(Op::max_pool, {a}, "pool", "MaxPool2d");
  auto c2 = b.bn(b.conv(m, "conv2"), "bn2");
  auto r = b.op(Op::relu, {b.op(Op::add, {c2, m})});
  auto h = b.op(Op::hardswish, {b.conv(r, "conv3")}, "act3", "Hardswish");
  auto p = b.op(Op::permute, {h});
  p = b.op(Op::layer_norm, {p}, "ln", "LayerNorm");
  p = b.op(Op::permute, {p}, "", "", [] {
    ir::Attributes a;
    a.set("dims", std::vector<int64_t>{0, 3, 1, 2});
    return a;
  }());
  auto c = b.op(Op::cat, {r, p});
  c = b.op(Op::adaptive_avg_pool, {c}, "gap", "AdaptiveAvgPool2d");
  c = b.op(Op::flatten, {c});
  auto out = b.op(Op::sigmoid, {b.linear(c, "fc")});
  EXPECT_EQ(prepared(b.finish({out})),
            "fq:0:s conv+bn[w:s0] +relu fq:1:a max_pool fq:1:a conv+bn[w:s0] fq:3:s add +relu "
            "fq:4:s conv[w:s0] +hardswish fq:5:s permute layer_norm permute fq:4:s cat fq:4:s "
            "adaptive_avg_pool fq:4:s flatten fq:4:s linear[w:s0] fq:10:s sigmoid");
}

// Appendix C item 6: the Identity branch joins the cat group through share-qparams, so the
// group (model input included) is affine.
TEST(Placement, CatWithIdentityBranchIsAffine) {
  GraphBuilder b;
  const auto x = b.input();
  const auto relu = b.op(Op::relu, {b.conv(x, "conv")}, "relu", "ReLU");
  const auto id = b.op(Op::identity, {x}, "id", "Identity");
  const auto y = b.op(Op::cat, {relu, id});
  EXPECT_EQ(prepared(b.finish({y})), "fq:1:a conv[w:s0] +relu fq:1:a identity fq:1:a cat fq:1:a");
}

TEST(Placement, CatWithSignedBranchStaysSymmetric) {
  GraphBuilder b;
  const auto x = b.input();
  const auto relu = b.op(Op::relu, {b.conv(x, "c1")}, "r1", "ReLU");
  const auto leaky = b.op(Op::leaky_relu, {b.conv(x, "c2")}, "r2", "LeakyReLU");
  const auto y = b.op(Op::cat, {relu, leaky});
  EXPECT_EQ(prepared(b.finish({y})),
            "fq:0:s conv[w:s0] +relu fq:1:s conv[w:s0] +leaky_relu fq:1:s cat fq:1:s");
}

TEST(Placement, AddOfNonNegativeInputsIsAffine) {
  GraphBuilder b;
  const auto x = b.input();
  const auto r1 = b.op(Op::relu, {b.conv(x, "c1")}, "r1", "ReLU");
  const auto r2 = b.op(Op::relu, {b.conv(x, "c2")}, "r2", "ReLU");
  const auto y = b.op(Op::add, {r1, r2});
  EXPECT_EQ(prepared(b.finish({y})),
            "fq:0:s conv[w:s0] +relu fq:1:a conv[w:s0] +relu fq:2:a add fq:3:a");
}

TEST(Placement, AddWithSignedInputIsSymmetric) {
  GraphBuilder b;
  const auto x = b.input();
  const auto r1 = b.op(Op::relu, {b.conv(x, "c1")}, "r1", "ReLU");
  const auto r2 = b.op(Op::leaky_relu, {b.conv(x, "c2")}, "r2", "LeakyReLU");
  const auto y = b.op(Op::add, {r1, r2});
  EXPECT_EQ(prepared(b.finish({y})),
            "fq:0:s conv[w:s0] +relu fq:1:a conv[w:s0] +leaky_relu fq:2:s add fq:3:s");
}

TEST(Placement, QuantizerAfterDropoutIsRemoved) {
  GraphBuilder b;
  const auto x = b.input();
  auto h = b.op(Op::relu, {b.conv(x, "c1")}, "r1", "ReLU");
  h = b.op(Op::dropout, {h}, "drop", "Dropout");
  EXPECT_EQ(prepared(b.finish({b.conv(h, "c2")})),
            "fq:0:s conv[w:s0] +relu fq:1:a dropout conv[w:s0] fq:3:s");
}

TEST(Placement, FixedRangesForSigmoidLikeModules) {
  GraphBuilder b;
  const auto x = b.input();
  const auto s = b.op(Op::sigmoid, {b.conv(x, "c1")}, "sig", "Sigmoid");  // fused
  const auto t = b.op(Op::tanh, {b.op(Op::flatten, {s}, "fl", "Flatten")}, "tanh", "Tanh");
  ir::Graph graph = b.finish({t});
  passes::prepare_graph(graph, {});
  EXPECT_EQ(placement(graph), "fq:0:s conv[w:s0] +sigmoid fq:1:f flatten fq:1:f tanh fq:3:f");
  EXPECT_EQ(graph.quantizers().at("activation_post_process_1").options.fixed_qparams->scale, 1.0f / 256);
  const auto tanh_q = *graph.quantizers().at("activation_post_process_3").options.fixed_qparams;
  EXPECT_EQ(tanh_q.scale, 2.0f / 256);
  EXPECT_EQ(tanh_q.zero_point, 128);
}

TEST(Placement, FunctionalSigmoidStaysFloatButHardsigmoidIsFixed) {
  GraphBuilder b;
  const auto x = b.input();
  const auto s = b.op(Op::sigmoid, {b.conv(x, "c1")});
  const auto h = b.op(Op::hardsigmoid, {s});
  EXPECT_EQ(prepared(b.finish({h})), "fq:0:s conv[w:s0] fq:1:s sigmoid fq:2:s hardsigmoid fq:3:f");
}

TEST(Placement, WeightOnlyAndActivationOnlyConfigs) {
  LinearQuantizerConfig weight_only;
  weight_only.set_global(ModuleLinearQuantizerConfig().set_activation_dtype(ActivationDtype::float32));
  LinearQuantizerConfig activation_only;
  activation_only.set_global(ModuleLinearQuantizerConfig().set_weight_dtype(WeightDtype::float32));
  for (const auto& [config, expected] :
       {std::pair{weight_only, "conv[w:s0] +relu sigmoid"},
        std::pair{activation_only, "fq:0:s conv +relu fq:1:a sigmoid fq:2:f"}}) {
    GraphBuilder b;
    const auto x = b.input();
    const auto y = b.op(Op::sigmoid, {b.op(Op::relu, {b.conv(x, "0")}, "1", "ReLU")}, "2", "Sigmoid");
    EXPECT_EQ(prepared(b.finish({y}), config), expected);
  }
}

// Appendix C item 7: a block configured null loses its affine output; the next quantized op
// observes its input with an ordinary (symmetric) quantizer.
TEST(Placement, NullConfigLeavesBlockFloat) {
  LinearQuantizerConfig config;
  config.set_module_name("c1", std::nullopt);
  GraphBuilder b;
  const auto x = b.input();
  const auto h = b.op(Op::relu, {b.bn(b.conv(x, "c1"), "bn1")}, "r1", "ReLU");
  EXPECT_EQ(prepared(b.finish({b.conv(h, "c2")}), config),
            "conv +batch_norm +relu fq:0:s conv[w:s0] fq:1:s");
}

TEST(Placement, ConvTransposeUsesOutputChannelAxisEvenWithBatchNorm) {
  GraphBuilder b;
  const auto x = b.input();
  const auto y = b.bn(b.conv(x, "up", "ConvTranspose2d", Op::conv_transpose), "bn");
  EXPECT_EQ(prepared(b.finish({y})), "fq:0:s conv_transpose+bn[w:s1] fq:1:s");
}

TEST(Placement, LinearBatchNormThenSeparateRelu) {
  GraphBuilder b;
  const auto x = b.input();
  const auto y = b.op(Op::relu, {b.bn(b.linear(x, "fc"), "bn", "BatchNorm1d")}, "relu", "ReLU");
  EXPECT_EQ(prepared(b.finish({y})), "fq:0:s linear+bn[w:s0] fq:1:s relu fq:2:a");
}

// coremltools' always-affine list lacks BNReLU2d: a standalone BatchNorm2d + ReLU stays symmetric.
TEST(Placement, StandaloneBatchNormReluStaysSymmetric) {
  GraphBuilder b;
  const auto x = b.input();
  const auto y = b.op(Op::relu, {b.bn(x, "bn")}, "relu", "ReLU");
  EXPECT_EQ(prepared(b.finish({y})), "fq:0:s batch_norm +relu fq:1:s");
}

// Reference 3.4, binary rows: torch.einsum is quantized like matmul: its operands are
// observed, it has its own output observer, and an activation module after it fuses (one
// quantizer after the activation, affine after ReLU).
TEST(Placement, EinsumObservesOperandsAndFusesActivation) {
  GraphBuilder b;
  const auto x = b.input();
  const auto q = b.linear(x, "q");
  const auto k = b.op(Op::permute, {x});
  ir::Attributes equation;
  equation.set("equation", std::string("bhid,bhjd->bhij"));
  const auto e = b.op(Op::einsum, {q, k}, "", "", equation);
  const auto y = b.op(Op::relu, {e}, "relu", "ReLU");
  EXPECT_EQ(prepared(b.finish({y})),
            "fq:0:s linear[w:s0] fq:1:s permute fq:2:s einsum +relu fq:3:a");
}

// Reference 3.4, Embedding row: a per-channel weight quantizer on axis 0; the integer ids and
// the output are not observed, so the only activation quantizers are the linear's.
TEST(Placement, EmbeddingQuantizesOnlyItsWeight) {
  GraphBuilder b;
  const auto ids = b.input("ids");
  const auto y = b.linear(b.embedding(ids, "emb"), "fc");
  EXPECT_EQ(prepared(b.finish({y})), "embedding[w:s0] fq:0:s linear[w:s0] fq:1:s");
}

// Reference 3.4, activation rows: activations linquant runs as generic LibTorch operators
// (nn.Mish, F.celu) follow the same rules as the built-in ones: a module fuses after conv,
// a functional activation fuses after a binary op, each with one own output quantizer.
TEST(Placement, GenericActivationsFuseLikeBuiltInOnes) {
  GraphBuilder b;
  const auto x = b.input();
  ir::Attributes mish;
  mish.set("schema", std::string("aten::mish"));
  const auto m = b.op(Op::torch_op, {b.conv(x, "c1")}, "act", "Mish", mish);
  ir::Attributes celu;
  celu.set("schema", std::string("aten::celu"));
  const auto y = b.op(Op::torch_op, {b.op(Op::add, {m, x})}, "", "", celu);
  EXPECT_EQ(prepared(b.finish({y})), "fq:0:s conv[w:s0] +torch_op fq:1:s add +torch_op fq:2:s");
}

// Reference 3.4: Conv3d + BatchNorm3d + ReLU fuse like their 2-D forms, and the 3-D and 1-D
// pools are share-qparams ops: they reuse the quantizer of their input.
TEST(Placement, ThreeAndOneDimensionalFormsFuseAndShareLikeTwoDimensional) {
  GraphBuilder b;
  const auto x = b.input();
  auto h = b.op(Op::relu, {b.bn(b.conv(x, "c3", "Conv3d"), "bn3", "BatchNorm3d")}, "r3", "ReLU");
  h = b.op(Op::max_pool, {h}, "pool3", "MaxPool3d");
  h = b.op(Op::relu, {b.bn(b.conv(h, "c1", "Conv1d"), "bn1", "BatchNorm1d")}, "r1", "ReLU");
  ir::Attributes avg;
  avg.set("kernel_size", std::vector<int64_t>{2});
  avg.set("stride", std::vector<int64_t>{2});
  avg.set("padding", std::vector<int64_t>{0});
  avg.set("ceil_mode", false);
  avg.set("count_include_pad", true);
  avg.set("spatial_dims", int64_t{1});
  h = b.op(Op::avg_pool, {h}, "pool1", "AvgPool1d", avg);
  h = b.op(Op::adaptive_avg_pool, {h}, "gap1", "AdaptiveAvgPool1d");
  EXPECT_EQ(prepared(b.finish({h})),
            "fq:0:s conv+bn[w:s0] +relu fq:1:a max_pool fq:1:a conv+bn[w:s0] +relu fq:3:a "
            "avg_pool fq:3:a adaptive_avg_pool fq:3:a");
}

TEST(Placement, TypeAndNameConfigsPickRangesAndObservers) {
  LinearQuantizerConfig config;
  config.set_module_type("Linear", ModuleLinearQuantizerConfig()
                                       .set_weight_dtype(WeightDtype::qint4)
                                       .set_weight_per_channel(false)
                                       .set_weight_observer(ObserverType::min_max));
  config.set_module_name("c2", ModuleLinearQuantizerConfig().set_activation_observer(ObserverType::ema_min_max));
  GraphBuilder b;
  const auto x = b.input();
  const auto h = b.conv(b.conv(x, "c1"), "c2");
  ir::Graph graph = b.finish({b.linear(b.op(Op::flatten, {h}), "fc")});
  passes::prepare_graph(graph, config);
  EXPECT_EQ(placement(graph), "fq:0:s conv[w:s0] fq:1:s conv[w:s0] fq:2:s flatten fq:2:s linear[w:s-1] fq:4:s");
  const auto& fc = graph.quantizers().at("fc.weight_fake_quant").options;
  EXPECT_EQ(fc.range, QuantRange::qint4());
  EXPECT_EQ(fc.observer, ObserverType::min_max);
  EXPECT_EQ(graph.quantizers().at("activation_post_process_2").options.observer, ObserverType::ema_min_max);
  EXPECT_EQ(graph.quantizers().at("activation_post_process_1").options.observer,
            ObserverType::moving_average_min_max);
}

}  // namespace
}  // namespace linquant
