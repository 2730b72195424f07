// Document -> config, the single validator behind from_json and from_yaml of both config
// classes. Each check names the key path of the value it rejects and what is allowed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config_document.h"
#include "linquant/common/error.h"
#include "milestone_rules.h"

namespace linquant::config_detail {
namespace {

std::string join(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& word : words) text += (text.empty() ? "" : ", ") + word;
  return text;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ConfigError(path + ": " + what);
}

void expect_object(const Document& value, const std::string& path, const std::string& what) {
  if (!value.is_object()) fail(path, "expected " + what + ", got " + describe(value));
}

void reject_unknown_keys(const Document& object, const std::string& path,
                         const std::vector<std::string>& allowed) {
  for (const auto& item : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      fail(path, "unknown key " + quoted(item.key()) + " (allowed: " + join(allowed) + ")");
    }
  }
}

template <typename Enum>
Enum read_enum(const Document& value, const std::string& path,
               std::optional<Enum> (*parse)(const std::string&),
               const std::vector<std::string>& names) {
  if (!value.is_string()) {
    fail(path, "expected a string, one of " + join(names) + ", got " + describe(value));
  }
  if (auto parsed = parse(value.get<std::string>())) return *parsed;
  fail(path, describe(value) + " is not one of " + join(names));
}

bool read_bool(const Document& value, const std::string& path) {
  if (!value.is_boolean()) fail(path, "expected true or false, got " + describe(value));
  return value.get<bool>();
}

// A step count: any integral number that fits int64 (1000 and 1e3 both mean step 1000).
std::int64_t read_step(const Document& value, const std::string& path) {
  if (value.is_number_integer() && !value.is_number_unsigned()) {
    return value.get<std::int64_t>();
  }
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  if (value.is_number_unsigned()) {
    if (value.get<std::uint64_t>() <= static_cast<std::uint64_t>(kMax)) {
      return static_cast<std::int64_t>(value.get<std::uint64_t>());
    }
    fail(path, describe(value) + " is too large for a step count");
  }
  if (value.is_number_float()) {
    const double number = value.get<double>();
    if (!std::isfinite(number) || std::floor(number) != number) {
      fail(path, describe(value) + " is not an integer; milestones are step counts");
    }
    // 2^63 is the first double past int64's range.
    if (std::fabs(number) >= 9223372036854775808.0) {
      fail(path, describe(value) + " is too large for a step count");
    }
    return static_cast<std::int64_t>(number);
  }
  fail(path, "expected an integer, got " + describe(value));
}

std::optional<Milestones> read_milestones(const Document& value, const std::string& path) {
  if (value.is_null()) return std::nullopt;
  if (!value.is_array()) {
    fail(path, "expected null or a list of 4 integers, got " + describe(value));
  }
  if (value.size() != 4) {
    fail(path, "expected a list of 4 integers, got " + std::to_string(value.size()) +
                   (value.size() == 1 ? " value" : " values"));
  }
  Milestones milestones{};
  for (std::size_t i = 0; i < milestones.size(); ++i) {
    milestones[i] = read_step(value[i], index_path(path, i));
  }
  check_milestones_not_negative(milestones, path);
  return milestones;
}

// null is accepted as an empty list: in YAML an empty value ("key:") is null.
std::vector<std::string> read_string_list(const Document& value, const std::string& path) {
  std::vector<std::string> strings;
  if (value.is_null()) return strings;
  if (!value.is_array()) fail(path, "expected a list of strings, got " + describe(value));
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string()) {
      fail(index_path(path, i), "expected a string, got " + describe(value[i]));
    }
    strings.push_back(value[i].get<std::string>());
  }
  return strings;
}

OptionalModuleConfig read_optional_module_config(const Document& value, const std::string& path) {
  if (value.is_null()) return std::nullopt;
  expect_object(value, path, "a module config (an object) or null");
  return read_module_config(value, path);
}

