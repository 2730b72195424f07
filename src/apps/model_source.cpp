// Loading float models for the commands.
#include "model_source.h"

#include <c10/util/Exception.h>
#include <torch/script.h>

#include <new>
#include <sstream>

#include "app_error.h"
#include "archive_check.h"
#include "cli_common.h"
#include "file_io.h"
#include "linquant/frontend/capture.h"
#include "tensor_storage.h"
#include "tutorial_models.h"

namespace linquant::apps {

SourceModel load_source_model(const ModelRecipe& recipe) {
  SourceModel model;
  if (!recipe.builtin.empty()) {
    model.sequential = std::make_shared<torch::nn::Sequential>(
        make_builtin_model(recipe.builtin, recipe.num_classes));
    return model;
  }
  std::istringstream stream(recipe.torchscript);
  try {
    check_model_archive(recipe.torchscript, recipe.source_name);
    model.script = std::make_shared<torch::jit::Module>(torch::jit::load(stream));
  } catch (const Error&) {
    throw;  // already names the file
  } catch (const c10::Error& error) {
    throw Error(recipe.source_name + ": not a TorchScript model (" +
                one_line(error.what_without_backtrace()).substr(0, 200) + ")");
  } catch (const std::bad_alloc&) {
    throw Error(recipe.source_name + ": " + kClaimsTooMuchMemory);
  } catch (const std::exception& error) {  // e.g. the code in the archive does not compile
    throw Error(recipe.source_name + ": not a TorchScript model (" +
                one_line(error.what()).substr(0, 200) + ")");
  }
  check_module_storage(*model.script, recipe.source_name);
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
