// to_json / to_yaml write every field and read back to an equal config, including null
// entries, entry order and module names that need quoting in YAML.
#include <gtest/gtest.h>

#include "linquant/common/warning.h"
#include "linquant/config/linear_quantizer_config.h"

namespace linquant {
namespace {

LinearQuantizerConfig rich_config() {
  LinearQuantizerConfig config;
  config.set_global(ModuleLinearQuantizerConfig{}
                        .set_weight_dtype(WeightDtype::quint4)
                        .set_milestones(Milestones{0, 1000, 1000, 0}))
      .set_module_type("Linear", std::nullopt)
      .set_module_type("Conv2d", ModuleLinearQuantizerConfig{}.set_weight_per_channel(false))
      .set_module_name("layer1.0.conv1", std::nullopt)
      .set_module_name("0", ModuleLinearQuantizerConfig{}.set_activation_dtype(ActivationDtype::float32))
      .set_module_name("yes", std::nullopt)
      .set_module_name("null", std::nullopt)
      .set_module_name("with space: and \"quotes\"", std::nullopt)
      .set_module_name("caf\xc3\xa9", std::nullopt);
  config.non_traceable_module_names = {"head", "1", "true", "~", ""};
  config.preserved_attributes = {"num_classes"};
  return config;
}

TEST(ConfigRoundTrip, JsonReadsBackEqual) {
  const auto config = rich_config();
  EXPECT_EQ(LinearQuantizerConfig::from_json(config.to_json()), config);
  const LinearQuantizerConfig defaults;
  EXPECT_EQ(LinearQuantizerConfig::from_json(defaults.to_json()), defaults);
}

TEST(ConfigRoundTrip, YamlReadsBackEqual) {
  const auto config = rich_config();
  EXPECT_EQ(LinearQuantizerConfig::from_yaml(config.to_yaml()), config) << config.to_yaml();
  const LinearQuantizerConfig defaults;
  EXPECT_EQ(LinearQuantizerConfig::from_yaml(defaults.to_yaml()), defaults);
}

TEST(ConfigRoundTrip, NullGlobalConfigsReadBackNull) {
  LinearQuantizerConfig alone;
  alone.set_global(std::nullopt);
  EXPECT_EQ(LinearQuantizerConfig::from_json(alone.to_json()), alone);
  EXPECT_EQ(LinearQuantizerConfig::from_yaml(alone.to_yaml()), alone);
  LinearQuantizerConfig with_names;
  with_names.set_global(std::nullopt).set_module_name("fc", ModuleLinearQuantizerConfig{});
  EXPECT_EQ(LinearQuantizerConfig::from_json(with_names.to_json()), with_names);
  EXPECT_EQ(LinearQuantizerConfig::from_yaml(with_names.to_yaml()), with_names);
}

TEST(ConfigRoundTrip, JsonAndYamlDescribeTheSameConfig) {
  const auto config = rich_config();
  EXPECT_EQ(LinearQuantizerConfig::from_yaml(config.to_json()), config);  // JSON is YAML too
  EXPECT_EQ(LinearQuantizerConfig::from_json(LinearQuantizerConfig::from_yaml(config.to_yaml()).to_json()),
            config);
}

TEST(ConfigRoundTrip, YamlIsReadable) {
  LinearQuantizerConfig config;
  config.set_global(ModuleLinearQuantizerConfig{}.set_milestones(Milestones{0, 1000, 1000, 0}))
      .set_module_type("Linear", std::nullopt)
      .set_module_name("0", ModuleLinearQuantizerConfig{}.set_weight_dtype(WeightDtype::qint4));
  config.non_traceable_module_names = {"head"};
  EXPECT_EQ(config.to_yaml(),
            "global_config:\n"
            "  algorithm: vanilla\n"
            "  weight_dtype: qint8\n"
            "  weight_observer: moving_average_min_max\n"
            "  weight_per_channel: true\n"
            "  activation_dtype: quint8\n"
            "  activation_observer: moving_average_min_max\n"
            "  quantization_scheme: symmetric\n"
            "  milestones: [0, 1000, 1000, 0]\n"
            "module_type_configs:\n"
            "  Linear: null\n"
            "module_name_configs:\n"
            "  \"0\":\n"
            "    algorithm: vanilla\n"
            "    weight_dtype: qint4\n"
            "    weight_observer: moving_average_min_max\n"
            "    weight_per_channel: true\n"
            "    activation_dtype: quint8\n"
            "    activation_observer: moving_average_min_max\n"
            "    quantization_scheme: symmetric\n"
            "    milestones: null\n"
            "non_traceable_module_names: [head]\n"
            "preserved_attributes: []\n");
}

TEST(ConfigRoundTrip, JsonWritesEveryTopLevelField) {
  LinearQuantizerConfig config;
  config.set_global(std::nullopt);
  EXPECT_EQ(config.to_json(),
            "{\n"
            "  \"global_config\": null,\n"
            "  \"module_type_configs\": {},\n"
            "  \"module_name_configs\": {},\n"
            "  \"non_traceable_module_names\": [],\n"
            "  \"preserved_attributes\": []\n"
            "}\n");
}

}  // namespace
}  // namespace linquant
