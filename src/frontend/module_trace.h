// A C++ torch::nn::Module as a TorchScript module: a mirror of its module tree that holds the
// same tensor objects, with a forward method recorded by LibTorch's tracer. The TorchScript
// walker then captures it like any TorchScript model.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <memory>
#include <vector>

#include "linquant/frontend/module_forward.h"

namespace linquant::frontend {

// Traces `forward` on `example_inputs` with every module in eval() mode (BatchNorm and
// Dropout are recorded once; the runtime gives them the prepared model's mode), then again
// on a batch one larger with other values; Error naming the module when the two traces differ
// (control flow or sizes that depend on the inputs) or when forward fails.
torch::jit::Module trace_module(const std::shared_ptr<torch::nn::Module>& model,
                                const ModuleForward& forward,
                                const std::vector<at::Tensor>& example_inputs);

}  // namespace linquant::frontend
