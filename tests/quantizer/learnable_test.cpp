// LinearQuantizer with algorithm: learnable on the tutorial net: quantizer scales and zero
// points are parameters of the prepared model (per-channel ones sized at prepare()), the
// optimizer made after prepare() learns them, report() says so, and an optimizer made before
// prepare() (which does not hold them) is detected with a warning.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/optim/adam.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "linquant/common/warning.h"
#include "linquant/ir/attribute_keys.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace linquant {
namespace {

namespace nn = torch::nn;

nn::Sequential tutorial_net() {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 12, 3).padding(1)), nn::ReLU(),
                        nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(), nn::Linear(2352, 10),
                        nn::LogSoftmax(1));
}

LinearQuantizerConfig learnable_config(Milestones milestones) {
  LinearQuantizerConfig config;
  config.set_global(ModuleLinearQuantizerConfig()
                        .set_algorithm(Algorithm::learnable)
                        .set_quantization_scheme(QuantizationScheme::affine)
                        .set_milestones(milestones));
  return config;
}

void train(LinearQuantizer& quantizer, GraphModule& model, torch::optim::Optimizer& optimizer,
           int steps) {
  for (int step = 0; step < steps; ++step) {
    quantizer.step();
    const at::Tensor loss = model->forward(at::randn({8, 1, 28, 28})).mean().neg();
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
}

TEST(Learnable, QuantizerParametersAreModelParametersAndLearn) {
  at::manual_seed(0);
  nn::Sequential net = tutorial_net();
  LinearQuantizer quantizer(net, learnable_config(Milestones{0, 0, 3, 100}));
  GraphModule model = quantizer.prepare({at::randn({1, 1, 28, 28})});
  int64_t quantizer_parameters = 0;
  for (auto& [name, fq] : model->quantizers()) {
    ASSERT_TRUE(fq->is_learnable()) << name;
    EXPECT_TRUE(fq->scale.requires_grad());
    EXPECT_TRUE(fq->zero_point.requires_grad()) << "affine zero points learn";
    quantizer_parameters += 2;
  }
  // Weights (conv, linear) and biases, plus a scale and a zero point per quantizer.
  EXPECT_EQ(static_cast<int64_t>(model->parameters().size()), 4 + quantizer_parameters);
  // Per-channel weight quantizers have one scale per output channel before any forward.
  std::vector<int64_t> weight_scale_sizes;
  for (const auto& [name, spec] : model->graph().quantizers()) {
    if (spec.is_weight) weight_scale_sizes.push_back(model->quantizer(name)->scale.numel());
  }
  std::sort(weight_scale_sizes.begin(), weight_scale_sizes.end());
  EXPECT_EQ(weight_scale_sizes, (std::vector<int64_t>{10, 12}));

  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  ScopedWarningCapture warnings;
  train(quantizer, model, optimizer, 3);
  std::map<std::string, at::Tensor> before;
  for (auto& [name, fq] : model->quantizers()) before[name] = fq->scale.detach().clone();
  train(quantizer, model, optimizer, 25);
  for (auto& [name, fq] : model->quantizers()) {
    EXPECT_FALSE(at::equal(fq->scale, before.at(name))) << name << " did not learn";
  }
  EXPECT_EQ(warnings.text().find("no scale has changed"), std::string::npos) << warnings.text();
  for (const ReportRow& row : quantizer.report().rows) EXPECT_EQ(row.algorithm, "learnable");
}

TEST(Learnable, OptimizerMadeBeforePrepareIsDetected) {
  at::manual_seed(0);
  nn::Sequential net = tutorial_net();
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(1e-3));
  LinearQuantizer quantizer(net, learnable_config(Milestones{0, 0, 2, 100}));
  GraphModule model = quantizer.prepare({at::randn({1, 1, 28, 28})});
  ScopedWarningCapture warnings;
  train(quantizer, model, optimizer, 30);
  EXPECT_NE(warnings.text().find("no scale has changed in 20 steps"), std::string::npos)
      << warnings.text();
  EXPECT_NE(warnings.text().find("after prepare()"), std::string::npos);
  EXPECT_EQ(warnings.count(), 1);
}

TEST(Learnable, FinalizeUsesTheLearnedQparams) {
  at::manual_seed(0);
  LinearQuantizer quantizer(tutorial_net(), learnable_config(Milestones{0, 0, 2, 100}));
  GraphModule model = quantizer.prepare({at::randn({1, 1, 28, 28})}, /*inplace=*/false);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-4));
  train(quantizer, model, optimizer, 12);
  GraphModule finalized = quantizer.finalize();
  int checked = 0;
  for (const ir::Node& node : finalized->graph().nodes()) {
    if (node.op != ir::Op::quantize_dequantize) continue;
    FakeQuantize fq = model->quantizer(node.attrs.s(ir::attr::activation_quantizer));
    // The learned scale itself (positive here) and the learned float zero point, rounded.
    ASSERT_GT(fq->scale.item<float>(), 0.0f);
    EXPECT_EQ(static_cast<float>(node.attrs.f(ir::attr::scale)), fq->scale.item<float>());
    EXPECT_EQ(node.attrs.i(ir::attr::zero_point),
              static_cast<int64_t>(std::nearbyint(fq->zero_point.item<float>())));
    EXPECT_TRUE(node.attrs.b(ir::attr::divides_by_scale, false));
    ++checked;
  }
  EXPECT_EQ(checked, 5);  // input, conv-relu (shared by the pool and flatten), output
  // The finalized model computes what the prepared one does in eval mode.
  model->eval();
  const at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({16, 1, 28, 28});
  const at::Tensor expected = model->forward(x);
  EXPECT_TRUE(at::equal(finalized->forward(x), expected));
}

}  // namespace
}  // namespace linquant
