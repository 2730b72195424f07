// The file format of a saved quantized model (`linquant train` / `quantize` write it, `export`
// and `inspect` read it). A finalized graph carries activation qparams as node attributes,
// not tensors, so a torch::save of the finalized module alone could not be loaded back.
// The file therefore holds what rebuilds it exactly:
//   - the recipe: the float model's source (built-in name or the TorchScript bytes), the
//     config, the example input shape and the input normalization;
//   - the prepared (QAT) model's parameters and buffers (observers, qparams, flags, BatchNorm
//     statistics), taken before finalize(), which may still update weight observers;
//   - the finalized model's tensors (the int-grid weights and their scales).
// Loading re-runs capture -> prepare -> load the prepared state -> finalize, then checks that
// every finalized tensor equals the saved one bit for bit, so a file that does not rebuild to
// the model it was saved from is rejected. It is a torch::serialize archive (a zip file).
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model_source.h"

namespace linquant::apps {

// Parameters and buffers by qualified name, cloned (later training does not change them).
using TensorSnapshot = std::vector<std::pair<std::string, at::Tensor>>;
TensorSnapshot snapshot_state(const torch::nn::Module& module);

void save_quantized_model(const std::filesystem::path& file, const ModelRecipe& recipe,
                          const TensorSnapshot& prepared_state, const torch::nn::Module& finalized,
                          const std::string& metadata_json);

struct LoadedModel {
  ModelRecipe recipe;
  std::string metadata_json;  // what the writer recorded (accuracies, command), "{}" if none
  SourceModel source;         // kept alive: the graphs refer to its tensors
  std::unique_ptr<LinearQuantizer> quantizer;  // prepared, with the saved state
  GraphModule finalized{nullptr};
};

// True when `file` is a linquant quantized-model archive (any other zip, e.g. TorchScript: false).
bool is_saved_model(const std::filesystem::path& file);

// Throws Error naming the file when it is not a saved model or does not rebuild exactly.
LoadedModel load_quantized_model(const std::filesystem::path& file);

}  // namespace linquant::apps
