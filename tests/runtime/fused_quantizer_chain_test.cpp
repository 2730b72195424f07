// The interpreter runs add -> quantizer, add -> ReLU -> quantizer, ReLU -> quantizer and
// hardswish -> quantizer as one fused call when nothing else reads the intermediate values; this
// checks that it does (the output's autograd node is the fused function) and that the graph's
// outputs, both inputs' gradients and the quantizers' state equal the same ops run one by one with
// ATen and separate FakeQuantize modules, bit for bit; and that a sum with a second reader is not
// fused.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <string>
#include <vector>

#include "graph_builder.h"
#include "linquant/runtime/graph_module.h"

namespace linquant {
namespace {

using namespace linquant::testing;

std::string grad_fn_name(const at::Tensor& t) {
  return t.grad_fn() ? t.grad_fn()->name() : std::string("none");
}

ValueId quantize(ir::Graph& g, ValueId v, const std::string& name) {
  g.add_quantizer(name, {FakeQuantizeOptions{}, false});
  return add(g, Op::fake_quantize, {v}, {{"quantizer", S(name)}});
}

// x, s -> q1 = fq(relu(x + s)); q2 = fq(q1 + x); q3 = fq(relu6(x * 2)); shared = x + q2 is
// read by an output and by fq(relu(shared)) = q4, so it is not fused.
ir::Graph residual_graph() {
  ir::Graph g;
  const ValueId x = g.add_input("x");
  const ValueId s = g.add_input("s");
  const ValueId q1 = quantize(g, add(g, Op::relu, {add(g, Op::add, {x, s})}), "q1");
  const ValueId q2 = quantize(g, add(g, Op::add, {q1, x}, {{"alpha", I(1)}}), "q2");
  const ValueId doubled = add(g, Op::mul, {x}, {{"scalar", F(2.0)}});
  const ValueId q3 = quantize(g, add(g, Op::relu6, {doubled}), "q3");
  const ValueId shared = add(g, Op::add, {x, q2});
  const ValueId q4 = quantize(g, add(g, Op::relu, {shared}), "q4");
  g.set_outputs({q1, q2, q3, shared, q4});
  return g;
}

TEST(FusedQuantizerChain, MatchesTheOpsRunOneByOne) {
  GraphModule gm(residual_graph());
  gm->train();
  FakeQuantize r1(FakeQuantizeOptions{}), r2(FakeQuantizeOptions{});
  FakeQuantize r3(FakeQuantizeOptions{}), r4(FakeQuantizeOptions{});
  for (int step = 0; step < 3; ++step) {
    at::manual_seed(step);
    const at::Tensor x0 = at::randn({4, 3, 17, 19}) * (step + 1);
    const at::Tensor s0 = at::randn({4, 3, 17, 19});
    const at::Tensor x1 = x0.clone().requires_grad_(true), s1 = s0.clone().requires_grad_(true);
    const at::Tensor x2 = x0.clone().requires_grad_(true), s2 = s0.clone().requires_grad_(true);

    const std::vector<at::Tensor> got = gm->forward(std::vector<at::Tensor>{x1, s1});
    const at::Tensor q1 = r1(at::relu(at::add(x2, s2)));
    const at::Tensor q2 = r2(at::add(q1, x2));
    const at::Tensor q3 = r3(at::hardtanh(x2 * 2.0, 0.0, 6.0));
    const at::Tensor shared = at::add(x2, q2);
    const at::Tensor q4 = r4(at::relu(shared));
    const std::vector<at::Tensor> want = {q1, q2, q3, shared, q4};

    ASSERT_EQ(got.size(), want.size());
    EXPECT_NE(grad_fn_name(got[0]).find("AddFakeQuantize"), std::string::npos)
        << grad_fn_name(got[0]);
    EXPECT_NE(grad_fn_name(got[1]).find("AddFakeQuantize"), std::string::npos)
        << grad_fn_name(got[1]);
    EXPECT_NE(grad_fn_name(got[2]).find("ReluFakeQuantize"), std::string::npos)
        << grad_fn_name(got[2]);
    EXPECT_EQ(grad_fn_name(got[3]).find("FakeQuantize"), std::string::npos) << grad_fn_name(got[3]);
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_TRUE(at::equal(got[k], want[k])) << "output " << k << " step " << step;
    }
    const at::Tensor grad = at::randn(x0.sizes());
    std::vector<at::Tensor> grads(got.size(), grad);
    const auto g1 = torch::autograd::grad(got, {x1, s1}, grads);
    const auto g2 = torch::autograd::grad(want, {x2, s2}, grads);
    EXPECT_TRUE(at::equal(g1[0], g2[0])) << "gradient of x, step " << step;
    EXPECT_TRUE(at::equal(g1[1], g2[1])) << "gradient of s, step " << step;
    const FakeQuantize refs[] = {r1, r2, r3, r4};
    for (int k = 0; k < 4; ++k) {
      const FakeQuantize q = gm->quantizer("q" + std::to_string(k + 1));
      EXPECT_TRUE(at::equal(q->scale, refs[k]->scale)) << "q" << k + 1 << " step " << step;
      EXPECT_TRUE(at::equal(q->zero_point, refs[k]->zero_point)) << "q" << k + 1;
      EXPECT_TRUE(
          at::equal(q->activation_post_process->min_val, refs[k]->activation_post_process->min_val))
          << "q" << k + 1;
      EXPECT_TRUE(
          at::equal(q->activation_post_process->max_val, refs[k]->activation_post_process->max_val))
          << "q" << k + 1;
    }
  }
}

// x -> q1 = fq(hardswish(x)); h = hardswish(x * 2) is read by an output and by q2 = fq(h), so
// that one is not fused.
TEST(FusedQuantizerChain, HardswishRunsFusedUnlessItsOutputIsReadTwice) {
  ir::Graph g;
  const ValueId x = g.add_input("x");
  const ValueId q1 = quantize(g, add(g, Op::hardswish, {x}), "q1");
  const ValueId h = add(g, Op::hardswish, {add(g, Op::mul, {x}, {{"scalar", F(2.0)}})});
  const ValueId q2 = quantize(g, h, "q2");
  g.set_outputs({q1, h, q2});
  GraphModule gm(std::move(g));
  gm->train();
  FakeQuantize r1(FakeQuantizeOptions{}), r2(FakeQuantizeOptions{});
  for (int step = 0; step < 2; ++step) {
    at::manual_seed(step);
    at::Tensor x0 = at::randn({4, 3, 17, 19}) * 3;
    x0.view({-1}).index_put_({at::arange(0, x0.numel(), 7)}, 3.0);  // hardswish's kink
    const at::Tensor x1 = x0.clone().requires_grad_(true);
    const at::Tensor x2 = x0.clone().requires_grad_(true);
    const std::vector<at::Tensor> got = gm->forward(std::vector<at::Tensor>{x1});
    const at::Tensor want_h = at::hardswish(x2 * 2.0);
    const std::vector<at::Tensor> want = {r1(at::hardswish(x2)), want_h, r2(want_h)};
    EXPECT_NE(grad_fn_name(got[0]).find("HardswishFakeQuantize"), std::string::npos)
        << grad_fn_name(got[0]);
    EXPECT_EQ(grad_fn_name(got[2]).find("Hardswish"), std::string::npos) << grad_fn_name(got[2]);
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_TRUE(at::equal(got[k], want[k])) << "output " << k << " step " << step;
    }
    const at::Tensor grad = at::randn(x0.sizes());
    const std::vector<at::Tensor> grads(got.size(), grad);
    const at::Tensor g1 = torch::autograd::grad(got, {x1}, grads)[0];
    const at::Tensor g2 = torch::autograd::grad(want, {x2}, grads)[0];
    EXPECT_TRUE(at::equal(g1, g2)) << "gradient, step " << step;
    EXPECT_TRUE(at::equal(gm->quantizer("q1")->scale, r1->scale)) << step;
    EXPECT_TRUE(at::equal(gm->quantizer("q2")->scale, r2->scale)) << step;
  }
}

