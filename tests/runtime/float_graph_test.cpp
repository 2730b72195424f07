// Float graphs against the same network written with torch::nn modules: outputs, parameter
// gradients and BatchNorm running statistics must be identical, in train and in eval.
#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include "graph_builder.h"
#include "linquant/runtime/graph_module.h"

namespace linquant {
namespace {

using namespace linquant::testing;

// Conv2d(1,12,3,pad 1) -> ReLU -> MaxPool2d(2,2) -> Flatten -> Linear(2352,10) -> LogSoftmax:
// the network of coremltools' LinearQuantizer tutorial, as a Sequential and as a graph on the
// Sequential's own tensors.
struct TutorialNet {
  torch::nn::Conv2d conv{torch::nn::Conv2dOptions(1, 12, 3).padding(1)};
  torch::nn::Linear fc{2352, 10};
  torch::nn::Sequential seq{conv,
                            torch::nn::ReLU(),
                            torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)),
                            torch::nn::Flatten(),
                            fc,
                            torch::nn::LogSoftmax(1)};

  ir::Graph graph() const {
    ir::Graph g;
    ValueId v = g.add_input("x");
    v = add_conv(g, v, "0", conv, {1, 1}, {1, 1});
    v = add(g, Op::relu, {v}, {}, "1", "ReLU");
    v = add(g, Op::max_pool, {v},
            {{"kernel_size", L({2, 2})}, {"stride", L({2, 2})}, {"padding", L({0, 0})},
             {"dilation", L({1, 1})}, {"ceil_mode", B(false)}},
            "2", "MaxPool2d");
    v = add(g, Op::flatten, {v}, {{"start_dim", I(1)}, {"end_dim", I(-1)}}, "3", "Flatten");
    v = add_linear(g, v, "4", fc->weight, fc->bias);
    v = add(g, Op::log_softmax, {v}, {{"dim", I(1)}}, "5", "LogSoftmax");
    g.set_outputs({v});
    return g;
  }
};

std::vector<at::Tensor> grads_of(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> grads;
  for (const at::Tensor& p : params) grads.push_back(p.grad().clone());
  return grads;
}

void zero_grads(const std::vector<at::Tensor>& params) {
  for (const at::Tensor& p : params) p.mutable_grad().reset();
}

void expect_same_forward_and_grads(TutorialNet& net, GraphModule& gm, const at::Tensor& x) {
  const std::vector<at::Tensor> params = net.seq->parameters();
  const at::Tensor expected = net.seq->forward(x);
  expected.exp().mul(at::arange(10, at::kFloat)).sum().backward();
  const std::vector<at::Tensor> expected_grads = grads_of(params);
  zero_grads(params);

  const at::Tensor actual = gm->forward(x);
  actual.exp().mul(at::arange(10, at::kFloat)).sum().backward();
  EXPECT_TRUE(at::equal(actual, expected));
  const std::vector<at::Tensor> actual_grads = grads_of(params);
  ASSERT_EQ(actual_grads.size(), 4u);
  for (size_t k = 0; k < params.size(); ++k) {
    EXPECT_TRUE(at::equal(actual_grads[k], expected_grads[k])) << "parameter " << k;
  }
  zero_grads(params);
}

TEST(FloatGraph, TutorialNetMatchesSequentialInTrainAndEval) {
  at::manual_seed(1);
  TutorialNet net;
  GraphModule gm(net.graph());
  const at::Tensor x = at::randn({4, 1, 28, 28});

  net.seq->train();
  gm->train();
  expect_same_forward_and_grads(net, gm, x);

  net.seq->eval();
  gm->eval();
  expect_same_forward_and_grads(net, gm, x);
  EXPECT_EQ(gm->parameters().size(), 4u);
}

// Conv -> BatchNorm -> ReLU with BatchNorm as its own node. The graph runs on copies of the
// reference's tensors so that both sets of running statistics can be compared.
struct ConvBnRelu {
  torch::nn::Conv2d conv{torch::nn::Conv2dOptions(3, 8, 3).padding(1)};
  torch::nn::BatchNorm2d bn{torch::nn::BatchNormOptions(8).momentum(0.3)};

