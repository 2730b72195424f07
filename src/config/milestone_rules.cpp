// Milestone checks (see milestone_rules.h). coremltools accepts any order and any value;
// linquant rejects negative steps, which can never be reached, and explains orders whose
// effect is easy to misread, because step() only compares the step count for equality.
#include "milestone_rules.h"

#include "key_path.h"
#include "linquant/common/error.h"
#include "linquant/common/warning.h"

namespace linquant::config_detail {

void check_milestones_not_negative(const Milestones& milestones, const std::string& path) {
  for (std::size_t i = 0; i < milestones.size(); ++i) {
    if (milestones[i] < 0) {
      throw ConfigError(index_path(path, i) + ": " + std::to_string(milestones[i]) +
                        " is negative; milestones are step counts >= 0 (use a step beyond the "
                        "end of training for a switch that should never happen)");
    }
  }
}

void warn_about_milestone_order(const Milestones& milestones, const std::string& path) {
  const std::string observers_on = std::to_string(milestones[0]);
  const std::string fake_quant_on = std::to_string(milestones[1]);
  const std::string observers_off = std::to_string(milestones[2]);
  if (milestones[1] < milestones[0]) {
    warn(path + ": fake quantization starts at step " + fake_quant_on +
         " before any observer has run: scale 1 and zero point 0 are used until step " +
         observers_on);
  }
  if (milestones[2] < milestones[0]) {
    warn(path + ": observers are switched off at step " + observers_off +
         " before they are switched on at step " + observers_on +
         ", so they stay on for the rest of training");
  } else if (milestones[2] == milestones[0]) {
    warn(path + ": observers are switched on and off in the same step " + observers_on +
         ", so they never observe and qparams stay at scale 1 / zero point 0");
  }
}

}  // namespace linquant::config_detail
