// Where a float model comes from: a built-in net or a TorchScript file. Kept as a recipe so a
// saved quantized model can be rebuilt exactly (same capture, same prepared graph).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "image_data.h"
#include "linquant/config/linear_quantizer_config.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace torch::jit {
struct Module;
}  // namespace torch::jit

namespace linquant::apps {

struct ModelRecipe {
  std::string builtin;      // "tutorial" / "tutorial_bn"; empty for TorchScript
  std::string torchscript;  // the TorchScript file's bytes; empty for built-ins
  std::string source_name;  // the file it came from, or the built-in's name
  LinearQuantizerConfig config;
  std::vector<int64_t> input_shape;  // of a loaded file: the example input of prepare()
  Normalization normalization;       // what the model's inputs were normalized with
  int64_t num_classes = 10;
};

// A float model ready to capture: exactly one of the two is set.
struct SourceModel {
  std::shared_ptr<torch::nn::Sequential> sequential;
  std::shared_ptr<torch::jit::Module> script;
};

// Built-ins are created from torch's global seed; TorchScript is loaded from the bytes.
// A file that is not TorchScript is an Error naming `source_name`.
SourceModel load_source_model(const ModelRecipe& recipe);

// LinearQuantizer on the source model (capture happens here).
std::unique_ptr<LinearQuantizer> make_quantizer(const SourceModel& model,
                                                const LinearQuantizerConfig& config);

// The captured float graph, for float export and inspect.
ir::Graph capture_source(const SourceModel& model, const LinearQuantizerConfig& config = {});

}  // namespace linquant::apps
