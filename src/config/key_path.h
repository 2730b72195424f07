// Key paths used at the start of every config error and warning, e.g.
// config.module_name_configs["layer1.0"].milestones[2], and the short rendering of a
// document value that follows them ("got ...").
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace linquant::config_detail {

// ordered_json keeps the document order, which decides the effective milestones.
using Document = nlohmann::ordered_json;

// The root of every path, also when a module config is parsed on its own.
inline const char* const kRootPath = "config";

// A JSON string literal: quotes and escapes exactly as a user would write the key.
inline std::string quoted(const std::string& text) {
  return Document(text).dump(-1, ' ', false, Document::error_handler_t::replace);
}

inline std::string field_path(const std::string& parent, const std::string& key) {
  return parent + "." + key;
}

// Entries of the two module maps are keyed by names that contain dots, so they are
// written in brackets to keep the path unambiguous.
inline std::string entry_path(const std::string& parent, const std::string& key) {
  return parent + "[" + quoted(key) + "]";
}

inline std::string index_path(const std::string& parent, std::size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

// For walkers that see the document before the schema does (duplicate-key checks): the
// children of the two module maps are entries, every other child is a field.
inline std::string child_path(const std::string& parent, const std::string& key) {
  const std::string root = kRootPath;
  if (parent == root + ".module_type_configs" || parent == root + ".module_name_configs") {
    return entry_path(parent, key);
  }
  return field_path(parent, key);
}

// The offending value as the user would recognise it, cut short so that a whole
// sub-document does not flood the message.
inline std::string describe(const Document& value) {
  constexpr std::size_t kMaxLength = 60;
  // JSON has no infinities or NaN (dump() would print null); YAML's .inf and .nan do.
  if (value.is_number_float() && !std::isfinite(value.get<double>())) {
    const double number = value.get<double>();
    return std::isnan(number) ? ".nan" : (number > 0 ? ".inf" : "-.inf");
  }
  std::string text = value.dump(-1, ' ', false, Document::error_handler_t::replace);
  if (text.size() > kMaxLength) text = text.substr(0, kMaxLength - 3) + "...";
  return text;
}

}  // namespace linquant::config_detail
