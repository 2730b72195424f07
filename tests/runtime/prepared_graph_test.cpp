// Prepared graphs: fake_quantize nodes, weight quantizers and QAT Conv-BN (reference 4.3)
// against the formula written out here with ATen ops and separate FakeQuantize instances.
#include <gtest/gtest.h>

#include "graph_builder.h"
#include "linquant/quant/fake_quantize.h"
#include "linquant/runtime/graph_module.h"

namespace linquant {
namespace {

using namespace linquant::testing;

constexpr double kEps = 1e-3;
constexpr double kMomentum = 0.2;

FakeQuantizeOptions weight_options(int64_t axis) {
  FakeQuantizeOptions o;
  o.range = QuantRange::qint8();
  o.ch_axis = axis;
  return o;
}

FakeQuantizeOptions activation_options() { return FakeQuantizeOptions{}; }

// One weighted op with fused BatchNorm between an input and an output fake-quantizer:
//   x -> fake_quantize(in) -> op(weight_quantizer, bn) [-> relu -> fake_quantize(out)]
// The graph runs on its own tensors; the reference keeps copies and its own quantizers.
struct FusedCase {
  Op op;
  int64_t groups;
  int64_t channels;  // output channels
  at::Tensor w, b, gamma, beta, mean, var, count;
  at::Tensor rw, rb, rgamma, rbeta, rmean, rvar;
  int64_t rcount = 0;
  FakeQuantize ref_in{activation_options()};
  FakeQuantize ref_w;
  FakeQuantize ref_out{activation_options()};
  bool with_output;

  FusedCase(Op op_, const at::Tensor& weight, int64_t channels_, int64_t groups_, bool output)
      : op(op_), groups(groups_), channels(channels_),
        ref_w(weight_options(op_ == Op::conv_transpose ? 1 : 0)), with_output(output) {
    w = copy_of(weight, true);
    b = copy_of(at::randn({channels}) * 0.1, true);
    gamma = copy_of(at::rand({channels}) + 0.5, true);
    beta = copy_of(at::randn({channels}), true);
    mean = at::randn({channels}) * 0.2;
    var = at::rand({channels}) + 0.5;
    count = at::zeros({}, at::kLong);
    rw = copy_of(w, true), rb = copy_of(b, true), rgamma = copy_of(gamma, true);
    rbeta = copy_of(beta, true), rmean = mean.clone(), rvar = var.clone();
  }

  at::Tensor apply(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) const {
    if (op == Op::linear) return at::linear(x, weight, bias);
    if (op == Op::conv) return at::conv2d(x, weight, bias, 1, 1);
    return at::conv_transpose2d(x, weight, bias, 2, 1, 0, groups, 1);
  }

  ir::Graph graph() const {
    ir::Graph g;
    ValueId v = g.add_input("x");
    g.add_quantizer("activation_post_process_0", {activation_options(), false});
    v = add(g, Op::fake_quantize, {v}, {{"quantizer", S("activation_post_process_0")}});
    if (op == Op::linear) {
      v = add_linear(g, v, "block.op", w, b);
    } else {
      v = add_conv(g, v, "block.op", w, b, op == Op::conv ? std::vector<int64_t>{1, 1}
                                                            : std::vector<int64_t>{2, 2},
                   {1, 1}, groups, op == Op::conv_transpose);
    }
    g.add_quantizer("block.op.weight_fake_quant",
                    {weight_options(op == Op::conv_transpose ? 1 : 0), true});
    last_node(g).attrs.set("weight_quantizer", std::string("block.op.weight_fake_quant"));
    add_bn_tensors(g, "block.bn", gamma, beta, mean, var, count);
    fuse_bn(g, "block.op", "block.bn", kEps, kMomentum);
    if (with_output) {
      v = add(g, Op::relu, {v}, {{"fused_with", S("block.op")}});
      g.add_quantizer("activation_post_process_1", {activation_options(), false});
      v = add(g, Op::fake_quantize, {v}, {{"quantizer", S("activation_post_process_1")}});
    }
    g.set_outputs({v});
    return g;
  }

