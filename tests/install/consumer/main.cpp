// Uses the installed headers and libraries only: a config from YAML, a fake quantizer, and
// the whole flow on a C++ module with a hand-written forward (prepare, QAT steps, finalize,
// Core ML package, save and load into a fresh module).
#include <ATen/ATen.h>
#include <linquant/linquant.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>

#include <filesystem>
#include <iostream>

struct SmallNetImpl : torch::nn::Module {
  torch::nn::Conv2d conv{nullptr};
  torch::nn::Linear fc{nullptr};
  SmallNetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)));
    fc = register_module("fc", torch::nn::Linear(4 * 6 * 6, 10));
  }
  at::Tensor forward(const at::Tensor& x) { return fc(at::relu(conv(x)).flatten(1)); }
};
TORCH_MODULE(SmallNet);

int main() {
  const auto config = linquant::LinearQuantizerConfig::from_yaml(
      "global_config:\n  weight_dtype: qint4\n  milestones: [0, 1, 2, 3]\n");
  if (config.global_config->weight_n_bits() != 4) return 1;

  linquant::FakeQuantizeOptions options;
  options.range = linquant::quant_range(config.global_config->weight_dtype);
  linquant::FakeQuantize fq(options);
  const at::Tensor y = fq->forward(at::tensor({-0.75f, 0.1f, 0.75f}));
  // symmetric qint4: scale 0.75 / 7.5 = 0.1, so the grid is exact here.
  if (fq->scale.item<float>() != 0.1f || y[0].item<float>() != -0.8f) return 2;

  SmallNet net;
  torch::optim::SGD optimizer(net->parameters(), torch::optim::SGDOptions(0.01));
  linquant::LinearQuantizer quantizer(net, linquant::LinearQuantizerConfig::from_yaml(
                                               "global_config: {milestones: [0, 1, 2, 3]}\n"));
  linquant::GraphModule model = quantizer.prepare({at::randn({2, 1, 8, 8})});
  model->train();
  for (int step = 0; step < 4; ++step) {
    quantizer.step();
    optimizer.zero_grad();
    model->forward(at::randn({4, 1, 8, 8})).pow(2).mean().backward();
    optimizer.step();
  }
  if (quantizer.report().rows.size() < 4) return 3;
  linquant::GraphModule finalized = quantizer.finalize();
  const auto package = std::filesystem::temp_directory_path() / "linquant_consumer.mlpackage";
  std::filesystem::remove_all(package);
  linquant::coreml::save(finalized, package.string());
  if (!std::filesystem::exists(package / "Manifest.json")) return 4;
  std::filesystem::remove_all(package);

  // Saved, then rebuilt on a fresh net of the same architecture (other random weights).
  const auto file = std::filesystem::temp_directory_path() / "linquant_consumer_model.pt";
  linquant::save_quantized_model(file, quantizer);
  SmallNet fresh;
  linquant::QuantizedModel loaded = linquant::load_quantized_model_into(file, fresh);
  std::filesystem::remove(file);
  const at::Tensor input = at::randn({3, 1, 8, 8});
  if (!at::equal(loaded.finalized->forward(input), finalized->forward(input))) return 5;
  if (!at::equal(fresh->conv->weight, net->conv->weight)) return 6;
  std::cout << "downstream consumer OK: " << options.describe() << ", C++ module to "
            << package.filename() << "\n";
  return 0;
}
