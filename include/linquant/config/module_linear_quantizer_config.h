// ModuleLinearQuantizerConfig: how one module (or the whole model) is quantized.
// Field names, defaults and accepted spellings follow coremltools.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "linquant/config/enums.h"

namespace linquant {

using Milestones = std::array<int64_t, 4>;

struct ModuleLinearQuantizerConfig {
  Algorithm algorithm = Algorithm::vanilla;
  WeightDtype weight_dtype = WeightDtype::qint8;
  ObserverType weight_observer = ObserverType::moving_average_min_max;
  bool weight_per_channel = true;
  ActivationDtype activation_dtype = ActivationDtype::quint8;
  ObserverType activation_observer = ObserverType::moving_average_min_max;
  QuantizationScheme quantization_scheme = QuantizationScheme::symmetric;
  // Steps at which observers start, fake quant starts, observers stop, BatchNorm freezes.
  std::optional<Milestones> milestones;

  // 8 or 4 for integer weights, 32 for float32 (not quantized).
  int weight_n_bits() const;

  // Fluent setters, so a config reads like its YAML.
  ModuleLinearQuantizerConfig& set_algorithm(Algorithm v) { algorithm = v; return *this; }
  ModuleLinearQuantizerConfig& set_weight_dtype(WeightDtype v) { weight_dtype = v; return *this; }
  ModuleLinearQuantizerConfig& set_weight_observer(ObserverType v) { weight_observer = v; return *this; }
  ModuleLinearQuantizerConfig& set_weight_per_channel(bool v) { weight_per_channel = v; return *this; }
  ModuleLinearQuantizerConfig& set_activation_dtype(ActivationDtype v) { activation_dtype = v; return *this; }
  ModuleLinearQuantizerConfig& set_activation_observer(ObserverType v) { activation_observer = v; return *this; }
  ModuleLinearQuantizerConfig& set_quantization_scheme(QuantizationScheme v) { quantization_scheme = v; return *this; }
  // Throws ConfigError for negative values.
  ModuleLinearQuantizerConfig& set_milestones(std::optional<Milestones> v);

  // Parsing: a JSON/YAML object; missing fields take the defaults. Throws ConfigError whose
  // message starts with the key path of the offending entry.
  static ModuleLinearQuantizerConfig from_json(const std::string& text_or_path);
  static ModuleLinearQuantizerConfig from_yaml(const std::string& text_or_path);
  std::string to_json() const;
  std::string to_yaml() const;

  bool operator==(const ModuleLinearQuantizerConfig& other) const;
  bool operator!=(const ModuleLinearQuantizerConfig& other) const { return !(*this == other); }
};

}  // namespace linquant
