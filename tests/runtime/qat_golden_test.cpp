// Replays qat_golden.pt, written at test time by PyTorch 1.13's own QAT ConvBn2d and
// LinearBn1d on this machine (torch_reference/make_qat_golden.py documents the format; ctest
// runs it as a fixture because convolution results depend on the CPU's kernels), through
// GraphModule: outputs, BatchNorm statistics, weight scales and gradients must agree bit for
// bit, before and after freezing.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <map>

#include "../support/pickled_cases.h"
#include "graph_builder.h"
#include "linquant/runtime/graph_module.h"

namespace linquant {
namespace {

using namespace linquant::testing;
using Case = testing::PickledCase;

std::map<std::string, Case> load_cases() {
  return testing::load_pickled_cases("LINQUANT_QAT_GOLDEN");
}

// The model's tensors, as a frontend would hand them over.
struct Model {
  at::Tensor weight, bias, bn_weight, bn_bias, running_mean, running_var, num_batches;
};

ir::Graph graph_for(const Case& c, const Model& m) {
  const at::Tensor config = c.at("config");
  const int64_t kernel = config[2].item<int64_t>();
  const int64_t padding = config[3].item<int64_t>();
  const int64_t groups = config[4].item<int64_t>();
  ir::Graph g;
  const ValueId x = g.add_input("x");
  const ValueId y = kernel == 0 ? add_linear(g, x, "block", m.weight, m.bias)
                                : add_conv(g, x, "block", m.weight, m.bias, {1, 1},
                                           {padding, padding}, groups);
  FakeQuantizeOptions weights;
  weights.range = QuantRange::qint8();
  weights.ch_axis = 0;
  g.add_quantizer("block.weight_fake_quant", {weights, true});
  last_node(g).attrs.set("weight_quantizer", std::string("block.weight_fake_quant"));
  add_bn_tensors(g, "block.bn", m.bn_weight, m.bn_bias, m.running_mean, m.running_var,
                 m.num_batches);
  fuse_bn(g, "block", "block.bn", 1e-3, 0.2);
  g.set_outputs({y});
  return g;
}

void expect_equal(const at::Tensor& actual, const at::Tensor& expected, const std::string& what) {
  ASSERT_TRUE(actual.defined()) << what;
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  EXPECT_TRUE(at::equal(actual.to(expected.scalar_type()), expected))
      << what << ": max difference "
      << (actual.to(at::kDouble) - expected.to(at::kDouble)).abs().max().item<double>();
}

TEST(QatGolden, FileHasEveryCase) {
  const auto cases = load_cases();
  ASSERT_FALSE(cases.empty())
      << "cannot read the file LINQUANT_QAT_GOLDEN names; ctest makes it with "
      << "tests/runtime/torch_reference/make_qat_golden.py (fixture runtime.make_qat_golden)";
  for (const char* name : {"conv_bn", "grouped_conv_bn_without_bias", "linear_bn"}) {
    EXPECT_TRUE(cases.count(name)) << name;
  }
}

// The reference was written with one intra-op thread; reductions split over other thread
// counts round differently.
class OneThread {
 public:
  OneThread() : previous_(at::get_num_threads()) { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(previous_); }

 private:
  int previous_;
};

TEST(QatGolden, GraphModuleMatchesPyTorchQatModulesBitForBit) {
  const OneThread one_thread;
  for (const auto& [name, c] : load_cases()) {
    SCOPED_TRACE(name);
    const bool has_bias = c.count("bias") != 0;
    Model m;
    m.weight = copy_of(c.at("weight"), true);
    m.bias = has_bias ? copy_of(c.at("bias"), true) : at::Tensor();
    m.bn_weight = copy_of(c.at("bn_weight"), true);
    m.bn_bias = copy_of(c.at("bn_bias"), true);
    m.running_mean = c.at("running_mean").clone();
    m.running_var = c.at("running_var").clone();
    m.num_batches = at::zeros({}, at::kLong);
    GraphModule gm(graph_for(c, m));
    gm->train();

    for (int step = 0; step < 3; ++step) {
      const at::Tensor y = gm->forward(c.at("x" + std::to_string(step)));
      expect_equal(y, c.at("y" + std::to_string(step)), "y" + std::to_string(step));
      const at::Tensor ramp = at::arange(y.numel(), at::kFloat).reshape(y.sizes()) / y.numel();
      (y * ramp).sum().backward();
    }
    expect_equal(m.running_mean, c.at("end_running_mean"), "running_mean");
    expect_equal(m.running_var, c.at("end_running_var"), "running_var");
    expect_equal(m.num_batches, c.at("end_num_batches_tracked"), "num_batches_tracked");
    expect_equal(gm->quantizer("block.weight_fake_quant")->scale, c.at("end_scale"), "scale");
    expect_equal(m.weight.grad(), c.at("grad_weight"), "grad weight");
    if (has_bias) expect_equal(m.bias.grad(), c.at("grad_bias"), "grad bias");
    expect_equal(m.bn_weight.grad(), c.at("grad_bn_weight"), "grad bn weight");
    expect_equal(m.bn_bias.grad(), c.at("grad_bn_bias"), "grad bn bias");

    gm->freeze_bn_stats();
    expect_equal(gm->forward(c.at("x_frozen")), c.at("y_frozen"), "frozen, training");
    // eval() runs the folded conv(x, fq(W')) + b' (the form finalize() exports), so it
    // agrees with torch's unfolded eval to rounding, not bit for bit.
    gm->eval();
    const at::Tensor y_eval = gm->forward(c.at("x_frozen"));
    EXPECT_TRUE(at::allclose(y_eval, c.at("y_eval"), 1e-5, 1e-5)) << "eval";
  }
}

}  // namespace
}  // namespace linquant
