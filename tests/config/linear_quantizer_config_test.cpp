// LinearQuantizerConfig: the default global config, null semantics, the validating setters,
// the whole-model milestones/scheme/algorithm, and validate() on hand-built configs.
#include "linquant/config/linear_quantizer_config.h"

#include <gtest/gtest.h>

#include "config_test_helpers.h"
#include "linquant/common/warning.h"

namespace linquant {
namespace {

using testing::config_error;
using testing::contains;
using testing::starts_with;

ModuleLinearQuantizerConfig affine() {
  return ModuleLinearQuantizerConfig{}.set_quantization_scheme(QuantizationScheme::affine);
}

ModuleLinearQuantizerConfig with_milestones(Milestones m) {
  return ModuleLinearQuantizerConfig{}.set_milestones(m);
}

TEST(LinearQuantizerConfig, DefaultHasTheDefaultGlobalConfigAndNothingElse) {
  const LinearQuantizerConfig config;
  ASSERT_TRUE(config.global_config.has_value());
  EXPECT_EQ(*config.global_config, ModuleLinearQuantizerConfig{});
  EXPECT_TRUE(config.module_type_configs.empty());
  EXPECT_TRUE(config.module_name_configs.empty());
  EXPECT_TRUE(config.non_traceable_module_names.empty());
  EXPECT_TRUE(config.preserved_attributes.empty());
}

TEST(LinearQuantizerConfig, EmptyDocumentsEqualTheDefault) {
  EXPECT_EQ(LinearQuantizerConfig::from_json("{}"), LinearQuantizerConfig{});
  EXPECT_EQ(LinearQuantizerConfig::from_json("  {  }  \n"), LinearQuantizerConfig{});
  EXPECT_EQ(LinearQuantizerConfig::from_yaml(""), LinearQuantizerConfig{});
  EXPECT_EQ(LinearQuantizerConfig::from_yaml("{}"), LinearQuantizerConfig{});
  EXPECT_EQ(LinearQuantizerConfig::from_yaml("# only a comment\n"), LinearQuantizerConfig{});
  // Empty YAML values of the list and map fields mean "none".
  EXPECT_EQ(LinearQuantizerConfig::from_yaml("non_traceable_module_names:\npreserved_attributes:\n"
                                             "module_type_configs:\nmodule_name_configs:\n"),
            LinearQuantizerConfig{});
}

TEST(LinearQuantizerConfig, GlobalConfigIsNullWhenOnlyOverridesAreGiven) {
  const auto config = LinearQuantizerConfig::from_yaml("module_type_configs:\n  Linear: {}\n");
  EXPECT_FALSE(config.global_config.has_value());
  const auto by_name = LinearQuantizerConfig::from_json(R"({"module_name_configs": {"fc": null}})");
  EXPECT_FALSE(by_name.global_config.has_value());
}

TEST(LinearQuantizerConfig, ExplicitNullGlobalConfigStaysNull) {
  const auto with_types =
      LinearQuantizerConfig::from_json(R"({"global_config": null, "module_type_configs": {"Linear": {}}})");
  EXPECT_FALSE(with_types.global_config.has_value());
  const auto alone = LinearQuantizerConfig::from_yaml("global_config: null\n");
  EXPECT_FALSE(alone.global_config.has_value());
  // ... and such a model is quantized with the default config everywhere.
  EXPECT_EQ(alone.config_for_module("conv1", "Conv2d"), ModuleLinearQuantizerConfig{});
}

TEST(LinearQuantizerConfig, ReadsListsAndMapsInOrder) {
  const auto config = LinearQuantizerConfig::from_yaml(
      "module_name_configs:\n"
      "  z: null\n"
      "  a: {weight_dtype: qint4}\n"
      "non_traceable_module_names: [head, \"0\"]\n"
      "preserved_attributes: [num_classes]\n");
  ASSERT_EQ(config.module_name_configs.size(), 2u);
  EXPECT_EQ(config.module_name_configs[0].first, "z");
  EXPECT_FALSE(config.module_name_configs[0].second.has_value());
  EXPECT_EQ(config.module_name_configs[1].first, "a");
  EXPECT_EQ(config.module_name_configs[1].second->weight_dtype, WeightDtype::qint4);
  EXPECT_EQ(config.non_traceable_module_names, (std::vector<std::string>{"head", "0"}));
  EXPECT_EQ(config.preserved_attributes, (std::vector<std::string>{"num_classes"}));
}

TEST(LinearQuantizerConfig, SettersReturnThisAndReplaceInPlace) {
  LinearQuantizerConfig config;
  LinearQuantizerConfig& same = config.set_module_name("a", std::nullopt)
                                    .set_module_name("b", ModuleLinearQuantizerConfig{})
                                    .set_module_type("Conv2d", std::nullopt)
                                    .set_global(std::nullopt);
  EXPECT_EQ(&same, &config);
  config.set_module_name("a", ModuleLinearQuantizerConfig{}.set_weight_dtype(WeightDtype::qint4));
  ASSERT_EQ(config.module_name_configs.size(), 2u);
  EXPECT_EQ(config.module_name_configs[0].first, "a");
  EXPECT_EQ(config.module_name_configs[0].second->weight_dtype, WeightDtype::qint4);
  // Type keys are compared after normalization: torch.nn.Conv2d is the Conv2d entry.
  config.set_module_type("torch.nn.Conv2d", ModuleLinearQuantizerConfig{});
  ASSERT_EQ(config.module_type_configs.size(), 1u);
  EXPECT_EQ(config.module_type_configs[0].first, "Conv2d");
  EXPECT_TRUE(config.module_type_configs[0].second.has_value());
  EXPECT_FALSE(config.global_config.has_value());
}

TEST(LinearQuantizerConfig, SettersValidateAndLeaveTheConfigUnchangedOnError) {
  LinearQuantizerConfig config;
  config.set_module_type("Linear", ModuleLinearQuantizerConfig{});
  const LinearQuantizerConfig before = config;
  const auto message = config_error([&] { config.set_module_type("Linear", affine()); });
  EXPECT_TRUE(starts_with(message, "config.module_type_configs[\"Linear\"].quantization_scheme: "
                                   "\"affine\" differs from \"symmetric\" in config.global_config"));
  EXPECT_EQ(config, before);
  EXPECT_TRUE(contains(config_error([&] { config.set_global(affine()); }),
                       "config.module_type_configs[\"Linear\"].quantization_scheme"));
  EXPECT_TRUE(contains(
      config_error([&] {
        config.set_module_name("fc", ModuleLinearQuantizerConfig{}.set_algorithm(Algorithm::learnable));
      }),
      "config.module_name_configs[\"fc\"].algorithm: \"learnable\" differs from \"vanilla\""));
  EXPECT_EQ(config, before);
}

TEST(LinearQuantizerConfig, NullConfigsTakeNoPartInTheCrossConfigRules) {
  LinearQuantizerConfig config;
  config.set_global(affine()).set_module_type("Linear", std::nullopt).set_module_name("fc", affine());
  EXPECT_EQ(config.quantization_scheme(), QuantizationScheme::affine);
}

TEST(LinearQuantizerConfig, WholeModelSettingsComeFromGlobalFirst) {
  LinearQuantizerConfig config;
  config.set_global(with_milestones({0, 1, 2, 3}));
  {
    ScopedWarningCapture warnings;  // the type config's milestones are ignored, with a warning
    config.set_module_type("Linear", with_milestones({5, 6, 7, 8}));
    EXPECT_EQ(warnings.count(), 1);
  }
  EXPECT_EQ(config.milestones(), (Milestones{0, 1, 2, 3}));
  EXPECT_EQ(config.quantization_scheme(), QuantizationScheme::symmetric);
  EXPECT_EQ(config.algorithm(), Algorithm::vanilla);
  // A global config without milestones still decides: no milestones.
  ScopedWarningCapture warnings;
  config.set_global(ModuleLinearQuantizerConfig{});
  EXPECT_FALSE(config.milestones().has_value());
}

TEST(LinearQuantizerConfig, WholeModelSettingsFallBackToTypeThenNameConfigs) {
  ScopedWarningCapture warnings;
  auto config = LinearQuantizerConfig::from_yaml(
      "global_config: null\n"
      "module_type_configs:\n"
      "  Conv2d: null\n"
      "  Linear: {algorithm: learnable, quantization_scheme: affine, milestones: [1, 2, 3, 4]}\n"
      "module_name_configs:\n"
      "  fc: {algorithm: learnable, quantization_scheme: affine}\n");
  EXPECT_EQ(config.milestones(), (Milestones{1, 2, 3, 4}));
  EXPECT_EQ(config.quantization_scheme(), QuantizationScheme::affine);
  EXPECT_EQ(config.algorithm(), Algorithm::learnable);

  config.set_module_type("Linear", std::nullopt);
  EXPECT_FALSE(config.milestones().has_value());  // now from the name config "fc"
  EXPECT_EQ(config.algorithm(), Algorithm::learnable);
  config.set_module_name("fc", std::nullopt);
  EXPECT_FALSE(config.milestones().has_value());  // every config is null: the defaults
  EXPECT_EQ(config.quantization_scheme(), QuantizationScheme::symmetric);
  EXPECT_EQ(config.algorithm(), Algorithm::vanilla);
}

TEST(LinearQuantizerConfig, ValidateChecksHandBuiltConfigs) {
  LinearQuantizerConfig config;
  config.global_config->milestones = Milestones{0, 1, -2, 3};
  EXPECT_TRUE(starts_with(config_error([&] { config.validate(); }),
                          "config.global_config.milestones[2]: -2 is negative"));

  LinearQuantizerConfig types;
  types.module_type_configs = {{"Conv2d", std::nullopt}, {"torch.nn.Conv2d", std::nullopt}};
  EXPECT_EQ(config_error([&] { types.validate(); }),
            "config.module_type_configs[\"torch.nn.Conv2d\"]: names the same module type as "
            "config.module_type_configs[\"Conv2d\"]; keep one entry");

  LinearQuantizerConfig names;
  names.module_name_configs = {{"fc", std::nullopt}, {"fc", ModuleLinearQuantizerConfig{}}};
  EXPECT_EQ(config_error([&] { names.validate(); }),
            "config.module_name_configs[\"fc\"]: names the same module name as "
            "config.module_name_configs[\"fc\"]; keep one entry");

  EXPECT_EQ(config_error([] { LinearQuantizerConfig{}.set_module_name("", std::nullopt); }),
            "config.module_name_configs[\"\"]: empty module name; use the qualified name of a "
            "submodule such as layer1.0.conv1");
}

TEST(LinearQuantizerConfig, EqualityIsOrderSensitive) {
  LinearQuantizerConfig a;
  a.set_module_name("x", std::nullopt).set_module_name("y", std::nullopt);
  LinearQuantizerConfig b;
  b.set_module_name("y", std::nullopt).set_module_name("x", std::nullopt);
  EXPECT_NE(a, b);
  LinearQuantizerConfig c;
  c.set_module_name("x", std::nullopt).set_module_name("y", std::nullopt);
  EXPECT_EQ(a, c);
  c.preserved_attributes.push_back("p");
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace linquant
