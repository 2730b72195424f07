// Built-in networks, written as coremltools' tutorial writes its nn.Sequential.
#include "tutorial_models.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include "app_error.h"

namespace linquant::apps {

std::vector<std::string> builtin_model_names() {
  return {"tutorial", "tutorial_bn"};
}

torch::nn::Sequential make_builtin_model(const std::string& name, int64_t num_classes) {
  namespace nn = torch::nn;
  // 12 channels of 14x14 after pooling a 28x28 input.
  constexpr int64_t kFlatFeatures = 12 * 14 * 14;
  // Named like the tutorial's OrderedDict, so report() rows and module_name_configs read
  // "conv" and "dense".
  if (name == "tutorial") {
    return nn::Sequential({{"conv", nn::Conv2d(nn::Conv2dOptions(1, 12, 3).padding(1))},
                           {"relu", nn::ReLU()},
                           {"pool", nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2))},
                           {"flatten", nn::Flatten()},
                           {"dense", nn::Linear(kFlatFeatures, num_classes)},
                           {"softmax", nn::LogSoftmax(1)}});
  }
  if (name == "tutorial_bn") {
    return nn::Sequential({{"conv", nn::Conv2d(nn::Conv2dOptions(1, 12, 3).padding(1).bias(false))},
                           {"bn", nn::BatchNorm2d(12)},
                           {"relu", nn::ReLU()},
                           {"pool", nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2))},
                           {"flatten", nn::Flatten()},
                           {"dense", nn::Linear(kFlatFeatures, num_classes)},
                           {"softmax", nn::LogSoftmax(1)}});
  }
  throw UsageError("--model: \"" + name +
                   "\" is not a built-in model (choose tutorial or tutorial_bn)");
}

}  // namespace linquant::apps
