// LinearQuantizer::save_state / load_state: a QAT run stopped, saved, loaded into a fresh
// quantizer and continued ends bit-identical to the run that never stopped; a state saved
// from another model is refused before anything is changed.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <sstream>

#include "linquant/common/error.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace linquant {
namespace {

torch::nn::Sequential small_net(int64_t channels) {
  torch::manual_seed(3);
  return torch::nn::Sequential(
      torch::nn::Conv2d(torch::nn::Conv2dOptions(1, channels, 3).padding(1)),
      torch::nn::BatchNorm2d(channels), torch::nn::ReLU(), torch::nn::Flatten(),
      torch::nn::Linear(channels * 36, 4));
}

LinearQuantizerConfig config_with_milestones() {
  ModuleLinearQuantizerConfig global;
  global.set_milestones(Milestones{0, 2, 6, 7});  // every milestone falls in the run
  LinearQuantizerConfig config;
  config.set_global(global);
  return config;
}

struct QatRun {
  std::unique_ptr<LinearQuantizer> quantizer;
  GraphModule model{nullptr};
  std::unique_ptr<torch::optim::SGD> optimizer;

  explicit QatRun(int64_t channels = 3) {
    quantizer = std::make_unique<LinearQuantizer>(small_net(channels), config_with_milestones());
    model = quantizer->prepare({at::zeros({1, 1, 6, 6})});
    model->train();
    optimizer = std::make_unique<torch::optim::SGD>(model->parameters(),
                                                    torch::optim::SGDOptions(0.05).momentum(0.9));
  }

  void steps(int64_t from, int64_t to) {
    for (int64_t step = from; step < to; ++step) {
      at::manual_seed(100 + step);  // the data of a step depends on the step only
      const at::Tensor x = at::randn({8, 1, 6, 6});
      const at::Tensor target = at::randn({8, 4});
      quantizer->step();
      optimizer->zero_grad();
      (model->forward(x) - target).pow(2).mean().backward();
      optimizer->step();
    }
  }

  std::string save() const {
    torch::serialize::OutputArchive archive;
    quantizer->save_state(archive);
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
    std::ostringstream out;
    archive.save_to(out);
    return out.str();
  }

  void load(const std::string& bytes) {
    std::istringstream in(bytes);
    torch::serialize::InputArchive archive;
    archive.load_from(in);
    quantizer->load_state(archive);
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer", optimizer_archive);
    optimizer->load(optimizer_archive);
  }
};

void expect_same_state(GraphModule a, GraphModule b) {
  const auto pa = a->named_parameters();
  const auto pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) EXPECT_TRUE(at::equal(item.value(), pb[item.key()])) << item.key();
  const auto ba = a->named_buffers();
  const auto bb = b->named_buffers();
  ASSERT_EQ(ba.size(), bb.size());
  for (const auto& item : ba) EXPECT_TRUE(at::equal(item.value(), bb[item.key()])) << item.key();
}

TEST(QuantizerState, StoppedSavedLoadedAndContinuedIsBitIdentical) {
  QatRun whole;
  whole.steps(0, 10);

  QatRun first;
  first.steps(0, 4);  // observers on, fake quant on; observers still running
  const std::string saved = first.save();
  QatRun second;  // a fresh process, in effect: new quantizer, model and optimizer
  second.load(saved);
  EXPECT_EQ(second.quantizer->step_count(), 4);
  second.steps(4, 10);  // observers off at 6, BatchNorm frozen at 7

  EXPECT_EQ(second.quantizer->step_count(), whole.quantizer->step_count());
  expect_same_state(second.model, whole.model);
  const at::Tensor x = at::randn({2, 1, 6, 6});
  whole.model->eval();
  second.model->eval();
  EXPECT_TRUE(at::equal(second.model->forward(x), whole.model->forward(x)));
}

TEST(QuantizerState, AnotherModelsStateIsRefusedAndNothingChanges) {
  QatRun other(5);
  other.steps(0, 3);
  const std::string saved = other.save();
  QatRun run;
  run.steps(0, 3);
  const std::string before = run.save();
  EXPECT_THROW(run.load(saved), Error);
  EXPECT_EQ(run.save(), before);
}

TEST(QuantizerState, NeedsAPreparedModel) {
  LinearQuantizer quantizer(small_net(3), config_with_milestones());
  torch::serialize::OutputArchive archive;
  EXPECT_THROW(quantizer.save_state(archive), Error);
}

}  // namespace
}  // namespace linquant