  // W * factor with the factor picked per weight element from its output channel by index,
  // independently of the runtime's reshapes.
  at::Tensor scaled_weight(const at::Tensor& factor) const {
    std::vector<int64_t> channel_of(static_cast<size_t>(rw.size(0) * rw.size(1)));
    const int64_t in_per_group = rw.size(0) / groups;
    for (int64_t i = 0; i < rw.size(0); ++i) {
      for (int64_t j = 0; j < rw.size(1); ++j) {
        const int64_t out = op == Op::conv_transpose ? (i / in_per_group) * rw.size(1) + j : i;
        channel_of[static_cast<size_t>(i * rw.size(1) + j)] = out;
      }
    }
    std::vector<int64_t> shape = {rw.size(0), rw.size(1)};
    for (int64_t d = 2; d < rw.dim(); ++d) shape.push_back(1);
    const at::Tensor index = at::tensor(channel_of, at::kLong);
    return rw * factor.index_select(0, index).reshape(shape);
  }

  // Reference 4.3 written out.
  at::Tensor reference(const at::Tensor& x, bool batch_stats) {
    const at::Tensor xq = ref_in(x);
    const at::Tensor running_std = at::sqrt(rvar + kEps);
    const at::Tensor factor = rgamma / running_std;
    const at::Tensor wq = ref_w(scaled_weight(factor));
    at::Tensor y = apply(xq, wq, at::zeros({channels}));
    std::vector<int64_t> per_channel(static_cast<size_t>(y.dim()), 1);
    per_channel[1] = channels;
    y = y / factor.reshape(per_channel) + rb.reshape(per_channel);
    if (batch_stats) ++rcount;
    y = at::batch_norm(y, rgamma, rbeta, rmean, rvar, batch_stats, kMomentum, kEps, true);
    return with_output ? ref_out(at::relu(y)) : y;
  }