// The parameters of one conv with a fused BatchNorm; each graph gets its own copies.
struct ConvBnTensors {
  at::Tensor weight, bn_weight, bn_bias, running_mean, running_var, batches;
};

ConvBnTensors conv_bn_tensors(const ConvBnTensors& from) {
  return {copy_of(from.weight, true), copy_of(from.bn_weight, true), copy_of(from.bn_bias, true),
          from.running_mean.clone(),  from.running_var.clone(),      from.batches.clone()};
}

// x -> conv with fused BatchNorm (no conv bias) -> q; with also_output the conv's result is a
// graph output too, so it has two readers and the chain is not fused.
GraphModule conv_bn_quantized(const ConvBnTensors& t, bool also_output) {
  ir::Graph g;
  const ValueId x = g.add_input("x");
  const ValueId y = add_conv(g, x, "block", t.weight, at::Tensor(), {1, 1}, {1, 1});
  add_bn_tensors(g, "block.bn", t.bn_weight, t.bn_bias, t.running_mean, t.running_var, t.batches);
  fuse_bn(g, "block", "block.bn", 1e-5, 0.1);
  const ValueId q = quantize(g, y, "q");
  g.set_outputs(also_output ? std::vector<ValueId>{q, y} : std::vector<ValueId>{q});
  GraphModule gm(std::move(g));
  gm->train();
  return gm;
}

