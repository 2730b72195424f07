// Document -> block-style YAML. Written here instead of with YAML::Emitter so that the
// quoting rule matches the reader exactly: a string is written plain only when
// resolve_plain_scalar would read it back as that same string.
#include <string>

#include "document.h"
#include "yaml_scalar.h"

namespace linquant::config_detail {
namespace {

// Plain scalars are limited to names made of letters, digits and _ . - / that start with a
// letter or _, which covers field values, type names and dotted module paths. Everything
// else, e.g. the module name "0" of a Sequential, is double-quoted; JSON's escapes are
// valid in YAML double-quoted scalars.
bool can_be_plain(const std::string& text) {
  if (text.empty()) return false;
  const auto is_name_start = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  const auto is_name_char = [&](char c) {
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '/';
  };
  if (!is_name_start(text[0])) return false;
  for (char c : text) {
    if (!is_name_char(c)) return false;
  }
  return resolve_plain_scalar(text).is_string() && !is_yaml11_boolean(text);
}

std::string scalar_text(const Document& value) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    return can_be_plain(text) ? text : quoted(text);
  }
  return value.dump();  // null, true/false and numbers are spelled the same in YAML
}

bool is_scalar(const Document& value) { return !value.is_object() && !value.is_array(); }

// Values that fit on the line of their key: scalars, empty containers, and lists of
// scalars (written in flow style, e.g. milestones: [0, 1000, 1000, 0]).
bool fits_inline(const Document& value) {
  if (is_scalar(value) || value.empty()) return true;
  if (!value.is_array()) return false;
  for (const auto& item : value) {
    if (!is_scalar(item)) return false;
  }
  return true;
}

std::string inline_text(const Document& value) {
  if (value.is_object()) return "{}";
  if (value.is_array()) {
    std::string text = "[";
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (i > 0) text += ", ";
      text += scalar_text(value[i]);
    }
    return text + "]";
  }
  return scalar_text(value);
}

// Writes a non-empty object or a list that does not fit inline, one entry per line.
void write_block(std::string& out, const Document& value, int indent) {
  const std::string pad(static_cast<std::size_t>(indent), ' ');
  if (value.is_object()) {
    for (const auto& [key, child] : value.items()) {
      out += pad + scalar_text(key) + ":";
      if (fits_inline(child)) {
        out += " " + inline_text(child) + "\n";
      } else {
        out += "\n";
        write_block(out, child, indent + 2);
      }
    }
    return;
  }
  for (const auto& item : value) {
    if (fits_inline(item)) {
      out += pad + "- " + inline_text(item) + "\n";
    } else {
      out += pad + "-\n";
      write_block(out, item, indent + 2);
    }
  }
}

}  // namespace

std::string write_yaml(const Document& document) {
  if (fits_inline(document)) return inline_text(document) + "\n";
  std::string out;
  write_block(out, document, 0);
  return out;
}

}  // namespace linquant::config_detail
