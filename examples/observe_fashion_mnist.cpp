// The smallest end-to-end use of linquant until the QAT tutorial lands: read a quantization
// config, stream Fashion-MNIST through an activation fake quantizer, fake-quantize a conv
// weight per channel, and print the quantizers' parameters and the error they introduce.
//
//   observe_fashion_mnist [CONFIG.yaml|CONFIG.json] [--data DIR]
#include <linquant/data/idx_dataset.h>
#include <linquant/linquant.h>

#include <ATen/ATen.h>

#include <cstdio>
#include <iostream>
#include <string>

namespace {

linquant::LinearQuantizerConfig load_config(const std::string& path) {
  if (path.empty()) return linquant::LinearQuantizerConfig();
  const bool is_json = path.size() > 5 && path.substr(path.size() - 5) == ".json";
  return is_json ? linquant::LinearQuantizerConfig::from_json(path)
                 : linquant::LinearQuantizerConfig::from_yaml(path);
}

double rmse(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).pow(2).mean().sqrt().item<double>();
}

int run(int argc, char** argv) {
  std::string config_path;
  std::string data_dir = linquant::kDefaultFashionMnistDir;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--data" && i + 1 < argc) {
      data_dir = argv[++i];
    } else if (arg == "-h" || arg == "--help") {
      std::cout << "usage: observe_fashion_mnist [CONFIG.yaml|CONFIG.json] [--data DIR]\n";
      return 0;
    } else {
      config_path = arg;
    }
  }
  const linquant::LinearQuantizerConfig config = load_config(config_path);
  const linquant::ModuleLinearQuantizerConfig module =
      config.global_config.value_or(linquant::ModuleLinearQuantizerConfig());
  std::cout << "config:\n" << config.to_yaml() << "\n";

  const linquant::ImageSplit test = linquant::load_idx_split(data_dir, "t10k");
  // The tutorial's normalisation, so the activation range is the one the first conv sees.
  const at::Tensor images = (test.images - 0.1307f) / 0.3081f;

  linquant::FakeQuantizeOptions activation;
  activation.range = linquant::quant_range(module.activation_dtype);
  activation.scheme = config.quantization_scheme();
  activation.observer = module.activation_observer;
  linquant::FakeQuantize input_quantizer(activation);
  const int64_t batch = 128;
  at::Tensor last;
  for (int64_t start = 0; start < images.size(0); start += batch) {
    last = images.slice(0, start, std::min(start + batch, images.size(0)));
    input_quantizer->forward(last);
  }
  input_quantizer->disable_observer();
  const at::Tensor all_quantized = input_quantizer->forward(images);
  std::printf("input quantizer   %s\n  scale %.6f  zero point %d  rmse over %lld images %.6f\n",
              activation.describe().c_str(), input_quantizer->scale.item<float>(),
              input_quantizer->zero_point.item<int32_t>(),
              static_cast<long long>(images.size(0)), rmse(all_quantized, images));

  linquant::FakeQuantizeOptions weight;
  weight.range = linquant::quant_range(module.weight_dtype);
  weight.scheme = config.quantization_scheme();
  weight.observer = module.weight_observer;
  weight.ch_axis = module.weight_per_channel ? 0 : -1;
  linquant::FakeQuantize weight_quantizer(weight);
  at::manual_seed(0);
  const at::Tensor conv_weight = at::randn({12, 1, 3, 3}) * (1.0 / 3.0);
  const at::Tensor quantized_weight = weight_quantizer->forward(conv_weight);
  std::printf("weight quantizer  %s\n  scales [%.6f .. %.6f]  rmse %.6f\n",
              weight.describe().c_str(), weight_quantizer->scale.min().item<float>(),
              weight_quantizer->scale.max().item<float>(), rmse(quantized_weight, conv_weight));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const linquant::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}
