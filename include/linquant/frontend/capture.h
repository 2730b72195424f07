// Capture of user models into linquant's graph IR: torch::nn::Sequential (nested), any C++
// torch::nn::Module (through LibTorch's tracer) and TorchScript modules (traced or scripted
// in Python). docs/ir.md lists the conventions the
// captured graph follows (names, scopes, attributes, tensors).
#pragma once

#include <string>
#include <vector>

#include "linquant/frontend/module_forward.h"
#include "linquant/ir/graph.h"

// Forward declarations keep LibTorch's heaviest headers out of every file that includes this
// one; callers include <torch/nn/modules/container/sequential.h> or <torch/script.h> anyway.
namespace torch::nn {
class Sequential;
}  // namespace torch::nn
namespace torch::jit {
struct Module;
}  // namespace torch::jit

namespace linquant::frontend {

struct CaptureOptions {
  // Qualified submodule names ("encoder.attn", "3") kept as one opaque float_module node each:
  // their code is not captured or quantized, only called.
  std::vector<std::string> non_traceable_module_names;
};

// The graph refers to the model's own parameter and buffer tensors (no copies), named as in
// named_parameters() / named_buffers(). Throws linquant::Error naming the unsupported op or
// module and what to do about it.
ir::Graph capture(torch::nn::Sequential model, const CaptureOptions& options = {});
ir::Graph capture(const torch::jit::Module& model, const CaptureOptions& options = {});

// A C++ module with a hand-written forward, traced once on `example_inputs` (and once more on
// a batch one larger with other values, to find forwards whose ops depend on the data). The
// tracer sees no module boundaries: an op that computes with a module's parameters or buffers
// (conv, linear, batch_norm, ...) is attributed to that module, under its name and type as
// configs use them; every other op (activations, pooling, adds, even when written as
// parameterless modules such as ReLU) is a functional op of the root. docs/ir.md has the
// details. The modules' train()/eval() modes are left as they were.
ir::Graph capture(const std::shared_ptr<torch::nn::Module>& model, const ModuleForward& forward,
                  const std::vector<at::Tensor>& example_inputs,
                  const CaptureOptions& options = {});

// The short type name used in scopes and configs: "torch::nn::Conv2dImpl",
// "__torch__.torch.nn.modules.conv.___torch_mangle_3.Conv2d" and "Conv2d" all give "Conv2d";
// "__torch__.MyBlock" gives "MyBlock".
std::string normalize_module_type(const std::string& raw);

}  // namespace linquant::frontend
