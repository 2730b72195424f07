// Loading TorchScript models from files that may be damaged or crafted. LibTorch's loader
// trusts what a file claims (pickle lengths, memo slots, tensor shapes against their storage,
// the shape of class bodies in the code), which can exhaust memory or read past buffers;
// these checks run before it and after it, so such a file is one linquant::Error naming it.
#pragma once

#include <filesystem>
#include <string>

namespace torch::jit {
struct Module;
}  // namespace torch::jit

namespace linquant {

// The model in `bytes` (a TorchScript file's content); `name` names it in errors.
torch::jit::Module load_torchscript(const std::string& bytes, const std::string& name);

// The model in a TorchScript file.
torch::jit::Module load_torchscript(const std::filesystem::path& file);

}  // namespace linquant
