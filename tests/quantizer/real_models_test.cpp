// The tutorial net, resnet18 and mobilenet_v2 (TorchScript files written by the frontend's
// test fixture): prepare, train a few steps, and finalize with the finalized model equal to
// the frozen prepared model in eval(), with the vanilla and the learnable (LSQ) algorithm.
// Placement counts are derived by hand from the reference rules (coremltools.md 3.4-3.5) for
// resnet18.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/sgd.h>
#include <torch/script.h>

#include <cstdlib>
#include <map>
#include <string>

#include "linquant/quantizer/linear_quantizer.h"
#include "torchscript_models.h"

namespace linquant {
namespace {

using testing::models_dir;

struct Model {
  std::string name;
  std::vector<int64_t> input_shape;
  Algorithm algorithm = Algorithm::vanilla;
};

class RealModels : public ::testing::TestWithParam<Model> {};

struct Counts {
  int weights = 0;
  int activations = 0;
  int affine = 0;
};

Counts count_quantizers(const GraphModule& model) {
  Counts counts;
  for (const auto& [name, spec] : model->graph().quantizers()) {
    if (spec.is_weight) {
      ++counts.weights;
    } else {
      ++counts.activations;
      counts.affine += spec.options.scheme == QuantizationScheme::affine ? 1 : 0;
    }
  }
  return counts;
}

TEST_P(RealModels, PrepareTrainAndFinalize) {
  const Model& m = GetParam();
  torch::jit::Module script = torch::jit::load(models_dir() + "/" + m.name + ".pt");
  at::manual_seed(0);
  LinearQuantizerConfig config;
  config.set_global(ModuleLinearQuantizerConfig()
                        .set_milestones(Milestones{0, 1, 3, 4})
                        .set_algorithm(m.algorithm));
  LinearQuantizer quantizer(script, config);
  GraphModule model = quantizer.prepare({at::randn(m.input_shape)});
  // Made after prepare(): with the learnable algorithm it also learns every quantizer's
  // scale (and affine zero point) once the observers stop, at step 3.
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.01));
  std::map<std::string, at::Tensor> scales_at_3;
  for (int step = 0; step < 5; ++step) {
    quantizer.step();
    if (step == 3) {
      for (auto& [name, fq] : model->quantizers()) scales_at_3[name] = fq->scale.detach().clone();
    }
    const at::Tensor out = model->forward(at::randn(m.input_shape));
    const at::Tensor loss = out.pow(2).mean();
    ASSERT_TRUE(std::isfinite(loss.item<float>())) << "step " << step;
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  // After milestones 2 and 3 the prepared model is frozen; finalize must reproduce it.
  model->eval();
  GraphModule finalized = quantizer.finalize();
  const at::NoGradGuard no_grad;
  const at::Tensor x = at::randn(m.input_shape);
  const at::Tensor expected = model->forward(x);
  const at::Tensor got = finalized->forward(x);
  const float tolerance = 1e-5f * std::max(1.0f, expected.abs().max().item<float>());
  EXPECT_LT((got - expected).abs().max().item<float>(), tolerance) << m.name;
  if (m.algorithm == Algorithm::learnable) {
    int learned = 0;
    for (auto& [name, fq] : model->quantizers()) {
      ASSERT_TRUE(fq->is_learnable() || fq->options().fixed_qparams) << name;
      learned += fq->is_learnable() && !at::equal(fq->scale, scales_at_3.at(name));
    }
    EXPECT_GT(learned, 0) << "no learnable scale moved after the observers stopped";
    return;  // the placement counts below do not depend on the algorithm
  }
  const Counts counts = count_quantizers(model);
  std::cout << m.name << ": " << counts.weights << " weight and " << counts.activations
            << " activation quantizers (" << counts.affine << " affine)\n";
  if (m.name == "resnet18_traced") {
    // 20 convs + fc; input, stem, per block relu1 / bn2 / add-relu (+3 downsamples), fc.
    EXPECT_EQ(counts.weights, 21);
    EXPECT_EQ(counts.activations, 30);
    EXPECT_EQ(counts.affine, 17);  // stem ReLU, 8 block ReLUs, 8 add-ReLUs
  }
  if (m.name == "mobilenet_v2_traced") {
    // 52 convs + classifier. Activations: input, stem, block 1 (depthwise, projection),
    // 16 blocks x (expand, depthwise, projection), 10 residual adds, last conv, classifier;
    // the quantizer after the classifier's dropout is removed (dropout rule).
    EXPECT_EQ(counts.weights, 53);
    EXPECT_EQ(counts.activations, 64);
    EXPECT_EQ(counts.affine, 35);  // every ConvBNReLU6 output
  }
}

INSTANTIATE_TEST_SUITE_P(
    TorchScript, RealModels,
    ::testing::Values(Model{"tutorial_traced", {4, 1, 28, 28}},
                      Model{"resnet18_traced", {2, 3, 64, 64}},
                      Model{"mobilenet_v2_traced", {2, 3, 64, 64}},
                      Model{"tutorial_traced", {4, 1, 28, 28}, Algorithm::learnable},
                      Model{"resnet18_traced", {2, 3, 64, 64}, Algorithm::learnable}),
    [](const auto& info) {
      return info.param.name + (info.param.algorithm == Algorithm::learnable ? "_learnable" : "");
    });

}  // namespace
}  // namespace linquant
