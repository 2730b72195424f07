// The commands' recipe in linquant's quantized-model files (see saved_model.h).
#include "saved_model.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "linquant/common/error.h"
#include "linquant/common/file_io.h"

namespace linquant::apps {
namespace {

constexpr const char* kRecipeKey = "recipe";
constexpr int64_t kMaxClasses = 1'000'000;

nlohmann::json recipe_json(const ModelRecipe& recipe) {
  return {{"builtin", recipe.builtin},
          {"normalization", {recipe.normalization.mean, recipe.normalization.std}},
          {"num_classes", recipe.num_classes}};
}

// The recipe of a loaded file: its config, input shape and TorchScript from the file, the
// rest from the metadata; every value checked before it is used.
ModelRecipe recipe_of(const QuantizedModelInfo& info, const std::string& file) {
  const nlohmann::json metadata = nlohmann::json::parse(info.metadata_json, nullptr, false);
  if (!metadata.is_object() || !metadata.contains(kRecipeKey) ||
      !metadata[kRecipeKey].is_object()) {
    throw Error(file + ": not saved by the linquant command (no recipe in its metadata)");
  }
  const nlohmann::json& saved = metadata[kRecipeKey];
  ModelRecipe recipe;
  recipe.config = info.config;
  recipe.torchscript = info.torchscript;
  recipe.source_name = info.source_name;
  if (info.input_shapes.size() != 1) throw Error(file + ": the model does not take one input");
  recipe.input_shape = info.input_shapes[0];
  const nlohmann::json& normalization = saved.value("normalization", nlohmann::json());
  if (!saved.value("builtin", nlohmann::json()).is_string() || !normalization.is_array() ||
      normalization.size() != 2 || !normalization[0].is_number() || !normalization[1].is_number() ||
      !saved.value("num_classes", nlohmann::json()).is_number_integer()) {
    throw Error(file + ": the recipe in its metadata is incomplete");
  }
  recipe.builtin = saved["builtin"].get<std::string>();
  recipe.normalization = {normalization[0].get<float>(), normalization[1].get<float>()};
  if (!std::isfinite(recipe.normalization.mean) || !(recipe.normalization.std > 0) ||
      !std::isfinite(recipe.normalization.std)) {
    throw Error(file + ": the saved normalization is not a finite mean and a positive std");
  }
  recipe.num_classes = saved["num_classes"].get<int64_t>();
  if (recipe.num_classes < 1 || recipe.num_classes > kMaxClasses) {
    throw Error(file + ": the saved number of classes " + std::to_string(recipe.num_classes) +
                " is not between 1 and " + std::to_string(kMaxClasses));
  }
  if (recipe.builtin.empty() == recipe.torchscript.empty()) {
    throw Error(file + ": the file names neither a built-in model nor embeds a TorchScript one");
  }
  return recipe;
}

}  // namespace

void save_quantized_model(const std::filesystem::path& file, LinearQuantizer& quantizer,
                          const ModelRecipe& recipe, const std::string& metadata_json) {
  nlohmann::json metadata = nlohmann::json::parse(metadata_json);
  metadata[kRecipeKey] = recipe_json(recipe);
  SaveOptions options;
  options.torchscript = recipe.torchscript;
  options.source_name = recipe.source_name;
  options.metadata_json = metadata.dump();
  write_file_bytes(file, quantized_model_bytes(quantizer, options));
}

bool is_saved_model(const std::filesystem::path& file) { return is_quantized_model_file(file); }

LoadedModel load_quantized_model(const std::filesystem::path& file) {
  LoadedModel loaded;
  QuantizedModel model = linquant::load_quantized_model(file, [&](const QuantizedModelInfo& info) {
    loaded.recipe = recipe_of(info, file.string());
    loaded.source = load_source_model(loaded.recipe);
    return make_quantizer(loaded.source, info.config);
  });
  loaded.metadata_json = model.info.metadata_json;
  loaded.quantizer = std::move(model.quantizer);
  loaded.finalized = model.finalized;
  return loaded;
}

}  // namespace linquant::apps
