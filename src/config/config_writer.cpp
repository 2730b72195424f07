// Config -> document, the inverse of config_reader.cpp: every field in the order of
// module_config_keys()/linear_config_keys(), with canonical spellings and explicit nulls.
#include <string>
#include <utility>
#include <vector>

#include "config_document.h"

namespace linquant::config_detail {
namespace {

Document optional_module_document(const OptionalModuleConfig& config) {
  return config ? to_document(*config) : Document(nullptr);
}

Document config_map_document(
    const std::vector<std::pair<std::string, OptionalModuleConfig>>& entries) {
  Document object = Document::object();
  for (const auto& [key, config] : entries) object[key] = optional_module_document(config);
  return object;
}

}  // namespace

Document to_document(const ModuleLinearQuantizerConfig& config) {
  Document document = Document::object();
  document["algorithm"] = to_string(config.algorithm);
  document["weight_dtype"] = to_string(config.weight_dtype);
  document["weight_observer"] = to_string(config.weight_observer);
  document["weight_per_channel"] = config.weight_per_channel;
  document["activation_dtype"] = to_string(config.activation_dtype);
  document["activation_observer"] = to_string(config.activation_observer);
  document["quantization_scheme"] = to_string(config.quantization_scheme);
  document["milestones"] = config.milestones ? Document(*config.milestones) : Document(nullptr);
  return document;
}

Document to_document(const LinearQuantizerConfig& config) {
  Document document = Document::object();
  document["global_config"] = optional_module_document(config.global_config);
  document["module_type_configs"] = config_map_document(config.module_type_configs);
  document["module_name_configs"] = config_map_document(config.module_name_configs);
  document["non_traceable_module_names"] = config.non_traceable_module_names;
  document["preserved_attributes"] = config.preserved_attributes;
  return document;
}

}  // namespace linquant::config_detail
