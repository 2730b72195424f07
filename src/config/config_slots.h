// The module configs of a LinearQuantizerConfig as one ordered list: global, then type
// entries, then name entries, each with its key path. This order decides the effective
// whole-model settings and the config every other one is compared against.
#pragma once

#include <string>
#include <vector>

#include "linquant/config/linear_quantizer_config.h"

namespace linquant::config_detail {

struct ConfigSlot {
  std::string path;                   // e.g. config.module_type_configs["Conv2d"]
  const OptionalModuleConfig* config;  // points into the LinearQuantizerConfig
};

std::vector<ConfigSlot> config_slots(const LinearQuantizerConfig& config);

// The first non-null slot (whose milestones, scheme and algorithm hold for the whole
// model), or nullptr when every config is null or absent.
const ConfigSlot* effective_slot(const std::vector<ConfigSlot>& slots);

}  // namespace linquant::config_detail
