// Keeps docs/config.md honest: its C++ snippet compiles and behaves as described, and its
// YAML and JSON examples parse to the same config without warnings.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "linquant/common/warning.h"
#include "linquant/config/linear_quantizer_config.h"

namespace linquant {
namespace {

// The first fenced block of the given language in the config page.
std::string first_block(const std::string& language) {
  std::ifstream file(std::string(LINQUANT_TEST_DATA_DIR) + "/../../docs/config.md");
  std::stringstream page;
  page << file.rdbuf();
  const std::string text = page.str();
  const std::string fence = "```" + language + "\n";
  const std::size_t start = text.find(fence);
  if (start == std::string::npos) return {};
  const std::size_t body = start + fence.size();
  return text.substr(body, text.find("```", body) - body);
}

TEST(ConfigDocExamples, CodeSnippetBuildsTheDescribedConfig) {
  linquant::LinearQuantizerConfig config;
  config.set_global(linquant::ModuleLinearQuantizerConfig{}.set_milestones({{0, 1000, 1000, 0}}))
      .set_module_type("Linear", linquant::ModuleLinearQuantizerConfig{}
                                     .set_weight_dtype(linquant::WeightDtype::qint4))
      .set_module_name("classifier", std::nullopt);
  EXPECT_EQ(config.milestones(), (Milestones{0, 1000, 1000, 0}));
  EXPECT_EQ(config.config_for_module("classifier.fc", "Linear"), OptionalModuleConfig());
  EXPECT_EQ(config.config_for_module("fc", "Linear")->weight_n_bits(), 4);
}

TEST(ConfigDocExamples, YamlAndJsonExamplesAgree) {
  const std::string yaml = first_block("yaml");
  const std::string json = first_block("json");
  ASSERT_FALSE(yaml.empty());
  ASSERT_FALSE(json.empty());
  ScopedWarningCapture warnings;
  const auto from_yaml = LinearQuantizerConfig::from_yaml(yaml);
  const auto from_json = LinearQuantizerConfig::from_json(json);
  EXPECT_EQ(from_yaml, from_json);
  EXPECT_EQ(warnings.count(), 0) << warnings.text();
  EXPECT_EQ(from_yaml.milestones(), (Milestones{0, 100, 1000, 2000}));
  EXPECT_EQ(from_yaml.config_for_module("0.conv", "Conv2d"), OptionalModuleConfig());
  EXPECT_EQ(from_yaml.config_for_module("layer4.1.conv2", "Conv2d")->activation_dtype,
            ActivationDtype::float32);
  EXPECT_EQ(from_yaml.config_for_module("layer4.1.fc", "Linear")->weight_dtype, WeightDtype::qint4);
}

}  // namespace
}  // namespace linquant
