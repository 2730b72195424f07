// LinearQuantizerConfig: construction, the validating setters, the whole-model settings
// and the JSON/YAML entry points. Validation is in config_validation.cpp, lookups in
// config_lookup.cpp.
#include "linquant/config/linear_quantizer_config.h"

#include <algorithm>
#include <utility>

#include "config_document.h"
#include "config_slots.h"
#include "document.h"
#include "module_type_name.h"

namespace linquant {
namespace {

using ConfigMap = std::vector<std::pair<std::string, OptionalModuleConfig>>;

template <typename SameKey>
void upsert(ConfigMap& entries, const std::string& key, OptionalModuleConfig config,
            SameKey same_key) {
  const auto existing = std::find_if(entries.begin(), entries.end(),
                                     [&](const auto& entry) { return same_key(entry.first); });
  if (existing != entries.end()) {
    existing->second = std::move(config);  // keeps its place, which may decide milestones
  } else {
    entries.emplace_back(key, std::move(config));
  }
}

// Setters change a copy and commit only if it validates, so a rejected call leaves the
// config as it was.
template <typename Change>
LinearQuantizerConfig& change_validated(LinearQuantizerConfig& config, Change change) {
  LinearQuantizerConfig changed = config;
  change(changed);
  changed.validate();
  config = std::move(changed);
  return config;
}

}  // namespace

LinearQuantizerConfig::LinearQuantizerConfig() : global_config(ModuleLinearQuantizerConfig{}) {}

LinearQuantizerConfig& LinearQuantizerConfig::set_global(OptionalModuleConfig config) {
  return change_validated(*this, [&](LinearQuantizerConfig& c) {
    c.global_config = std::move(config);
  });
}

LinearQuantizerConfig& LinearQuantizerConfig::set_module_type(const std::string& type,
                                                              OptionalModuleConfig config) {
  const std::string normalized = config_detail::normalize_module_type(type);
  return change_validated(*this, [&](LinearQuantizerConfig& c) {
    upsert(c.module_type_configs, type, std::move(config), [&](const std::string& key) {
      return config_detail::normalize_module_type(key) == normalized;
    });
  });
}

LinearQuantizerConfig& LinearQuantizerConfig::set_module_name(const std::string& name,
                                                              OptionalModuleConfig config) {
  return change_validated(*this, [&](LinearQuantizerConfig& c) {
    upsert(c.module_name_configs, name, std::move(config),
           [&](const std::string& key) { return key == name; });
  });
}

std::optional<Milestones> LinearQuantizerConfig::milestones() const {
  const auto slots = config_detail::config_slots(*this);
  const auto* slot = config_detail::effective_slot(slots);
  return slot ? (*slot->config)->milestones : std::nullopt;
}

QuantizationScheme LinearQuantizerConfig::quantization_scheme() const {
  const auto slots = config_detail::config_slots(*this);
  const auto* slot = config_detail::effective_slot(slots);
  return slot ? (*slot->config)->quantization_scheme
              : ModuleLinearQuantizerConfig{}.quantization_scheme;
}

Algorithm LinearQuantizerConfig::algorithm() const {
  const auto slots = config_detail::config_slots(*this);
  const auto* slot = config_detail::effective_slot(slots);
  return slot ? (*slot->config)->algorithm : ModuleLinearQuantizerConfig{}.algorithm;
}

LinearQuantizerConfig LinearQuantizerConfig::from_json(const std::string& text_or_path) {
  const auto source = config_detail::load_source(text_or_path);
  LinearQuantizerConfig config = config_detail::read_linear_config(config_detail::parse_json(source));
  config.validate();
  return config;
}

LinearQuantizerConfig LinearQuantizerConfig::from_yaml(const std::string& text_or_path) {
  const auto source = config_detail::load_source(text_or_path);
  LinearQuantizerConfig config = config_detail::read_linear_config(config_detail::parse_yaml(source));
  config.validate();
  return config;
}

std::string LinearQuantizerConfig::to_json() const {
  return config_detail::write_json(config_detail::to_document(*this));
}

std::string LinearQuantizerConfig::to_yaml() const {
  return config_detail::write_yaml(config_detail::to_document(*this));
}

bool LinearQuantizerConfig::operator==(const LinearQuantizerConfig& other) const {
  return global_config == other.global_config &&
         module_type_configs == other.module_type_configs &&
         module_name_configs == other.module_name_configs &&
         non_traceable_module_names == other.non_traceable_module_names &&
         preserved_attributes == other.preserved_attributes;
}

}  // namespace linquant