  at::Tensor reference(const at::Tensor& x) { return at::relu(bn->forward(conv->forward(x))); }

  // The graph's own tensors (copies).
  at::Tensor w = copy_of(conv->weight, true), b = copy_of(conv->bias, true);
  at::Tensor gamma = copy_of(bn->weight, true), beta = copy_of(bn->bias, true);
  at::Tensor mean = copy_of(bn->running_mean, false), var = copy_of(bn->running_var, false);
  at::Tensor count = copy_of(bn->num_batches_tracked, false);

  ir::Graph graph() const {
    ir::Graph g;
    ValueId v = g.add_input("x");
    v = add_conv(g, v, "conv", w, b, {1, 1}, {1, 1});
    add_bn_tensors(g, "bn", gamma, beta, mean, var, count);
    v = add(g, Op::batch_norm, {v},
            {{"weight", S("bn.weight")}, {"bias", S("bn.bias")},
             {"running_mean", S("bn.running_mean")}, {"running_var", S("bn.running_var")},
             {"num_batches_tracked", S("bn.num_batches_tracked")}, {"eps", F(1e-5)},
             {"momentum", F(0.3)}},
            "bn", "BatchNorm2d");
    v = add(g, Op::relu, {v}, {}, "relu", "ReLU");
    g.set_outputs({v});
    return g;
  }
};

TEST(FloatGraph, ConvBnReluUsesBatchStatisticsInTrainAndRunningStatisticsInEval) {
  at::manual_seed(2);
  ConvBnRelu net;
  GraphModule gm(net.graph());
  for (int step = 0; step < 3; ++step) {
    const at::Tensor x = at::randn({5, 3, 6, 6}) * (step + 1) + step;
    const at::Tensor expected = net.reference(x);
    const at::Tensor actual = gm->forward(x);
    EXPECT_TRUE(at::equal(actual, expected)) << "step " << step;
    EXPECT_TRUE(at::equal(net.mean, net.bn->running_mean));
    EXPECT_TRUE(at::equal(net.var, net.bn->running_var));
    EXPECT_EQ(net.count.item<int64_t>(), step + 1);
    EXPECT_EQ(net.bn->num_batches_tracked.item<int64_t>(), step + 1);
  }

  net.conv->eval();
  net.bn->eval();
  gm->eval();
  const at::Tensor x = at::randn({2, 3, 6, 6});
  const at::Tensor before = net.mean.clone();
  EXPECT_TRUE(at::equal(gm->forward(x), net.reference(x)));
  EXPECT_TRUE(at::equal(net.mean, before));
  EXPECT_EQ(net.count.item<int64_t>(), 3);

  // Back to training: batch statistics again, whatever mode the model was captured in.
  gm->train();
  net.bn->train();
  EXPECT_TRUE(at::equal(gm->forward(x), net.reference(x)));
}

TEST(FloatGraph, ResidualBlockMatchesAtenAndBackpropagatesThroughBothBranches) {
  at::manual_seed(3);
  const at::Tensor w = at::randn({4, 4, 3, 3}).requires_grad_();
  ir::Graph g;
  const ValueId x = g.add_input("x");
  ValueId v = add_conv(g, x, "conv", w, at::Tensor(), {1, 1}, {1, 1});
  v = add(g, Op::relu, {v});
  v = add(g, Op::add, {v, x});
  v = add(g, Op::relu, {v});
  g.set_outputs({v});
  GraphModule gm(std::move(g));

  const at::Tensor input = at::randn({2, 4, 5, 5}).requires_grad_();
  const at::Tensor y = gm->forward(input);
  const at::Tensor expected = at::relu(at::relu(at::conv2d(input, w, {}, 1, 1)) + input);
  EXPECT_TRUE(at::equal(y, expected));
  y.sum().backward();
  const at::Tensor grad_input = input.grad().clone();
  const at::Tensor grad_w = w.grad().clone();
  input.mutable_grad().reset();
  w.mutable_grad().reset();
  expected.sum().backward();
  EXPECT_TRUE(at::equal(grad_input, input.grad()));
  EXPECT_TRUE(at::equal(grad_w, w.grad()));
}

}  // namespace
}  // namespace linquant
