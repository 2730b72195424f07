// LinearQuantizerConfig: the global config, per-type and per-name overrides, and the
// modules left out of capture. Precedence (highest first): module name, module type, global.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "linquant/config/module_linear_quantizer_config.h"

namespace linquant {

// A module config or null; null means "do not quantize this module".
using OptionalModuleConfig = std::optional<ModuleLinearQuantizerConfig>;

class LinearQuantizerConfig {
 public:
  // With no global, type or name config, the global config is the default one.
  LinearQuantizerConfig();

  std::optional<ModuleLinearQuantizerConfig> global_config;
  // Kept in insertion order: the first entry decides milestones when there is no global.
  std::vector<std::pair<std::string, OptionalModuleConfig>> module_type_configs;
  std::vector<std::pair<std::string, OptionalModuleConfig>> module_name_configs;
  std::vector<std::string> non_traceable_module_names;
  std::vector<std::string> preserved_attributes;

  // Each returns *this and re-validates (mixed schemes or algorithms throw ConfigError).
  // Setting a key that is already present replaces its value in place.
  LinearQuantizerConfig& set_global(OptionalModuleConfig config);
  LinearQuantizerConfig& set_module_type(const std::string& type, OptionalModuleConfig config);
  LinearQuantizerConfig& set_module_name(const std::string& name, OptionalModuleConfig config);

  // Effective settings for the whole model: from the global config, else the first non-null
  // type config, else the first non-null name config, else the defaults.
  std::optional<Milestones> milestones() const;
  QuantizationScheme quantization_scheme() const;
  Algorithm algorithm() const;

  // Lookup with coremltools' precedence. The outer optional is empty when no entry applies
  // (then the built-in default config is used by the quantizer); an inner nullopt means
  // the module is explicitly not quantized.
  // config_for_name matches the exact name first, then its parents ("layer1.0.conv1" uses
  // an entry for "layer1.0", then "layer1"). config_for_type ignores a leading "torch.nn." /
  // "nn." (and LibTorch's "torch::nn::...Impl") on both sides: "torch.nn.Conv2d" finds "Conv2d".
  std::optional<OptionalModuleConfig> config_for_name(const std::string& qualified_name) const;
  std::optional<OptionalModuleConfig> config_for_type(const std::string& type) const;
  // The spelling config_for_type compares type names in: "torch.nn.Conv2d" -> "Conv2d".
  static std::string normalized_type(const std::string& type);
  // The config one module gets, all levels combined as torch's QConfigMapping does: its name
  // (or nearest parent name), else its type, else global_config; if global_config is null,
  // the default config with the model's quantization_scheme and algorithm. nullopt: the
  // module is not quantized.
  OptionalModuleConfig config_for_module(const std::string& qualified_name,
                                         const std::string& type) const;

  // Checks the cross-config rules (one scheme, one algorithm) and warns about milestones
  // out of their usual order. Called by every parser and setter.
  void validate() const;

  // Text may be the document itself or a path to a file; both throw ConfigError with the
  // key path, and for malformed documents the line and column.
  static LinearQuantizerConfig from_json(const std::string& text_or_path);
  static LinearQuantizerConfig from_yaml(const std::string& text_or_path);
  std::string to_json() const;
  std::string to_yaml() const;

  bool operator==(const LinearQuantizerConfig& other) const;
  bool operator!=(const LinearQuantizerConfig& other) const { return !(*this == other); }
};

}  // namespace linquant
