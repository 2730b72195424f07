// The spelling-independent form of a module type name, so that "Conv2d", "nn.Conv2d",
// "torch.nn.Conv2d", "torch.nn.modules.conv.Conv2d" and LibTorch's "torch::nn::Conv2dImpl"
// all name one type.
#pragma once

#include <string>

namespace linquant::config_detail {

std::string normalize_module_type(const std::string& type);

}  // namespace linquant::config_detail