  at::Tensor input(int64_t batch) const {
    if (op == Op::linear) return at::randn({batch, w.size(1)});
    return at::randn({batch, op == Op::conv ? w.size(1) : w.size(0), 5, 5});
  }
};

void expect_grads_equal(const at::Tensor& a, const at::Tensor& b, const char* what) {
  ASSERT_TRUE(a.grad().defined()) << what;
  ASSERT_TRUE(b.grad().defined()) << what;
  // Equal up to the order autograd sums the two paths through gamma (scale factor and BN).
  EXPECT_TRUE(at::allclose(a.grad(), b.grad(), 1e-6, 1e-7)) << what;
  EXPECT_GT(a.grad().abs().sum().item<double>(), 0.0) << what;
}

void expect_matches_reference_while_training(FusedCase& c, GraphModule& gm) {
  for (int step = 0; step < 3; ++step) {
    const at::Tensor x = c.input(6) * (step + 1);
    const at::Tensor y = gm->forward(x);
    const at::Tensor expected = c.reference(x, true);
    EXPECT_TRUE(at::equal(y, expected)) << "step " << step << " max diff "
                                        << (y - expected).abs().max().item<double>();
    EXPECT_TRUE(at::equal(c.mean, c.rmean));
    EXPECT_TRUE(at::equal(c.var, c.rvar));
    EXPECT_EQ(c.count.item<int64_t>(), c.rcount);
    EXPECT_TRUE(at::equal(gm->quantizer("block.op.weight_fake_quant")->scale, c.ref_w->scale));
    EXPECT_TRUE(at::equal(gm->quantizer("activation_post_process_0")->scale, c.ref_in->scale));
    const at::Tensor weights = at::arange(y.numel(), at::kFloat).reshape(y.sizes()) / y.numel();
    (y * weights).sum().backward();
    (expected * weights).sum().backward();
  }
  expect_grads_equal(c.w, c.rw, "weight");
  expect_grads_equal(c.b, c.rb, "bias");
  expect_grads_equal(c.gamma, c.rgamma, "bn weight");
  expect_grads_equal(c.beta, c.rbeta, "bn bias");
}

TEST(PreparedGraph, ConvBnReluMatchesTheQatFormulaWithBatchStatistics) {
  at::manual_seed(10);
  FusedCase c(Op::conv, at::randn({8, 3, 3, 3}) * 0.3, 8, 1, true);
  GraphModule gm(c.graph());
  gm->train();
  EXPECT_FALSE(gm->is_bn_frozen("block.op"));
  expect_matches_reference_while_training(c, gm);
  EXPECT_EQ(gm->quantizer("block.op.weight_fake_quant")->scale.numel(), 8);
  const Observer out_observer = gm->quantizer("activation_post_process_1")->activation_post_process;
  EXPECT_TRUE(at::equal(out_observer->min_val, c.ref_out->activation_post_process->min_val));
}

TEST(PreparedGraph, GroupedConvTransposeBnScalesWeightAxisOne) {
  at::manual_seed(11);
  // Weight [in=4, out/groups=3, 3, 3], groups 2: six output channels.
  FusedCase c(Op::conv_transpose, at::randn({4, 3, 3, 3}) * 0.3, 6, 2, true);
  GraphModule gm(c.graph());
  expect_matches_reference_while_training(c, gm);
  EXPECT_EQ(gm->quantizer("block.op.weight_fake_quant")->scale.numel(), 3);
}

TEST(PreparedGraph, LinearBnMatchesTheQatFormula) {
  at::manual_seed(12);
  FusedCase c(Op::linear, at::randn({5, 7}) * 0.3, 5, 1, true);
  GraphModule gm(c.graph());
  expect_matches_reference_while_training(c, gm);
}

TEST(PreparedGraph, FrozenOrEvalConvBnEqualsTheFoldedConv) {
  at::manual_seed(13);
  FusedCase c(Op::conv, at::randn({8, 3, 3, 3}) * 0.3, 8, 1, false);
  GraphModule gm(c.graph());
  for (int step = 0; step < 2; ++step) gm->forward(c.input(4));
  for (auto& [name, quantizer] : gm->quantizers()) quantizer->disable_observer();

  const at::Tensor x = c.input(3);
  gm->eval();
  const at::Tensor unfrozen_eval = gm->forward(x);
  gm->train();
  gm->freeze_bn_stats();
  EXPECT_TRUE(gm->is_bn_frozen("block.op"));
  const at::Tensor mean = c.mean.clone();
  const at::Tensor var = c.var.clone();
  const at::Tensor frozen_train = gm->forward(x);
  EXPECT_TRUE(at::equal(c.mean, mean));
  EXPECT_TRUE(at::equal(c.var, var));
  EXPECT_EQ(c.count.item<int64_t>(), 2);
  gm->eval();
  const at::Tensor frozen_eval = gm->forward(x);
  // Training mode keeps torch's unfolded QAT arithmetic; eval() runs the folded form.
  EXPECT_TRUE(at::allclose(frozen_train, frozen_eval, 1e-5, 1e-5));
  EXPECT_TRUE(at::equal(unfrozen_eval, frozen_eval));

  // W' = W * gamma / sigma and b' = (b - mean) * gamma / sigma + beta (reference 4.3).
  const at::NoGradGuard no_grad;
  const at::Tensor factor = c.gamma / at::sqrt(c.var + kEps);
  const at::Tensor folded_w = c.w * factor.reshape({-1, 1, 1, 1});
  const at::Tensor folded_b = (c.b - c.mean) * factor + c.beta;
  const at::Tensor xq = gm->quantizer("activation_post_process_0")(x);
  const at::Tensor wq = gm->quantizer("block.op.weight_fake_quant")(folded_w);
  const at::Tensor expected = at::conv2d(xq, wq, folded_b, 1, 1);
  EXPECT_TRUE(at::allclose(frozen_eval, expected, 0.0, 1e-5))
      << (frozen_eval - expected).abs().max().item<double>();
}

TEST(PreparedGraph, FloatWeightsUseTheSameFusedMath) {
  at::manual_seed(14);
  FusedCase c(Op::conv, at::randn({4, 2, 3, 3}), 4, 1, false);
  ir::Graph g = c.graph();
  g.nodes()[*g.find_node("block.op")].attrs.erase("weight_quantizer");
  GraphModule gm(std::move(g));
  for (auto& [name, quantizer] : gm->quantizers()) quantizer->disable_fake_quant();
  c.ref_w->disable_fake_quant();
  c.ref_in->disable_fake_quant();
  const at::Tensor x = c.input(3);
  EXPECT_TRUE(at::equal(gm->forward(x), c.reference(x, true)));
}

TEST(PreparedGraph, FusedBatchNormWithoutAffineParametersHasGammaOne) {
  at::manual_seed(15);
  const at::Tensor w = at::randn({4, 2, 3, 3}).requires_grad_();
  const at::Tensor mean = at::randn({4}) * 0.1;
  const at::Tensor var = at::rand({4}) + 0.5;
  const at::Tensor ref_mean = mean.clone();
  const at::Tensor ref_var = var.clone();
  ir::Graph g;
  g.set_outputs({add_conv(g, g.add_input("x"), "conv", w, at::Tensor(), {1, 1}, {1, 1})});
  add_bn_tensors(g, "bn", at::Tensor(), at::Tensor(), mean, var, at::zeros({}, at::kLong));
  fuse_bn(g, "conv", "bn", kEps, kMomentum, /*affine=*/false);
  GraphModule gm(std::move(g));

  const at::Tensor x = at::randn({3, 2, 5, 5});
  const at::Tensor inv_std = 1 / at::sqrt(ref_var + kEps);
  at::Tensor expected = at::conv2d(x, w * inv_std.reshape({-1, 1, 1, 1}), at::zeros({4}), 1, 1);
  expected = expected / inv_std.reshape({1, -1, 1, 1});
  expected = at::batch_norm(expected, {}, {}, ref_mean, ref_var, true, kMomentum, kEps, true);
  EXPECT_TRUE(at::equal(gm->forward(x), expected));
  EXPECT_TRUE(at::equal(mean, ref_mean));
  EXPECT_TRUE(at::equal(var, ref_var));
}

ir::Graph shared_quantizer_graph() {
  ir::Graph g;
  g.add_quantizer("activation_post_process_0", {activation_options(), false});
  ValueId v = add(g, Op::fake_quantize, {g.add_input("x")},
                  {{"quantizer", S("activation_post_process_0")}});
  v = add(g, Op::mul, {v}, {{"scalar", F(3.0)}});
  v = add(g, Op::fake_quantize, {v}, {{"quantizer", S("activation_post_process_0")}});
  g.set_outputs({v});
  return g;
}

// PyTorch's behaviour: every call site updates the shared observer.
TEST(PreparedGraph, SharedQuantizerPerCallLikePyTorch) {
  GraphModule gm(shared_quantizer_graph());
  gm->set_shared_observer_update(SharedObserverUpdate::per_call);
  ASSERT_EQ(gm->quantizers().size(), 1u);

  FakeQuantize reference(activation_options());
  const at::Tensor x = at::linspace(-1, 2, 50);
  const at::Tensor expected = reference(reference(x) * 3.0);
  EXPECT_TRUE(at::equal(gm->forward(x), expected));
  const Observer observer = gm->quantizer("activation_post_process_0")->activation_post_process;
  // The second call moved the range 1% of the way from [-1, 2] towards [-3, 6].
  EXPECT_TRUE(at::equal(observer->min_val, reference->activation_post_process->min_val));
  EXPECT_TRUE(at::equal(observer->max_val, reference->activation_post_process->max_val));
  EXPECT_NEAR(observer->max_val.item<float>(), 2.04f, 1e-3);
}

// linquant's default: one update per forward from the union of the call sites' inputs.
TEST(PreparedGraph, SharedQuantizerUpdatesOncePerForwardFromTheUnion) {
  GraphModule gm(shared_quantizer_graph());
  const at::Tensor x = at::linspace(-1, 2, 50);
  const at::Tensor y = gm->forward(x);
  // First call: the range of x alone; second call: the union of x and 3 * fq(x).
  FakeQuantize first(activation_options());
  const at::Tensor h = first(x) * 3.0;
  const at::Tensor lo = at::minimum(x.min(), h.min());
  const at::Tensor hi = at::maximum(x.max(), h.max());
  const Observer observer = gm->quantizer("activation_post_process_0")->activation_post_process;
  EXPECT_TRUE(at::equal(observer->min_val, lo));
  EXPECT_TRUE(at::equal(observer->max_val, hi));
  FakeQuantize second(activation_options());
  second->activation_post_process->forward(at::stack({lo, hi}));
  second->disable_observer();
  second->scale.copy_(second->calculate_qparams().first);
  second->zero_point.copy_(second->calculate_qparams().second);
  EXPECT_TRUE(at::equal(y, second(h)));
}

}  // namespace
}  // namespace linquant
