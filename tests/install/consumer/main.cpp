// Uses the installed headers and libraries: a config from YAML and a fake quantizer.
#include <linquant/linquant.h>

#include <ATen/ATen.h>

#include <iostream>

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
  std::cout << "downstream consumer OK: " << options.describe() << "\n";
  return 0;
}
