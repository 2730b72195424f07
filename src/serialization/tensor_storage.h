// Loaded tensors must lie inside their storage. LibTorch's loaders trust a file's shapes and
// strides, so a crafted or corrupted .pt whose storage is shorter than its shape reads (or
// writes) past the buffer later; these checks turn that into a one-line error first.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace torch::jit {
struct Module;
}  // namespace torch::jit

namespace linquant::serialization {

// True when every element the tensor's sizes, strides and offset address is inside its storage.
bool storage_covers_tensor(const at::Tensor& tensor);

// Throws linquant::Error ("FILE: tensor NAME claims ... but its storage holds ... bytes") for
// a tensor that is not covered.
void check_tensor_storage(const at::Tensor& tensor, const std::string& name,
                          const std::string& file);

// Every parameter, buffer and tensor attribute of a TorchScript module and its submodules, and
// every tensor constant of their methods' code.
void check_module_storage(const torch::jit::Module& module, const std::string& file);

}  // namespace linquant::serialization
