// Which module config applies to a module: by name (with parent-prefix inheritance, as in
// torch's QConfigMapping), by type (spelling-normalized), and all levels combined.
#include <algorithm>
#include <string>

#include "linquant/config/linear_quantizer_config.h"
#include "module_type_name.h"

namespace linquant {

std::optional<OptionalModuleConfig> LinearQuantizerConfig::config_for_name(
    const std::string& qualified_name) const {
  // Walk up "a.b.c" -> "a.b" -> "a"; the root's empty name never matches an entry.
  std::string name = qualified_name;
  while (!name.empty()) {
    const auto match =
        std::find_if(module_name_configs.begin(), module_name_configs.end(),
                     [&](const auto& entry) { return entry.first == name; });
    if (match != module_name_configs.end()) return match->second;
    const std::size_t dot = name.rfind('.');
    name = dot == std::string::npos ? std::string() : name.substr(0, dot);
  }
  return std::nullopt;
}

std::string LinearQuantizerConfig::normalized_type(const std::string& type) {
  return config_detail::normalize_module_type(type);
}

std::optional<OptionalModuleConfig> LinearQuantizerConfig::config_for_type(
    const std::string& type) const {
  const std::string wanted = config_detail::normalize_module_type(type);
  for (const auto& [key, config] : module_type_configs) {
    if (config_detail::normalize_module_type(key) == wanted) return config;
  }
  return std::nullopt;
}

OptionalModuleConfig LinearQuantizerConfig::config_for_module(const std::string& qualified_name,
                                                              const std::string& type) const {
  if (auto by_name = config_for_name(qualified_name)) return *by_name;
  if (auto by_type = config_for_type(type)) return *by_type;
  if (global_config) return global_config;
  // coremltools' fallback when global_config is None: the built-in default qconfig, built
  // with the scheme (and, here, the algorithm) that holds for the whole model.
  ModuleLinearQuantizerConfig fallback;
  fallback.quantization_scheme = quantization_scheme();
  fallback.algorithm = algorithm();
  return fallback;
}

}  // namespace linquant
