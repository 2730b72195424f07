// Milestones out of their usual order are allowed (coremltools accepts them) but each
// problem is explained once per validate() through linquant::warn.
#include <gtest/gtest.h>

#include <string>

#include "config_test_helpers.h"
#include "linquant/common/warning.h"
#include "linquant/config/linear_quantizer_config.h"

namespace linquant {
namespace {

using testing::contains;

LinearQuantizerConfig with_global_milestones(Milestones milestones) {
  LinearQuantizerConfig config;
  config.global_config->milestones = milestones;
  return config;
}

TEST(MilestoneWarnings, UsualOrdersAreSilent) {
  ScopedWarningCapture warnings;
  with_global_milestones({0, 1, 2, 3}).validate();
  with_global_milestones({0, 1000, 1000, 0}).validate();  // the PTQ-calibration recipe
  with_global_milestones({5, 5, 6, 0}).validate();
  LinearQuantizerConfig{}.validate();
  LinearQuantizerConfig::from_yaml("global_config:\n  milestones: [0, 1, 2, 3]\n");
  EXPECT_EQ(warnings.count(), 0) << warnings.text();
}

TEST(MilestoneWarnings, FakeQuantBeforeObservers) {
  ScopedWarningCapture warnings;
  with_global_milestones({10, 5, 20, 30}).validate();
  EXPECT_EQ(warnings.count(), 1);
  EXPECT_TRUE(contains(warnings.text(),
                       "config.global_config.milestones: fake quantization starts at step 5 "
                       "before any observer has run: scale 1 and zero point 0 are used until "
                       "step 10"));
}

TEST(MilestoneWarnings, ObserversOffBeforeOn) {
  ScopedWarningCapture warnings;
  with_global_milestones({10, 10, 5, 30}).validate();
  EXPECT_EQ(warnings.count(), 1);
  EXPECT_TRUE(contains(warnings.text(),
                       "config.global_config.milestones: observers are switched off at step 5 "
                       "before they are switched on at step 10, so they stay on for the rest "
                       "of training"));
}

TEST(MilestoneWarnings, ObserversOnAndOffInOneStep) {
  ScopedWarningCapture warnings;
  with_global_milestones({7, 7, 7, 0}).validate();
  EXPECT_EQ(warnings.count(), 1);
  EXPECT_TRUE(contains(warnings.text(),
                       "config.global_config.milestones: observers are switched on and off in "
                       "the same step 7, so they never observe and qparams stay at scale 1 / "
                       "zero point 0"));
}

TEST(MilestoneWarnings, EachProblemOncePerValidate) {
  ScopedWarningCapture warnings;
  const auto config = with_global_milestones({10, 5, 2, 0});
  config.validate();
  EXPECT_EQ(warnings.count(), 2) << warnings.text();
  config.validate();
  EXPECT_EQ(warnings.count(), 4);
}

TEST(MilestoneWarnings, ParsingWarnsThroughValidate) {
  ScopedWarningCapture warnings;
  LinearQuantizerConfig::from_json(R"({"module_type_configs": {"Conv2d": {"milestones": [3, 3, 3, 3]}}})");
  EXPECT_EQ(warnings.count(), 1);
  EXPECT_TRUE(contains(warnings.text(),
                       "config.module_type_configs[\"Conv2d\"].milestones: observers are "
                       "switched on and off in the same step 3"));
}

TEST(MilestoneWarnings, OnlyTheEffectiveMilestonesAreChecked) {
  ScopedWarningCapture warnings;
  const auto config = LinearQuantizerConfig::from_yaml(
      "global_config:\n  milestones: [0, 1, 2, 3]\n"
      "module_name_configs:\n  fc: {milestones: [9, 1, 1, 1]}\n  head: {milestones: [0, 1, 2, 3]}\n");
  // fc's odd order is not explained (it has no effect), but that it is ignored is.
  EXPECT_EQ(warnings.count(), 1) << warnings.text();
  EXPECT_TRUE(contains(warnings.text(),
                       "config.module_name_configs[\"fc\"].milestones: [9, 1, 1, 1] is ignored; "
                       "milestones apply to the whole model and come from "
                       "config.global_config.milestones ([0, 1, 2, 3])"));
}

TEST(MilestoneWarnings, ErrorsComeBeforeWarnings) {
  ScopedWarningCapture warnings;
  EXPECT_THROW(LinearQuantizerConfig::from_yaml(
                   "global_config:\n  milestones: [5, 1, 2, 3]\n"
                   "module_type_configs:\n  Linear: {quantization_scheme: affine}\n"),
               ConfigError);
  EXPECT_EQ(warnings.count(), 0);
}

}  // namespace
}  // namespace linquant
