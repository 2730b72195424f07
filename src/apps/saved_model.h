// The commands' quantized-model files: linquant's own format (linquant/serialization/
// quantized_model.h), with the commands' recipe in its metadata: which built-in net or
// TorchScript file the model came from, how its inputs were normalized and how many classes
// it has. `train` and `quantize` write them, `export` and `inspect` read them.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "linquant/serialization/quantized_model.h"
#include "model_source.h"

namespace linquant::apps {

// Saves the quantizer's prepared model and what it finalizes to (see
// linquant::save_quantized_model); `metadata_json` is an object of the command's own facts
// (accuracies, options), to which the recipe is added. TorchScript sources are embedded.
void save_quantized_model(const std::filesystem::path& file, LinearQuantizer& quantizer,
                          const ModelRecipe& recipe, const std::string& metadata_json);

struct LoadedModel {
  ModelRecipe recipe;
  std::string metadata_json;  // what the writer recorded (accuracies, command), with the recipe
  SourceModel source;         // kept alive: the graphs refer to its tensors
  std::unique_ptr<LinearQuantizer> quantizer;  // prepared, with the saved state
  GraphModule finalized{nullptr};
};

// True when `file` is a linquant quantized-model archive (any other zip, e.g. TorchScript: false).
bool is_saved_model(const std::filesystem::path& file);

// Throws Error naming the file when it is not a saved model or does not rebuild exactly.
LoadedModel load_quantized_model(const std::filesystem::path& file);

}  // namespace linquant::apps