std::vector<std::pair<std::string, OptionalModuleConfig>> read_config_map(
    const Document& value, const std::string& path, const std::string& key_kind) {
  std::vector<std::pair<std::string, OptionalModuleConfig>> entries;
  if (value.is_null()) return entries;
  expect_object(value, path, "an object mapping " + key_kind + " to module configs or null");
  for (const auto& item : value.items()) {
    entries.emplace_back(item.key(),
                         read_optional_module_config(item.value(), entry_path(path, item.key())));
  }
  return entries;
}

}  // namespace

const std::vector<std::string>& module_config_keys() {
  static const std::vector<std::string> keys{
      "algorithm",          "weight_dtype",       "weight_observer",
      "weight_per_channel", "activation_dtype",   "activation_observer",
      "quantization_scheme", "milestones"};
  return keys;
}

const std::vector<std::string>& linear_config_keys() {
  static const std::vector<std::string> keys{"global_config", "module_type_configs",
                                             "module_name_configs", "non_traceable_module_names",
                                             "preserved_attributes"};
  return keys;
}

ModuleLinearQuantizerConfig read_module_config(const Document& document,
                                               const std::string& path) {
  expect_object(document, path, "an object with keys " + join(module_config_keys()));
  reject_unknown_keys(document, path, module_config_keys());
  ModuleLinearQuantizerConfig config;
  for (const auto& item : document.items()) {
    const std::string& key = item.key();
    const Document& value = item.value();
    const std::string value_path = field_path(path, key);
    if (key == "algorithm") {
      config.algorithm = read_enum(value, value_path, parse_algorithm, algorithm_names());
    } else if (key == "weight_dtype") {
      config.weight_dtype = read_enum(value, value_path, parse_weight_dtype, weight_dtype_names());
    } else if (key == "weight_observer") {
      config.weight_observer =
          read_enum(value, value_path, parse_observer_type, observer_type_names());
    } else if (key == "weight_per_channel") {
      config.weight_per_channel = read_bool(value, value_path);
    } else if (key == "activation_dtype") {
      config.activation_dtype =
          read_enum(value, value_path, parse_activation_dtype, activation_dtype_names());
    } else if (key == "activation_observer") {
      config.activation_observer =
          read_enum(value, value_path, parse_observer_type, observer_type_names());
    } else if (key == "quantization_scheme") {
      config.quantization_scheme =
          read_enum(value, value_path, parse_quantization_scheme, quantization_scheme_names());
    } else if (key == "milestones") {
      config.milestones = read_milestones(value, value_path);
    }
  }
  return config;
}

LinearQuantizerConfig read_linear_config(const Document& document) {
  const std::string root = kRootPath;
  expect_object(document, root, "an object with keys " + join(linear_config_keys()));
  reject_unknown_keys(document, root, linear_config_keys());
  LinearQuantizerConfig config;
  bool has_global_key = false;
  // In document order, so that the first error reported is the first one in the file.
  for (const auto& item : document.items()) {
    const std::string& key = item.key();
    const std::string path = field_path(root, key);
    if (key == "global_config") {
      has_global_key = true;
      config.global_config = read_optional_module_config(item.value(), path);
    } else if (key == "module_type_configs") {
      config.module_type_configs = read_config_map(item.value(), path, "module types");
    } else if (key == "module_name_configs") {
      config.module_name_configs = read_config_map(item.value(), path, "module names");
    } else if (key == "non_traceable_module_names") {
      config.non_traceable_module_names = read_string_list(item.value(), path);
    } else if (key == "preserved_attributes") {
      config.preserved_attributes = read_string_list(item.value(), path);
    }
  }
  // coremltools fills in the default global config only when nothing at all is configured.
  // An explicit null stays null even then: it quantizes like the default config, and
  // keeping it lets a written document read back unchanged.
  if (!has_global_key && (!config.module_type_configs.empty() ||
                          !config.module_name_configs.empty())) {
    config.global_config.reset();
  }
  return config;
}

}  // namespace linquant::config_detail