// After freeze_bn_stats, a conv's frozen BatchNorm and the quantizer after it run as one node;
// outputs, gradients of the input and of every parameter, and the quantizer's state equal the
// same graph with the chain broken, with the observer on and then off.
TEST(FusedQuantizerChain, FrozenConvBatchNormRunsFusedWithItsQuantizer) {
  at::manual_seed(3);
  const ConvBnTensors init{
      at::randn({6, 3, 3, 3}) * 0.3, at::rand({6}) + 0.5, at::randn({6}),
      at::randn({6}) * 0.1,          at::rand({6}) + 0.5, at::zeros({}, at::kLong)};
  const ConvBnTensors a = conv_bn_tensors(init), b = conv_bn_tensors(init);
  GraphModule fused = conv_bn_quantized(a, false), composite = conv_bn_quantized(b, true);
  for (int step = 0; step < 4; ++step) {
    if (step == 1) {
      fused->freeze_bn_stats();
      composite->freeze_bn_stats();
    }
    if (step == 3) {
      fused->quantizer("q")->disable_observer();
      composite->quantizer("q")->disable_observer();
    }
    at::manual_seed(10 + step);
    const at::Tensor x0 = at::randn({4, 3, 12, 13});
    const at::Tensor x1 = x0.clone().requires_grad_(true), x2 = x0.clone().requires_grad_(true);
    const at::Tensor got = fused->forward(std::vector<at::Tensor>{x1})[0];
    const at::Tensor want = composite->forward(std::vector<at::Tensor>{x2})[0];
    const bool frozen = step >= 1;
    EXPECT_EQ(grad_fn_name(got).find("FrozenDividedBatchNormQuantize") != std::string::npos, frozen)
        << grad_fn_name(got) << ", step " << step;
    EXPECT_TRUE(at::equal(got, want)) << "output, step " << step;
    const at::Tensor grad = at::randn(got.sizes());
    got.backward(grad);
    want.backward(grad);
    EXPECT_TRUE(at::equal(x1.grad(), x2.grad())) << "gradient of x, step " << step;
    EXPECT_TRUE(at::equal(a.weight.grad(), b.weight.grad())) << "conv weight, step " << step;
    EXPECT_TRUE(at::equal(a.bn_weight.grad(), b.bn_weight.grad())) << "bn weight, step " << step;
    EXPECT_TRUE(at::equal(a.bn_bias.grad(), b.bn_bias.grad())) << "bn bias, step " << step;
    EXPECT_TRUE(at::equal(a.running_mean, b.running_mean)) << "running mean, step " << step;
    EXPECT_TRUE(at::equal(a.running_var, b.running_var)) << "running var, step " << step;
    const FakeQuantize qa = fused->quantizer("q"), qb = composite->quantizer("q");
    EXPECT_TRUE(at::equal(qa->scale, qb->scale)) << "scale, step " << step;
    EXPECT_TRUE(at::equal(qa->zero_point, qb->zero_point)) << "zero point, step " << step;
    EXPECT_TRUE(
        at::equal(qa->activation_post_process->min_val, qb->activation_post_process->min_val))
        << "observer min, step " << step;
  }
}

TEST(FusedQuantizerChain, BroadcastAddRunsUnfused) {
  ir::Graph g;
  const ValueId x = g.add_input("x");
  const ValueId bias = g.add_input("bias");
  g.set_outputs({quantize(g, add(g, Op::add, {x, bias}), "q")});
  GraphModule gm(std::move(g));
  gm->train();
  FakeQuantize reference(FakeQuantizeOptions{});
  const at::Tensor x0 = at::randn({2, 5, 7});
  const at::Tensor b0 = at::randn({5, 1});
  const at::Tensor y = gm->forward(std::vector<at::Tensor>{x0, b0})[0];
  EXPECT_TRUE(at::equal(y, reference(at::add(x0, b0))));
}

}  // namespace
}  // namespace linquant
