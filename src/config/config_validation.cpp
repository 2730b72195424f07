// LinearQuantizerConfig::validate: the rules that span several module configs, which a
// field-by-field reader cannot see, checked the same way for parsed and hand-built configs.
// All errors are found before any warning is issued.
#include <map>
#include <string>
#include <vector>

#include "config_slots.h"
#include "key_path.h"
#include "linquant/common/error.h"
#include "linquant/common/warning.h"
#include "linquant/config/linear_quantizer_config.h"
#include "milestone_rules.h"
#include "module_type_name.h"

namespace linquant {
namespace {

using config_detail::ConfigSlot;
using config_detail::entry_path;
using config_detail::field_path;
using config_detail::quoted;

using ConfigMap = std::vector<std::pair<std::string, OptionalModuleConfig>>;

// Keys must be usable for lookups: not empty, and no two naming the same module or type
// (the second entry would never be consulted).
template <typename Normalize>
void check_keys(const ConfigMap& entries, const std::string& map_path, const std::string& kind,
                const std::string& example, Normalize normalize) {
  std::map<std::string, const std::string*> seen;  // normalized -> the first key spelling it
  for (const auto& [key, unused] : entries) {
    const std::string path = entry_path(map_path, key);
    if (key.empty()) throw ConfigError(path + ": empty " + kind + "; use " + example);
    const auto [first, inserted] = seen.emplace(normalize(key), &key);
    if (!inserted) {
      throw ConfigError(path + ": names the same " + kind + " as " +
                        entry_path(map_path, *first->second) + "; keep one entry");
    }
  }
}

// coremltools builds one set of observers and fake-quant modules for the whole model, so a
// second scheme or algorithm cannot be honoured; it is refused rather than ignored.
template <typename Value>
void check_same(const ConfigSlot& slot, const ConfigSlot& reference, const char* field,
                Value (*get)(const ModuleLinearQuantizerConfig&)) {
  const Value value = get(**slot.config);
  const Value expected = get(**reference.config);
  if (value != expected) {
    throw ConfigError(field_path(slot.path, field) + ": " + quoted(to_string(value)) +
                      " differs from " + quoted(to_string(expected)) + " in " + reference.path +
                      "; one " + field + " applies to the whole model, so every module config " +
                      "must use the same");
  }
}

std::string milestones_text(const std::optional<Milestones>& milestones) {
  if (!milestones) return "null";
  std::string text = "[";
  for (std::size_t i = 0; i < milestones->size(); ++i) {
    text += (i > 0 ? ", " : "") + std::to_string((*milestones)[i]);
  }
  return text + "]";
}

}  // namespace

void LinearQuantizerConfig::validate() const {
  const std::string root = config_detail::kRootPath;
  check_keys(module_type_configs, field_path(root, "module_type_configs"), "module type",
             "a type name such as Conv2d", config_detail::normalize_module_type);
  check_keys(module_name_configs, field_path(root, "module_name_configs"), "module name",
             "the qualified name of a submodule such as layer1.0.conv1",
             [](const std::string& name) { return name; });

  const auto slots = config_detail::config_slots(*this);
  const ConfigSlot* effective = config_detail::effective_slot(slots);
  for (const auto& slot : slots) {
    if (!slot.config->has_value()) continue;
    if (const auto& milestones = (*slot.config)->milestones) {
      config_detail::check_milestones_not_negative(*milestones, field_path(slot.path, "milestones"));
    }
    check_same<QuantizationScheme>(slot, *effective, "quantization_scheme",
                                   [](const ModuleLinearQuantizerConfig& c) {
                                     return c.quantization_scheme;
                                   });
    check_same<Algorithm>(slot, *effective, "algorithm",
                          [](const ModuleLinearQuantizerConfig& c) { return c.algorithm; });
  }
  if (effective == nullptr) return;

  // Only the effective milestones drive training; others are ignored, as in coremltools,
  // which does so silently.
  const auto& milestones = (*effective->config)->milestones;
  if (milestones) {
    config_detail::warn_about_milestone_order(*milestones, field_path(effective->path, "milestones"));
  }
  for (const auto& slot : slots) {
    if (&slot == effective || !slot.config->has_value()) continue;
    if ((*slot.config)->milestones.has_value() && (*slot.config)->milestones != milestones) {
      warn(field_path(slot.path, "milestones") + ": " +
           milestones_text((*slot.config)->milestones) +
           " is ignored; milestones apply to the whole model and come from " +
           field_path(effective->path, "milestones") + " (" + milestones_text(milestones) + ")");
    }
  }
}

}  // namespace linquant
