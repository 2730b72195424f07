// Every kind of bad input: each fails with a ConfigError whose message starts with the key
// path of the offending value and says what is allowed. JSON and YAML share one validator,
// so most cases are checked in both formats.
#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "config_test_helpers.h"
#include "linquant/config/linear_quantizer_config.h"

namespace linquant {
namespace {

using testing::config_error;
using testing::contains;
using testing::starts_with;

std::string json_error(const std::string& text) {
  return config_error([&] { LinearQuantizerConfig::from_json(text); });
}

std::string yaml_error(const std::string& text) {
  return config_error([&] { LinearQuantizerConfig::from_yaml(text); });
}

// Found by scripts/fuzz.sh: Debian's yaml-cpp 0.7 reads these as endless runs of empty
// documents; the second one ends the parse. Each case names where it starts.
TEST(ConfigErrors, TextThatYamlCppTakesForEndlessDocumentsIsRefused) {
  const std::pair<std::string, std::string> cases[] = {
      {"\n,a", "line 2, column 1"},
      {"\n ,a", "line 2, column 2"},
      {"- 1\n,a", "line 2, column 1"},
      {"# c\n,ecsymm*o3{", "line 2, column 1"},
      {"{a: 1}, b", "line 1, column 7"},
      {"[1] ,b", "line 1, column 5"},
      // A '"' inside a plain scalar opens no quoted string (the third fuzzer finding).
      {"{1a\": {b: [0]}, \"c\"}, \"d\x01\"e}}}", "line 1, column 21"},
      {std::string("# comment\0 more\n, a", 19), "line 2, column 1"},
  };
  for (const auto& [text, where] : cases) {
    EXPECT_EQ(yaml_error(text), "config: " + where +
                                    ": a second YAML document starts here (after a '---' line, or "
                                    "at a ',' outside any [...] or {...}); a config is a single "
                                    "document")
        << text;
  }
  // A comma inside a flow list, or inside an indented block, is not refused.
  EXPECT_NO_THROW(LinearQuantizerConfig::from_yaml("\nnon_traceable_module_names: [a\n,b]\n"));
  EXPECT_NE(yaml_error("\nglobal_config: |\n  ,a\n").find("global_config"), std::string::npos);
}

TEST(ConfigErrors, UnknownWeightDtypeListsTheAllowedValues) {
  const std::string expected =
      "config.module_name_configs[\"conv1\"].weight_dtype: \"int3\" is not one of qint4, quint4, "
      "qint8, quint8, float32";
  EXPECT_EQ(json_error(R"({"module_name_configs": {"conv1": {"weight_dtype": "int3"}}})"), expected);
  EXPECT_EQ(yaml_error("module_name_configs:\n  conv1:\n    weight_dtype: int3\n"), expected);
}

TEST(ConfigErrors, ActivationDtypeIsQuint8OrFloat32Only) {
  EXPECT_EQ(json_error(R"({"global_config": {"activation_dtype": "uint8"}})"),
            "config.global_config.activation_dtype: \"uint8\" is not one of quint8, float32");
  EXPECT_EQ(yaml_error("global_config: {activation_dtype: qint8}"),
            "config.global_config.activation_dtype: \"qint8\" is not one of quint8, float32");
  EXPECT_EQ(yaml_error("global_config: {activation_dtype: torch.qint8}"),
            "config.global_config.activation_dtype: \"torch.qint8\" is not one of quint8, float32");
}

TEST(ConfigErrors, OtherEnumsListTheirValues) {
  EXPECT_EQ(json_error(R"({"global_config": {"algorithm": "lsq"}})"),
            "config.global_config.algorithm: \"lsq\" is not one of vanilla, learnable");
  EXPECT_EQ(json_error(R"({"global_config": {"weight_observer": "minmax"}})"),
            "config.global_config.weight_observer: \"minmax\" is not one of "
            "moving_average_min_max, min_max, ema_min_max");
  EXPECT_EQ(yaml_error("global_config:\n  activation_observer: ema\n"),
            "config.global_config.activation_observer: \"ema\" is not one of "
            "moving_average_min_max, min_max, ema_min_max");
  EXPECT_EQ(json_error(R"({"global_config": {"quantization_scheme": "asymmetric"}})"),
            "config.global_config.quantization_scheme: \"asymmetric\" is not one of symmetric, affine");
}

TEST(ConfigErrors, EnumsMustBeStrings) {
  EXPECT_EQ(json_error(R"({"global_config": {"weight_dtype": 8}})"),
            "config.global_config.weight_dtype: expected a string, one of qint4, quint4, qint8, "
            "quint8, float32, got 8");
  EXPECT_EQ(yaml_error("global_config:\n  algorithm:\n"),
            "config.global_config.algorithm: expected a string, one of vanilla, learnable, got null");
}

TEST(ConfigErrors, WeightPerChannelMustBeABoolean) {
  EXPECT_EQ(json_error(R"({"global_config": {"weight_per_channel": "yes"}})"),
            "config.global_config.weight_per_channel: expected true or false, got \"yes\"");
  // YAML 1.2: yes/no are strings, and quoted "true" is a string too.
  EXPECT_EQ(yaml_error("global_config:\n  weight_per_channel: yes\n"),
            "config.global_config.weight_per_channel: expected true or false, got \"yes\"");
  EXPECT_EQ(yaml_error("global_config:\n  weight_per_channel: \"true\"\n"),
            "config.global_config.weight_per_channel: expected true or false, got \"true\"");
  EXPECT_EQ(json_error(R"({"global_config": {"weight_per_channel": 1}})"),
            "config.global_config.weight_per_channel: expected true or false, got 1");
}

TEST(ConfigErrors, MilestonesNeedExactlyFourValues) {
  EXPECT_EQ(json_error(R"({"global_config": {"milestones": [0, 2]}})"),
            "config.global_config.milestones: expected a list of 4 integers, got 2 values");
  EXPECT_EQ(yaml_error("global_config:\n  milestones: [0]\n"),
            "config.global_config.milestones: expected a list of 4 integers, got 1 value");
  EXPECT_EQ(yaml_error("global_config:\n  milestones: [0, 1, 2, 3, 4]\n"),
            "config.global_config.milestones: expected a list of 4 integers, got 5 values");
  EXPECT_EQ(json_error(R"({"global_config": {"milestones": "0,1,2,3"}})"),
            "config.global_config.milestones: expected null or a list of 4 integers, got \"0,1,2,3\"");
}

TEST(ConfigErrors, MilestonesAreNonNegativeIntegers) {
  EXPECT_TRUE(starts_with(json_error(R"({"global_config": {"milestones": [0, -3, 2, 3]}})"),
                          "config.global_config.milestones[1]: -3 is negative; milestones are "
                          "step counts >= 0"));
  EXPECT_EQ(json_error(R"({"global_config": {"milestones": [0, 1.5, 2, 3]}})"),
            "config.global_config.milestones[1]: 1.5 is not an integer; milestones are step counts");
  EXPECT_EQ(json_error(R"({"global_config": {"milestones": [0, 1, "2", 3]}})"),
            "config.global_config.milestones[2]: expected an integer, got \"2\"");
  EXPECT_EQ(json_error(R"({"global_config": {"milestones": [0, 1, 2, true]}})"),
            "config.global_config.milestones[3]: expected an integer, got true");
  EXPECT_EQ(yaml_error("global_config:\n  milestones: [0, 1, '2', 3]\n"),
            "config.global_config.milestones[2]: expected an integer, got \"2\"");
  EXPECT_EQ(yaml_error("global_config:\n  milestones: [0, 1, 2, null]\n"),
            "config.global_config.milestones[3]: expected an integer, got null");
  EXPECT_EQ(json_error(R"({"global_config": {"milestones": [0, 1, 2, 18446744073709551615]}})"),
            "config.global_config.milestones[3]: 18446744073709551615 is too large for a step count");
  EXPECT_EQ(yaml_error("global_config: {milestones: [0, .inf, 2, 3]}"),
            "config.global_config.milestones[1]: .inf is not an integer; milestones are step counts");
  EXPECT_EQ(json_error(R"({"global_config": {"milestones": [0, 1, 2, 1e30]}})"),
            "config.global_config.milestones[3]: 1e+30 is too large for a step count");
}

TEST(ConfigErrors, IntegralNumbersAreAcceptedAsSteps) {
  const auto config = LinearQuantizerConfig::from_json(
      R"({"global_config": {"milestones": [0, 1e3, 2000.0, 9223372036854775807]}})");
  EXPECT_EQ(config.milestones(), (Milestones{0, 1000, 2000, 9223372036854775807}));
  const auto yaml = LinearQuantizerConfig::from_yaml("global_config:\n  milestones: [+0, 0x10, 0o10, 1.0e2]\n");
  EXPECT_EQ(yaml.milestones(), (Milestones{0, 16, 8, 100}));
}

TEST(ConfigErrors, UnknownKeysListTheAllowedKeys) {
  EXPECT_EQ(json_error(R"({"module_type_configs": {"Conv2d": {"weight_bits": 4}}})"),
            "config.module_type_configs[\"Conv2d\"]: unknown key \"weight_bits\" (allowed: "
            "algorithm, weight_dtype, weight_observer, weight_per_channel, activation_dtype, "
            "activation_observer, quantization_scheme, milestones)");
  EXPECT_EQ(yaml_error("global: {}\n"),
            "config: unknown key \"global\" (allowed: global_config, module_type_configs, "
            "module_name_configs, non_traceable_module_names, preserved_attributes)");
}

TEST(ConfigErrors, ContainersMustHaveTheRightShape) {
  EXPECT_EQ(json_error("[]"),
            "config: expected an object with keys global_config, module_type_configs, "
            "module_name_configs, non_traceable_module_names, preserved_attributes, got []");
  EXPECT_TRUE(starts_with(yaml_error("- global_config\n"), "config: expected an object with keys"));
  EXPECT_TRUE(starts_with(json_error("42\n"), "config: expected an object"));
  EXPECT_EQ(json_error(R"({"global_config": "default"})"),
            "config.global_config: expected a module config (an object) or null, got \"default\"");
  EXPECT_EQ(json_error(R"({"module_type_configs": ["Conv2d"]})"),
            "config.module_type_configs: expected an object mapping module types to module "
            "configs or null, got [\"Conv2d\"]");
  EXPECT_EQ(yaml_error("module_name_configs:\n  fc: 8\n"),
            "config.module_name_configs[\"fc\"]: expected a module config (an object) or null, got 8");
}

TEST(ConfigErrors, NameListsHoldStrings) {
  EXPECT_EQ(json_error(R"({"non_traceable_module_names": ["a", "b", 3]})"),
            "config.non_traceable_module_names[2]: expected a string, got 3");
  EXPECT_EQ(yaml_error("preserved_attributes: [x, {y: 1}]\n"),
            "config.preserved_attributes[1]: expected a string, got {\"y\":1}");
  EXPECT_EQ(json_error(R"({"preserved_attributes": "x"})"),
            "config.preserved_attributes: expected a list of strings, got \"x\"");
}

TEST(ConfigErrors, LongValuesAreShortenedInMessages) {
  const std::string long_name(200, 'a');
  const auto message = json_error(R"({"global_config": {"weight_dtype": ")" + long_name + R"("}})");
  EXPECT_TRUE(contains(message, "...\" is not one of") || contains(message, "... is not one of"));
  EXPECT_LT(message.size(), 200u);
}

TEST(ConfigErrors, MalformedJsonReportsLineAndColumn) {
  const auto message = json_error("{\n  \"global_config\": {\n    \"milestones\": [0, 1,, 2]\n  }\n}");
  EXPECT_TRUE(starts_with(message, "config: line 3, column 25: syntax error")) << message;
  EXPECT_TRUE(starts_with(json_error("{\"global_config\": "), "config: line 1, column 19: ")) ;
  EXPECT_TRUE(starts_with(json_error("{\n  \"a\": tru\n}"), "config: line 2, column 11: syntax error"));
}

TEST(ConfigErrors, MalformedYamlReportsLineAndColumn) {
  const auto message = yaml_error("global_config:\n  milestones: [0, 1\nmodule_type_configs: {}\n");
  EXPECT_TRUE(starts_with(message, "config: line 3, column ")) << message;
  EXPECT_TRUE(contains(message, "end of sequence flow not found"));
  EXPECT_TRUE(starts_with(yaml_error("a:\n  b: 1\n c: 2\n"), "config: line 3, column 2: "));
}

TEST(ConfigErrors, RepeatedKeysAreRefused) {
  EXPECT_EQ(json_error(R"({"global_config": {"weight_dtype": "qint8", "weight_dtype": "qint4"}})"),
            "config.global_config: duplicate key \"weight_dtype\"; each key may appear once");
  EXPECT_EQ(json_error(R"({"module_name_configs": {"a": {}, "b": null, "a": null}})"),
            "config.module_name_configs: duplicate key \"a\"; each key may appear once");
  EXPECT_EQ(json_error(R"({"module_name_configs": {"l.0": {"algorithm": "vanilla", "algorithm": "vanilla"}}})"),
            "config.module_name_configs[\"l.0\"]: duplicate key \"algorithm\"; each key may appear once");
  EXPECT_EQ(yaml_error("global_config:\n  weight_dtype: qint8\n  weight_dtype: qint4\n"),
            "config.global_config: line 3, column 3: duplicate key \"weight_dtype\"; each key may "
            "appear once");
}

TEST(ConfigErrors, YamlSpecificShapesAreRefused) {
  EXPECT_TRUE(starts_with(yaml_error("global_config: {}\n---\nglobal_config: {}\n"),
                          "config: line 2, column 1: a second YAML document starts here"));
  EXPECT_TRUE(starts_with(yaml_error("module_name_configs:\n  ? [a, b]\n  : null\n"),
                          "config.module_name_configs: line 2, column 5: keys must be strings"));
}

TEST(ConfigErrors, CrossConfigSchemeMustAgree) {
  EXPECT_EQ(json_error(R"({"global_config": {},
                          "module_type_configs": {"Linear": {"quantization_scheme": "affine"}}})"),
            "config.module_type_configs[\"Linear\"].quantization_scheme: \"affine\" differs from "
            "\"symmetric\" in config.global_config; one quantization_scheme applies to the whole "
            "model, so every module config must use the same");
  // Without a global config the first non-null type config is the reference.
  EXPECT_TRUE(starts_with(
      yaml_error("global_config: null\n"
                 "module_type_configs:\n  Conv2d: null\n  Linear: {quantization_scheme: affine}\n"
                 "module_name_configs:\n  fc: {}\n"),
      "config.module_name_configs[\"fc\"].quantization_scheme: \"symmetric\" differs from "
      "\"affine\" in config.module_type_configs[\"Linear\"]"));
}

TEST(ConfigErrors, CrossConfigAlgorithmMustAgree) {
  EXPECT_TRUE(starts_with(
      json_error(R"({"global_config": {"algorithm": "learnable"}, "module_name_configs": {"fc": {}}})"),
      "config.module_name_configs[\"fc\"].algorithm: \"vanilla\" differs from \"learnable\" in "
      "config.global_config; one algorithm applies to the whole model"));
}

TEST(ConfigErrors, FirstErrorInDocumentOrderIsReported) {
  EXPECT_TRUE(starts_with(json_error(R"({"module_name_configs": {"x": {"algorithm": 1}},
                                         "global_config": {"algorithm": 2}})"),
                          "config.module_name_configs[\"x\"].algorithm"));
}

}  // namespace
}  // namespace linquant
