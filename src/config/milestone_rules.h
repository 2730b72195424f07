// The rules on milestones beyond their count: step numbers cannot be negative (an error),
// and an unusual order is allowed but explained (a warning).
#pragma once

#include <string>

#include "linquant/config/module_linear_quantizer_config.h"

namespace linquant::config_detail {

// Throws ConfigError "<path>[i]: -3 is negative; milestones are step counts >= 0".
void check_milestones_not_negative(const Milestones& milestones, const std::string& path);

// Issues one linquant::warn per problem in the order of the four switches, naming the path
// and the effect on training.
void warn_about_milestone_order(const Milestones& milestones, const std::string& path);

}  // namespace linquant::config_detail
