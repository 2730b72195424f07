// Module type names as captured graphs record them (see normalize_module_type in capture.h),
// and which TorchScript module types are torch.nn leaves.
#pragma once

#include <string>

namespace linquant::frontend {

// True for torch.nn module classes other than containers (Sequential, ModuleList,
// ModuleDict): their forward *is* the op, so the ops inside get functional = false.
// `raw` is a TorchScript class name such as "__torch__.torch.nn.modules.conv.Conv2d".
bool is_torch_nn_leaf_type(const std::string& raw);

}  // namespace linquant::frontend
