// ModuleLinearQuantizerConfig: derived bit width, the checked milestone setter, and the
// JSON/YAML entry points, which share the document reader with LinearQuantizerConfig.
#include "linquant/config/module_linear_quantizer_config.h"

#include "config_document.h"
#include "document.h"
#include "milestone_rules.h"

namespace linquant {

using config_detail::kRootPath;

int ModuleLinearQuantizerConfig::weight_n_bits() const {
  switch (weight_dtype) {
    case WeightDtype::qint4:
    case WeightDtype::quint4:
      return 4;
    case WeightDtype::qint8:
    case WeightDtype::quint8:
      return 8;
    case WeightDtype::float32:
      break;
  }
  return 32;
}

ModuleLinearQuantizerConfig& ModuleLinearQuantizerConfig::set_milestones(
    std::optional<Milestones> v) {
  if (v) config_detail::check_milestones_not_negative(*v, std::string(kRootPath) + ".milestones");
  milestones = v;
  return *this;
}

ModuleLinearQuantizerConfig ModuleLinearQuantizerConfig::from_json(
    const std::string& text_or_path) {
  const auto source = config_detail::load_source(text_or_path);
  return config_detail::read_module_config(config_detail::parse_json(source), kRootPath);
}

ModuleLinearQuantizerConfig ModuleLinearQuantizerConfig::from_yaml(
    const std::string& text_or_path) {
  const auto source = config_detail::load_source(text_or_path);
  return config_detail::read_module_config(config_detail::parse_yaml(source), kRootPath);
}

std::string ModuleLinearQuantizerConfig::to_json() const {
  return config_detail::write_json(config_detail::to_document(*this));
}

std::string ModuleLinearQuantizerConfig::to_yaml() const {
  return config_detail::write_yaml(config_detail::to_document(*this));
}

bool ModuleLinearQuantizerConfig::operator==(const ModuleLinearQuantizerConfig& other) const {
  return algorithm == other.algorithm && weight_dtype == other.weight_dtype &&
         weight_observer == other.weight_observer &&
         weight_per_channel == other.weight_per_channel &&
         activation_dtype == other.activation_dtype &&
         activation_observer == other.activation_observer &&
         quantization_scheme == other.quantization_scheme && milestones == other.milestones;
}

}  // namespace linquant
