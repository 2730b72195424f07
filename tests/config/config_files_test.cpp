// from_json / from_yaml given a file path: reading files, naming the file in syntax errors,
// refusing missing or unreadable files with the OS reason, and telling paths from text.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "config_test_helpers.h"
#include "linquant/config/linear_quantizer_config.h"

namespace linquant {
namespace {

using testing::config_error;
using testing::contains;
using testing::starts_with;

// A scratch directory removed with its files at the end of each test.
class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/linquant_config_test_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    for (const auto& file : files_) std::remove(file.c_str());
    ::rmdir((dir_ + "/subdir").c_str());
    ::rmdir(dir_.c_str());
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }
  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(ConfigFiles, ReadsYamlAndJsonFiles) {
  const auto yaml = write("qat.yaml",
                          "global_config:\n  weight_dtype: qint4\n  milestones: [0, 10, 20, 30]\n");
  const auto json = write("qat.json", R"({"global_config": {"weight_dtype": "qint4",
                                          "milestones": [0, 10, 20, 30]}})");
  const auto from_yaml = LinearQuantizerConfig::from_yaml(yaml);
  EXPECT_EQ(from_yaml.global_config->weight_dtype, WeightDtype::qint4);
  EXPECT_EQ(from_yaml.milestones(), (Milestones{0, 10, 20, 30}));
  EXPECT_EQ(LinearQuantizerConfig::from_json(json), from_yaml);
  EXPECT_EQ(ModuleLinearQuantizerConfig::from_yaml(write("module.yml", "weight_dtype: quint4\n")).weight_dtype,
            WeightDtype::quint4);
}

TEST_F(ConfigFiles, AnyExistingFileIsRead) {
  // No extension, and an empty file is the empty YAML config.
  EXPECT_EQ(LinearQuantizerConfig::from_yaml(write("config", "")), LinearQuantizerConfig{});
  EXPECT_EQ(LinearQuantizerConfig::from_json(write("config.txt", "{}")), LinearQuantizerConfig{});
}

TEST_F(ConfigFiles, WrittenFilesReadBack) {
  LinearQuantizerConfig config;
  config.set_module_name("fc", std::nullopt);
  EXPECT_EQ(LinearQuantizerConfig::from_yaml(write("out.yaml", config.to_yaml())), config);
  EXPECT_EQ(LinearQuantizerConfig::from_json(write("out.json", config.to_json())), config);
}

TEST_F(ConfigFiles, SyntaxErrorsNameTheFile) {
  const auto json = write("bad.json", "{\n  \"global_config\": {\n    \"weight_dtype\": qint8\n  }\n}\n");
  EXPECT_TRUE(starts_with(config_error([&] { LinearQuantizerConfig::from_json(json); }),
                          json + ": line 3, column 21: syntax error"));
  const auto yaml = write("bad.yaml", "global_config:\n  milestones: [0, 1\n");
  EXPECT_TRUE(starts_with(config_error([&] { LinearQuantizerConfig::from_yaml(yaml); }),
                          yaml + ": line 3, column 1: "));
}

TEST_F(ConfigFiles, ValidationErrorsStartWithTheKeyPath) {
  const auto yaml = write("bad_value.yaml", "global_config:\n  weight_dtype: int3\n");
  EXPECT_TRUE(starts_with(config_error([&] { LinearQuantizerConfig::from_yaml(yaml); }),
                          "config.global_config.weight_dtype: \"int3\" is not one of"));
}

TEST_F(ConfigFiles, MissingFilesAreReportedWithTheOsReason) {
  EXPECT_EQ(config_error([] { LinearQuantizerConfig::from_yaml("missing.yaml"); }),
            "cannot read config file 'missing.yaml': No such file or directory");
  EXPECT_EQ(config_error([] { LinearQuantizerConfig::from_json("missing.json"); }),
            "cannot read config file 'missing.json': No such file or directory");
  EXPECT_EQ(config_error([] { ModuleLinearQuantizerConfig::from_yaml("configs/qat"); }),
            "cannot read config file 'configs/qat': No such file or directory");
  const std::string in_file = write("plain_file", "") + "/x.yaml";
  EXPECT_EQ(config_error([&] { LinearQuantizerConfig::from_yaml(in_file); }),
            "cannot read config file '" + in_file + "': Not a directory");
}

TEST_F(ConfigFiles, DirectoriesAreNotConfigFiles) {
  ASSERT_EQ(::mkdir((dir_ + "/subdir").c_str(), 0700), 0);
  EXPECT_EQ(config_error([&] { LinearQuantizerConfig::from_yaml(dir_ + "/subdir"); }),
            "cannot read config file '" + dir_ + "/subdir': Is a directory");
}

TEST(ConfigText, DocumentsAreNotMistakenForPaths) {
  EXPECT_EQ(LinearQuantizerConfig::from_yaml("global_config: {weight_dtype: qint4}").global_config->weight_dtype,
            WeightDtype::qint4);
  EXPECT_EQ(LinearQuantizerConfig::from_yaml("{}"), LinearQuantizerConfig{});
  EXPECT_EQ(LinearQuantizerConfig::from_yaml("   \n"), LinearQuantizerConfig{});
  EXPECT_EQ(LinearQuantizerConfig::from_json("{\"module_name_configs\": {\"fc\": null}}")
                .module_name_configs.size(),
            1u);
  // Not a path (it has a ':'), not an object: a document error, not a file error.
  EXPECT_TRUE(starts_with(config_error([] { LinearQuantizerConfig::from_yaml("[a: 1]"); }),
                          "config: expected an object"));
}

}  // namespace
}  // namespace linquant
