// Ordered list of a config's module configs (see config_slots.h).
#include "config_slots.h"

#include "key_path.h"

namespace linquant::config_detail {

std::vector<ConfigSlot> config_slots(const LinearQuantizerConfig& config) {
  const std::string root = kRootPath;
  std::vector<ConfigSlot> slots;
  slots.push_back({field_path(root, "global_config"), &config.global_config});
  for (const auto& [type, module_config] : config.module_type_configs) {
    slots.push_back({entry_path(field_path(root, "module_type_configs"), type), &module_config});
  }
  for (const auto& [name, module_config] : config.module_name_configs) {
    slots.push_back({entry_path(field_path(root, "module_name_configs"), name), &module_config});
  }
  return slots;
}

const ConfigSlot* effective_slot(const std::vector<ConfigSlot>& slots) {
  for (const auto& slot : slots) {
    if (slot.config->has_value()) return &slot;
  }
  return nullptr;
}

}  // namespace linquant::config_detail
