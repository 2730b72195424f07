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
