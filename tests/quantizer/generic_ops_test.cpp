// GenericNet (tests/frontend/models/make_torchscript_models.py), whose forward uses ops
// linquant has no rule of its own for: they are captured as generic LibTorch operators, shapes
// computed from x.size() follow the batch size, and model tensors used as values (a layer
// scale, a class token, a position table) train. References come from PyTorch 1.13 running
// the same model (the frontend's test fixture writes them).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/sgd.h>
#include <torch/script.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "linquant/frontend/capture.h"
#include "linquant/quantizer/linear_quantizer.h"
#include "torchscript_models.h"

namespace linquant {
namespace {

using testing::models_dir;

c10::Dict<c10::IValue, c10::IValue> load_io() {
  std::ifstream file(models_dir() + "/generic_traced.io.pt", std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)),
                                std::istreambuf_iterator<char>());
  return torch::jit::pickle_load(bytes).toGenericDict();
}

at::Tensor get(const c10::Dict<c10::IValue, c10::IValue>& io, const std::string& key) {
  return io.at(key).toTensor();
}

int count_generic(const ir::Graph& graph, const std::string& schema) {
  int count = 0;
  for (const ir::Node& node : graph.nodes()) {
    count += node.op == ir::Op::torch_op && node.attrs.s("schema") == schema;
  }
  return count;
}

TEST(GenericOps, CapturedGraphFollowsTheBatchSize) {
  const torch::jit::Module model = torch::jit::load(models_dir() + "/generic_traced.pt");
  const ir::Graph graph = frontend::capture(model);
  // The channel shuffle reads the sizes when the model runs; nothing baked the traced batch.
  EXPECT_GE(count_generic(graph, "aten::size.int"), 3) << ir::to_string(graph);
  EXPECT_GE(count_generic(graph, "aten::chunk"), 1) << ir::to_string(graph);
  GraphModule module(graph);
  module->eval();
  const auto io = load_io();
  const at::NoGradGuard no_grad;
  for (const char* batch : {"", "8", "1"}) {
    SCOPED_TRACE(std::string("batch ") + batch);
    const at::Tensor y = module->forward(get(io, std::string("input") + batch));
    const at::Tensor want = get(io, std::string("output") + batch);
    ASSERT_EQ(y.sizes(), want.sizes());
    EXPECT_TRUE(at::allclose(y, want, 1e-5, 1e-6)) << (y - want).abs().max().item<double>();
  }
}

TEST(GenericOps, ModelTensorsUsedAsValuesTrainLikePyTorch) {
  torch::jit::Module model = torch::jit::load(models_dir() + "/generic_traced.pt");
  GraphModule module(frontend::capture(model));
  module->train();
  const auto io = load_io();
  std::vector<at::Tensor> parameters;
  for (const auto& p : model.parameters()) parameters.push_back(p);
  std::map<std::string, at::Tensor> initial;
  for (const char* name : {"layer_scale", "cls", "pos"}) {
    initial[name] = model.attr(name).toTensor().detach().clone();
  }
  torch::optim::SGD optimizer(parameters, torch::optim::SGDOptions(0.1));
  optimizer.zero_grad();
  module->forward(get(io, "input")).pow(2).mean().backward();
  optimizer.step();
  for (const char* name : {"layer_scale", "cls", "pos"}) {
    const at::Tensor trained = model.attr(name).toTensor();
    const at::Tensor want = get(io, std::string("trained_") + name);
    EXPECT_TRUE(at::allclose(trained, want, 0.0, 1e-6))
        << name << ": " << (trained - want).abs().max().item<double>();
    EXPECT_FALSE(at::equal(trained, initial[name])) << name << " did not train";
  }
}

// Traced at batch 2, trained at batch 8, evaluated at batch 1: each sample's result is the
// same at every batch size.
TEST(GenericOps, QatTrainsAtAnotherBatchAndEvaluatesPerSample) {
  const torch::jit::Module model = torch::jit::load(models_dir() + "/generic_traced.pt");
  LinearQuantizerConfig config;
  config.global_config->milestones = Milestones{0, 1, 3, 3};
  LinearQuantizer quantizer(model.clone(), config);
  const auto io = load_io();
  GraphModule prepared = quantizer.prepare({get(io, "input")}, /*inplace=*/false);
  EXPECT_GT(prepared->graph().quantizers().size(), 3u);
  torch::optim::SGD optimizer(prepared->parameters(), torch::optim::SGDOptions(0.01));
  for (int step = 0; step < 4; ++step) {
    quantizer.step();
    optimizer.zero_grad();
    prepared->forward(at::randn({8, 4, 4, 4})).pow(2).mean().backward();
    optimizer.step();
  }
  prepared->eval();
  const at::NoGradGuard no_grad;
  const at::Tensor batch = get(io, "input8");
  const at::Tensor together = prepared->forward(batch);
  for (int64_t k = 0; k < batch.size(0); ++k) {
    const at::Tensor alone = prepared->forward(batch.slice(0, k, k + 1));
    EXPECT_TRUE(at::allclose(alone, together.slice(0, k, k + 1), 1e-5, 1e-5)) << "sample " << k;
  }
  GraphModule finalized = quantizer.finalize();
  EXPECT_EQ(finalized->forward(get(io, "input1")).sizes(), get(io, "output1").sizes());
}

// PairNet: two inputs, and a nested (tensor, [tensor, tensor]) output that capture flattens
// in order. Float forward at another batch equals PyTorch's; QAT steps at yet another batch and
// finalize work on both inputs.
TEST(GenericOps, TwoInputsAndNestedOutputs) {
  const torch::jit::Module model = torch::jit::load(models_dir() + "/pair_traced.pt");
  std::ifstream file(models_dir() + "/pair_traced.io.pt", std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)),
                                std::istreambuf_iterator<char>());
  const auto io = torch::jit::pickle_load(bytes).toGenericDict();
  const std::vector<at::Tensor> inputs = {get(io, "image"), get(io, "features")};
  const c10::List<c10::IValue> want = io.at("outputs").toList();

  GraphModule module(frontend::capture(model));
  ASSERT_EQ(module->graph().inputs().size(), 2u);
  module->eval();
  {
    const at::NoGradGuard no_grad;
    const std::vector<at::Tensor> got = module->forward(inputs);
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_TRUE(at::allclose(got[k], want.get(k).toTensor(), 1e-5, 1e-6)) << "output " << k;
    }
  }

  LinearQuantizer quantizer(model.clone(), LinearQuantizerConfig{});
  GraphModule prepared = quantizer.prepare(inputs, /*inplace=*/false);
  torch::optim::SGD optimizer(prepared->parameters(), torch::optim::SGDOptions(0.01));
  for (int step = 0; step < 3; ++step) {
    quantizer.step();
    optimizer.zero_grad();
    at::Tensor loss = at::zeros({});
    for (const at::Tensor& y : prepared->forward({at::randn({4, 3, 5, 5}), at::randn({4, 6})})) {
      loss = loss + y.pow(2).mean();
    }
    loss.backward();
    optimizer.step();
  }
  GraphModule finalized = quantizer.finalize();
  const at::NoGradGuard no_grad;
  EXPECT_EQ(finalized->forward(inputs).size(), 3u);
}

}  // namespace
}  // namespace linquant
