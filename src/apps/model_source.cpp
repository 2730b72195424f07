// Loading float models for the commands.
#include "model_source.h"

#include <torch/script.h>

#include "linquant/frontend/capture.h"
#include "linquant/serialization/torchscript.h"
#include "tutorial_models.h"

namespace linquant::apps {

SourceModel load_source_model(const ModelRecipe& recipe) {
  SourceModel model;
  if (!recipe.builtin.empty()) {
    model.sequential = std::make_shared<torch::nn::Sequential>(
        make_builtin_model(recipe.builtin, recipe.num_classes));
    return model;
  }
  model.script = std::make_shared<torch::jit::Module>(
      load_torchscript(recipe.torchscript, recipe.source_name));
  return model;
}

std::unique_ptr<LinearQuantizer> make_quantizer(const SourceModel& model,
                                                const LinearQuantizerConfig& config) {
  if (model.sequential) return std::make_unique<LinearQuantizer>(*model.sequential, config);
  return std::make_unique<LinearQuantizer>(*model.script, config);
}

ir::Graph capture_source(const SourceModel& model, const LinearQuantizerConfig& config) {
  const frontend::CaptureOptions options{config.non_traceable_module_names};
  if (model.sequential) return frontend::capture(*model.sequential, options);
  return frontend::capture(*model.script, options);
}

}  // namespace linquant::apps
