// Every stateless op of the interpreter against the torch::nn module or ATen call it stands
// for, plus dropout's train/eval switch, quantize_dequantize and float_module callables.
#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/pooling.h>

#include "graph_builder.h"
#include "linquant/common/error.h"
#include "linquant/runtime/graph_module.h"

namespace linquant {
namespace {

using namespace linquant::testing;

// input -> one node -> output.
at::Tensor run_one(Op op, const at::Tensor& x, const AttrList& attrs = {}, bool training = true) {
  ir::Graph g;
  const ValueId v = add(g, op, {g.add_input("x")}, attrs);
  g.set_outputs({v});
  GraphModule gm(std::move(g));
  gm->train(training);
  return gm->forward(x);
}

TEST(OpKernels, EveryActivationMatchesItsModule) {
  at::manual_seed(4);
  const at::Tensor x = at::randn({3, 5, 7}) * 4;
  using namespace torch::nn;
  EXPECT_TRUE(at::equal(run_one(Op::relu, x), ReLU()(x)));
  EXPECT_TRUE(at::equal(run_one(Op::relu6, x), ReLU6()(x)));
  EXPECT_TRUE(at::equal(run_one(Op::leaky_relu, x, {{"negative_slope", F(0.2)}}),
                        LeakyReLU(LeakyReLUOptions().negative_slope(0.2))(x)));
  // No Hardswish/Hardsigmoid modules in the C++ frontend: their definitions instead.
  const at::Tensor hardsigmoid = at::clamp(x + 3, 0, 6) / 6;
  EXPECT_TRUE(at::allclose(run_one(Op::hardswish, x), x * hardsigmoid, 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(run_one(Op::hardsigmoid, x), hardsigmoid, 1e-6, 1e-6));
  EXPECT_TRUE(at::equal(run_one(Op::sigmoid, x), Sigmoid()(x)));
  EXPECT_TRUE(at::equal(run_one(Op::tanh, x), Tanh()(x)));
  EXPECT_TRUE(at::equal(run_one(Op::softmax, x, {{"dim", I(1)}}), Softmax(1)(x)));
  EXPECT_TRUE(at::equal(run_one(Op::log_softmax, x, {{"dim", I(-1)}}), LogSoftmax(-1)(x)));
  EXPECT_TRUE(at::equal(run_one(Op::gelu, x), GELU()(x)));
  EXPECT_TRUE(at::equal(run_one(Op::gelu, x, {{"approximate", S("tanh")}}),
                        GELU(GELUOptions().approximate("tanh"))(x)));
  EXPECT_TRUE(at::equal(run_one(Op::silu, x), SiLU()(x)));
  EXPECT_TRUE(at::equal(run_one(Op::elu, x, {{"alpha", F(0.7)}}),
                        ELU(ELUOptions().alpha(0.7))(x)));
  EXPECT_FALSE(at::equal(run_one(Op::relu6, x), run_one(Op::relu, x)));
}

TEST(OpKernels, PoolingAndReductions) {
  at::manual_seed(5);
  const at::Tensor x = at::randn({2, 3, 9, 8});
  using namespace torch::nn;
  const AttrList max_attrs = {{"kernel_size", L({3, 3})}, {"stride", L({2, 2})},
                              {"padding", L({1, 1})},     {"dilation", L({1, 1})},
                              {"ceil_mode", B(true)}};
  EXPECT_TRUE(at::equal(run_one(Op::max_pool, x, max_attrs),
                        MaxPool2d(MaxPool2dOptions(3).stride(2).padding(1).ceil_mode(true))(x)));
  const AttrList avg_attrs = {{"kernel_size", L({2, 3})}, {"stride", L({2, 1})},
                              {"padding", L({1, 1})},     {"ceil_mode", B(false)},
                              {"count_include_pad", B(false)}};
  EXPECT_TRUE(at::equal(
      run_one(Op::avg_pool, x, avg_attrs),
      AvgPool2d(AvgPool2dOptions({2, 3}).stride({2, 1}).padding(1).count_include_pad(false))(x)));
  EXPECT_TRUE(at::equal(run_one(Op::adaptive_avg_pool, x, {{"output_size", L({1, 1})}}),
                        AdaptiveAvgPool2d(1)(x)));
  EXPECT_TRUE(at::equal(run_one(Op::adaptive_avg_pool, x.flatten(2), {{"output_size", L({5})}}),
                        AdaptiveAvgPool1d(5)(x.flatten(2))));
  const AttrList pool1d = {{"kernel_size", L({2})}, {"stride", L({2})}, {"padding", L({0})},
                           {"dilation", L({1})},    {"ceil_mode", B(false)}};
  EXPECT_TRUE(at::equal(run_one(Op::max_pool, x.flatten(2), pool1d),
                        MaxPool1d(2)(x.flatten(2))));
  EXPECT_TRUE(at::equal(run_one(Op::mean, x, {{"dims", L({2, 3})}, {"keepdim", B(true)}}),
                        x.mean({2, 3}, true)));
  EXPECT_TRUE(at::equal(run_one(Op::mean, x, {{"dims", L({-1})}, {"keepdim", B(false)}}),
                        x.mean(-1)));
}

TEST(OpKernels, ShapeAndDataMovement) {
  const at::Tensor x = at::arange(2 * 3 * 4 * 5, at::kFloat).reshape({2, 3, 4, 5});
  const at::Tensor r = run_one(Op::reshape, x, {{"shape", L({0, -1, 5})}});
  EXPECT_EQ(r.sizes(), at::IntArrayRef({2, 12, 5}));
  EXPECT_TRUE(at::equal(r, x.reshape({2, 12, 5})));
  EXPECT_EQ(run_one(Op::reshape, x, {{"shape", L({0, 0, -1})}}).sizes(),
            at::IntArrayRef({2, 3, 20}));
  EXPECT_TRUE(at::equal(run_one(Op::permute, x, {{"dims", L({0, 2, 3, 1})}}),
                        x.permute({0, 2, 3, 1})));
  EXPECT_TRUE(at::equal(run_one(Op::transpose, x, {{"dim0", I(1)}, {"dim1", I(3)}}),
                        x.transpose(1, 3)));
  EXPECT_TRUE(at::equal(run_one(Op::flatten, x, {{"start_dim", I(1)}, {"end_dim", I(2)}}),
                        x.flatten(1, 2)));
  EXPECT_TRUE(at::equal(run_one(Op::identity, x), x));

  ir::Graph g;
  const ValueId a = g.add_input("a");
  const ValueId b = g.add_input("b");
  const ValueId relu = add(g, Op::relu, {b});
  g.set_outputs({add(g, Op::cat, {a, relu, a}, {{"dim", I(1)}}), add(g, Op::matmul, {a, b})});
  GraphModule gm(std::move(g));
  const at::Tensor in_a = at::randn({4, 4});
  const at::Tensor in_b = at::randn({4, 4});
  const std::vector<at::Tensor> out = gm->forward({in_a, in_b});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(at::equal(out[0], at::cat({in_a, at::relu(in_b), in_a}, 1)));
  EXPECT_TRUE(at::equal(out[1], at::matmul(in_a, in_b)));
}

TEST(OpKernels, ElementwiseWithTensorsScalarsAndAlpha) {
  at::manual_seed(6);
  const at::Tensor x = at::randn({3, 4});
  const at::Tensor y = at::rand({3, 4}) + 0.5;
  ir::Graph g;
  const ValueId a = g.add_input("a");
  const ValueId b = g.add_input("b");
  g.set_outputs({
      add(g, Op::add, {a, b}, {{"alpha", F(0.5)}}),
      add(g, Op::sub, {a, b}, {{"alpha", I(2)}}),
      add(g, Op::mul, {a, b}),
      add(g, Op::div, {a, b}),
      add(g, Op::add, {a}, {{"scalar", F(1.5)}}),
      add(g, Op::sub, {a}, {{"scalar", I(3)}, {"scalar_first", B(true)}}),
      add(g, Op::mul, {a}, {{"scalar", F(-2.0)}}),
      add(g, Op::div, {b}, {{"scalar", F(2.0)}, {"scalar_first", B(true)}}),
      add(g, Op::div, {a}, {{"scalar", F(0.3)}, {"rounding_mode", S("floor")}}),
  });
  GraphModule gm(std::move(g));
  const std::vector<at::Tensor> out = gm->forward({x, y});
  const std::vector<at::Tensor> expected = {
      at::add(x, y, 0.5),        at::sub(x, y, 2),          x * y, x / y, x + 1.5,
      at::rsub(x, 3),            x * -2.0,                  at::reciprocal(y) * 2.0,
      at::div(x, 0.3, "floor")};
  ASSERT_EQ(out.size(), expected.size());
  for (size_t k = 0; k < out.size(); ++k) EXPECT_TRUE(at::equal(out[k], expected[k])) << k;
}

TEST(OpKernels, LayerNormOnTheModulesOwnTensors) {
  at::manual_seed(7);
  torch::nn::LayerNorm ln(torch::nn::LayerNormOptions({4, 5}).eps(1e-4));
  {
    const at::NoGradGuard no_grad;
    ln->weight.uniform_(0.5, 1.5);
    ln->bias.uniform_(-1, 1);
  }
  ir::Graph g;
  g.add_tensor("ln.weight", ln->weight, true);
  g.add_tensor("ln.bias", ln->bias, true);
  g.set_outputs({add(g, Op::layer_norm, {g.add_input("x")},
                     {{"normalized_shape", L({4, 5})}, {"eps", F(1e-4)},
                      {"weight", S("ln.weight")}, {"bias", S("ln.bias")}},
                     "ln", "LayerNorm")});
  GraphModule gm(std::move(g));
  const at::Tensor x = at::randn({3, 4, 5});
  EXPECT_TRUE(at::equal(gm->forward(x), ln(x)));
  EXPECT_EQ(gm->named_parameters()["ln.weight"].unsafeGetTensorImpl(),
            ln->weight.unsafeGetTensorImpl());
}

TEST(OpKernels, DropoutOnlyInTraining) {
  at::manual_seed(8);
  const at::Tensor x = at::ones({1000});
  const at::Tensor trained = run_one(Op::dropout, x, {{"p", F(0.25)}}, true);
  const double zeros = (trained == 0).sum().item<double>();
  EXPECT_GT(zeros, 150);
  EXPECT_LT(zeros, 350);
  const at::Tensor kept = trained.masked_select(trained != 0);
  EXPECT_LT((kept - 1 / 0.75).abs().max().item<double>(), 1e-6);
  EXPECT_TRUE(at::equal(run_one(Op::dropout, x, {{"p", F(0.25)}}, false), x));

  // Channel-wise (Dropout2d): every channel is all zero or all 1 / (1 - p).
  const at::Tensor maps = at::ones({8, 16, 3, 3});
  const AttrList feature = {{"p", F(0.5)}, {"feature", B(true)}};
  const at::Tensor channels = run_one(Op::dropout, maps, feature, true).flatten(2);
  EXPECT_TRUE(at::equal(channels.amin(2), channels.amax(2)));
  EXPECT_GT((channels.amax(2) == 0).sum().item<int64_t>(), 0);
  EXPECT_GT((channels.amax(2) == 2).sum().item<int64_t>(), 0);
  EXPECT_TRUE(at::equal(run_one(Op::dropout, maps, feature, false), maps));
}

TEST(OpKernels, QuantizeDequantizeUsesItsFixedParameters) {
  at::manual_seed(9);
  const at::Tensor x = at::randn({64}).requires_grad_() * 3;
  const AttrList attrs = {{"scale", F(0.02)}, {"zero_point", I(128)},
                          {"quant_min", I(0)}, {"quant_max", I(255)}};
  const at::Tensor y = run_one(Op::quantize_dequantize, x, attrs);
  EXPECT_TRUE(at::equal(y, at::fake_quantize_per_tensor_affine(x, 0.02f, 128, 0, 255)));
  EXPECT_LE(y.max().item<float>(), 127 * 0.02f + 1e-6f);
}

TEST(OpKernels, FloatModuleCallsTheRegisteredCallable) {
  ir::Graph g;
  const ValueId x = g.add_input("x");
  const size_t n = add_node(g, Op::float_module, {x}, {{"module", S("head.kept")}}, "head.kept",
                            "Custom", "kept", 2);
  const ir::Node kept = g.nodes()[n];
  g.set_outputs({add(g, Op::cat, {kept.outputs[0], kept.outputs[1]}, {{"dim", I(0)}})});
  int calls = 0;
  g.add_float_module("head.kept", [&calls](const std::vector<at::Tensor>& in) {
    ++calls;
    return std::vector<at::Tensor>{in[0] * 2, in[0] + 1};
  });
  GraphModule gm(g);
  const at::Tensor input = at::randn({3});
  EXPECT_TRUE(at::equal(gm->forward(input), at::cat({input * 2, input + 1})));
  EXPECT_EQ(calls, 1);

  ir::Graph wrong = g;
  wrong.add_float_module("head.kept", [](const std::vector<at::Tensor>& in) {
    return std::vector<at::Tensor>{in[0]};
  });
  GraphModule bad(std::move(wrong));
  try {
    bad->forward(input);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("node 'kept' (float_module): the float module returned 1 "
                                         "tensors for 2 outputs"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace linquant
