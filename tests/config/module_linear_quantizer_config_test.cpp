// ModuleLinearQuantizerConfig: coremltools' defaults, the derived bit width, the setters,
// and parsing a module config on its own (root path "config").
#include "linquant/config/module_linear_quantizer_config.h"

#include <gtest/gtest.h>

#include "config_test_helpers.h"

namespace linquant {
namespace {

using testing::config_error;
using testing::contains;

TEST(ModuleLinearQuantizerConfig, DefaultsMatchCoremltools) {
  const ModuleLinearQuantizerConfig config;
  EXPECT_EQ(config.algorithm, Algorithm::vanilla);
  EXPECT_EQ(config.weight_dtype, WeightDtype::qint8);
  EXPECT_EQ(config.weight_observer, ObserverType::moving_average_min_max);
  EXPECT_TRUE(config.weight_per_channel);
  EXPECT_EQ(config.activation_dtype, ActivationDtype::quint8);
  EXPECT_EQ(config.activation_observer, ObserverType::moving_average_min_max);
  EXPECT_EQ(config.quantization_scheme, QuantizationScheme::symmetric);
  EXPECT_FALSE(config.milestones.has_value());
  EXPECT_EQ(config.weight_n_bits(), 8);
}

TEST(ModuleLinearQuantizerConfig, WeightNBitsFollowsTheDtype) {
  ModuleLinearQuantizerConfig config;
  EXPECT_EQ(config.set_weight_dtype(WeightDtype::qint4).weight_n_bits(), 4);
  EXPECT_EQ(config.set_weight_dtype(WeightDtype::quint4).weight_n_bits(), 4);
  EXPECT_EQ(config.set_weight_dtype(WeightDtype::qint8).weight_n_bits(), 8);
  EXPECT_EQ(config.set_weight_dtype(WeightDtype::quint8).weight_n_bits(), 8);
  EXPECT_EQ(config.set_weight_dtype(WeightDtype::float32).weight_n_bits(), 32);
}

TEST(ModuleLinearQuantizerConfig, FluentSettersChain) {
  const auto config = ModuleLinearQuantizerConfig{}
                          .set_algorithm(Algorithm::learnable)
                          .set_weight_dtype(WeightDtype::quint4)
                          .set_weight_observer(ObserverType::min_max)
                          .set_weight_per_channel(false)
                          .set_activation_dtype(ActivationDtype::float32)
                          .set_activation_observer(ObserverType::ema_min_max)
                          .set_quantization_scheme(QuantizationScheme::affine)
                          .set_milestones(Milestones{0, 10, 20, 30});
  EXPECT_EQ(config.algorithm, Algorithm::learnable);
  EXPECT_EQ(config.weight_dtype, WeightDtype::quint4);
  EXPECT_EQ(config.weight_observer, ObserverType::min_max);
  EXPECT_FALSE(config.weight_per_channel);
  EXPECT_EQ(config.activation_dtype, ActivationDtype::float32);
  EXPECT_EQ(config.activation_observer, ObserverType::ema_min_max);
  EXPECT_EQ(config.quantization_scheme, QuantizationScheme::affine);
  EXPECT_EQ(config.milestones, (Milestones{0, 10, 20, 30}));
}

TEST(ModuleLinearQuantizerConfig, SetMilestonesRejectsNegativeSteps) {
  ModuleLinearQuantizerConfig config;
  const auto message = config_error([&] { config.set_milestones(Milestones{0, -1, 2, 3}); });
  EXPECT_TRUE(contains(message, "config.milestones[1]: -1 is negative; milestones are step counts >= 0"));
  EXPECT_FALSE(config.milestones.has_value());  // unchanged
  config.set_milestones(std::nullopt);
  EXPECT_FALSE(config.milestones.has_value());
}

TEST(ModuleLinearQuantizerConfig, EqualityComparesEveryField) {
  const ModuleLinearQuantizerConfig a;
  EXPECT_EQ(a, ModuleLinearQuantizerConfig{});
  EXPECT_NE(a, ModuleLinearQuantizerConfig{}.set_weight_per_channel(false));
  EXPECT_NE(a, ModuleLinearQuantizerConfig{}.set_milestones(Milestones{0, 0, 0, 0}));
  EXPECT_NE(a, ModuleLinearQuantizerConfig{}.set_activation_observer(ObserverType::min_max));
}

TEST(ModuleLinearQuantizerConfig, EmptyDocumentsGiveTheDefaults) {
  EXPECT_EQ(ModuleLinearQuantizerConfig::from_json("{}"), ModuleLinearQuantizerConfig{});
  EXPECT_EQ(ModuleLinearQuantizerConfig::from_yaml(""), ModuleLinearQuantizerConfig{});
  EXPECT_EQ(ModuleLinearQuantizerConfig::from_yaml("# nothing here\n"), ModuleLinearQuantizerConfig{});
}

TEST(ModuleLinearQuantizerConfig, ReadsEveryFieldFromJson) {
  const auto config = ModuleLinearQuantizerConfig::from_json(R"({
    "algorithm": "learnable", "weight_dtype": "torch.quint8", "weight_observer": "min_max",
    "weight_per_channel": false, "activation_dtype": "torch.float32",
    "activation_observer": "ema_min_max", "quantization_scheme": "affine",
    "milestones": [0, 100, 200, 300]})");
  EXPECT_EQ(config, ModuleLinearQuantizerConfig{}
                        .set_algorithm(Algorithm::learnable)
                        .set_weight_dtype(WeightDtype::quint8)
                        .set_weight_observer(ObserverType::min_max)
                        .set_weight_per_channel(false)
                        .set_activation_dtype(ActivationDtype::float32)
                        .set_activation_observer(ObserverType::ema_min_max)
                        .set_quantization_scheme(QuantizationScheme::affine)
                        .set_milestones(Milestones{0, 100, 200, 300}));
}

TEST(ModuleLinearQuantizerConfig, ReadsEveryFieldFromYaml) {
  const auto config = ModuleLinearQuantizerConfig::from_yaml(
      "weight_dtype: qint4\n"
      "weight_per_channel: False\n"
      "quantization_scheme: affine\n"
      "milestones: [0, 1000, 1000, 0]\n");
  EXPECT_EQ(config.weight_dtype, WeightDtype::qint4);
  EXPECT_EQ(config.weight_n_bits(), 4);
  EXPECT_FALSE(config.weight_per_channel);
  EXPECT_EQ(config.quantization_scheme, QuantizationScheme::affine);
  EXPECT_EQ(config.milestones, (Milestones{0, 1000, 1000, 0}));
}

TEST(ModuleLinearQuantizerConfig, ErrorsUseTheRootPathConfig) {
  EXPECT_EQ(config_error([] { ModuleLinearQuantizerConfig::from_json(R"({"weight_dtype": "int3"})"); }),
            "config.weight_dtype: \"int3\" is not one of qint4, quint4, qint8, quint8, float32");
  EXPECT_EQ(config_error([] { ModuleLinearQuantizerConfig::from_yaml("weight_bits: 4\n"); }),
            "config: unknown key \"weight_bits\" (allowed: algorithm, weight_dtype, "
            "weight_observer, weight_per_channel, activation_dtype, activation_observer, "
            "quantization_scheme, milestones)");
  EXPECT_TRUE(contains(config_error([] { ModuleLinearQuantizerConfig::from_json("[1, 2]"); }),
                       "config: expected an object with keys algorithm, weight_dtype"));
}

TEST(ModuleLinearQuantizerConfig, WritesEveryFieldAndReadsItBack) {
  const auto config = ModuleLinearQuantizerConfig{}
                          .set_weight_dtype(WeightDtype::quint4)
                          .set_milestones(Milestones{1, 2, 3, 4});
  EXPECT_EQ(ModuleLinearQuantizerConfig::from_json(config.to_json()), config);
  EXPECT_EQ(ModuleLinearQuantizerConfig::from_yaml(config.to_yaml()), config);
  EXPECT_EQ(ModuleLinearQuantizerConfig{}.to_yaml(),
            "algorithm: vanilla\n"
            "weight_dtype: qint8\n"
            "weight_observer: moving_average_min_max\n"
            "weight_per_channel: true\n"
            "activation_dtype: quint8\n"
            "activation_observer: moving_average_min_max\n"
            "quantization_scheme: symmetric\n"
            "milestones: null\n");
  EXPECT_EQ(ModuleLinearQuantizerConfig{}.to_json(),
            "{\n"
            "  \"algorithm\": \"vanilla\",\n"
            "  \"weight_dtype\": \"qint8\",\n"
            "  \"weight_observer\": \"moving_average_min_max\",\n"
            "  \"weight_per_channel\": true,\n"
            "  \"activation_dtype\": \"quint8\",\n"
            "  \"activation_observer\": \"moving_average_min_max\",\n"
            "  \"quantization_scheme\": \"symmetric\",\n"
            "  \"milestones\": null\n"
            "}\n");
}

}  // namespace
}  // namespace linquant
