// The built-in networks of `linquant train`: coremltools' tutorial net and a BatchNorm variant.
#pragma once

#include <torch/nn/modules/container/sequential.h>

#include <string>
#include <vector>

namespace linquant::apps {

// Names accepted by --model.
std::vector<std::string> builtin_model_names();

// "tutorial":    Conv2d(1,12,3,pad 1) - ReLU - MaxPool2d(2) - Flatten - Linear(2352,10) -
// LogSoftmax "tutorial_bn": the same with BatchNorm2d(12) after a bias-free conv (fused and folded
// by QAT). For inputs [N, 1, 28, 28] and `num_classes` outputs; initialized from torch's global
// seed.
torch::nn::Sequential make_builtin_model(const std::string& name, int64_t num_classes = 10);

}  // namespace linquant::apps
