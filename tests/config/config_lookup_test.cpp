// Which config a module gets: config_for_name (exact, then parent prefixes),
// config_for_type (spelling-normalized), and config_for_module (all levels combined).
#include <gtest/gtest.h>

#include "linquant/config/linear_quantizer_config.h"

namespace linquant {
namespace {

ModuleLinearQuantizerConfig bits4() {
  return ModuleLinearQuantizerConfig{}.set_weight_dtype(WeightDtype::qint4);
}

ModuleLinearQuantizerConfig per_tensor() {
  return ModuleLinearQuantizerConfig{}.set_weight_per_channel(false);
}

TEST(ConfigForName, ExactMatchWinsOverParents) {
  LinearQuantizerConfig config;
  config.set_module_name("layer1", bits4()).set_module_name("layer1.0.conv1", per_tensor());
  EXPECT_EQ(config.config_for_name("layer1.0.conv1"), OptionalModuleConfig(per_tensor()));
  EXPECT_EQ(config.config_for_name("layer1"), OptionalModuleConfig(bits4()));
}

TEST(ConfigForName, ChildrenInheritTheNearestParent) {
  LinearQuantizerConfig config;
  config.set_module_name("layer1", bits4()).set_module_name("layer1.0", std::nullopt);
  // layer1.0.conv1 -> layer1.0 (null: not quantized), not layer1.
  const auto conv1 = config.config_for_name("layer1.0.conv1");
  ASSERT_TRUE(conv1.has_value());
  EXPECT_FALSE(conv1->has_value());
  EXPECT_EQ(config.config_for_name("layer1.1.conv1"), OptionalModuleConfig(bits4()));
}

TEST(ConfigForName, OnlyWholeComponentsArePrefixes) {
  LinearQuantizerConfig config;
  config.set_module_name("layer1", bits4());
  EXPECT_FALSE(config.config_for_name("layer10").has_value());
  EXPECT_FALSE(config.config_for_name("layer10.conv").has_value());
  EXPECT_FALSE(config.config_for_name("").has_value());
  EXPECT_FALSE(config.config_for_name("fc").has_value());
}

TEST(ConfigForType, SpellingsOfTorchNnTypesMatch) {
  LinearQuantizerConfig config;
  config.set_module_type("Conv2d", bits4()).set_module_type("torch.nn.Linear", std::nullopt);
  for (const char* spelling : {"Conv2d", "nn.Conv2d", "torch.nn.Conv2d",
                               "torch.nn.modules.conv.Conv2d", "torch::nn::Conv2dImpl"}) {
    EXPECT_EQ(config.config_for_type(spelling), OptionalModuleConfig(bits4())) << spelling;
  }
  const auto linear = config.config_for_type("Linear");
  ASSERT_TRUE(linear.has_value());
  EXPECT_FALSE(linear->has_value());
  EXPECT_FALSE(config.config_for_type("Conv1d").has_value());
  EXPECT_FALSE(config.config_for_type("conv2d").has_value());  // case matters
}

TEST(ConfigForType, OtherQualifiedNamesStayDistinct) {
  LinearQuantizerConfig config;
  config.set_module_type("torch.add", std::nullopt);
  EXPECT_TRUE(config.config_for_type("torch.add").has_value());
  EXPECT_FALSE(config.config_for_type("add").has_value());
  EXPECT_FALSE(config.config_for_type("operator.add").has_value());
}

TEST(ConfigForModule, NameBeatsTypeBeatsGlobal) {
  LinearQuantizerConfig config;
  config.set_global(per_tensor())
      .set_module_type("Conv2d", bits4())
      .set_module_name("layer1", std::nullopt);
  EXPECT_EQ(config.config_for_module("stem.conv", "Conv2d"), OptionalModuleConfig(bits4()));
  EXPECT_EQ(config.config_for_module("fc", "Linear"), OptionalModuleConfig(per_tensor()));
  // A parent's name entry also beats the child's type entry, as in torch's QConfigMapping.
  EXPECT_EQ(config.config_for_module("layer1.0.conv1", "Conv2d"), OptionalModuleConfig());
}

TEST(ConfigForModule, NullGlobalMeansTheDefaultWithTheModelsScheme) {
  LinearQuantizerConfig config;
  config.set_global(std::nullopt).set_module_type(
      "Linear", ModuleLinearQuantizerConfig{}
                    .set_quantization_scheme(QuantizationScheme::affine)
                    .set_weight_dtype(WeightDtype::qint4));
  const auto conv = config.config_for_module("conv", "Conv2d");
  ASSERT_TRUE(conv.has_value());
  EXPECT_EQ(conv->weight_dtype, WeightDtype::qint8);
  EXPECT_EQ(conv->quantization_scheme, QuantizationScheme::affine);
  EXPECT_EQ(config.config_for_module("fc", "Linear")->weight_dtype, WeightDtype::qint4);
}

}  // namespace
}  // namespace linquant
