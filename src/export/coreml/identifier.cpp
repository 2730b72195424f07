// Identifier sanitizing and uniqueness for MIL names.
#include "linquant/export/coreml/identifier.h"

namespace linquant::coreml {
namespace {

bool is_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_body_char(char c) { return is_letter(c) || is_digit(c) || c == '_' || c == '@'; }

}  // namespace

bool is_valid_identifier(std::string_view name) {
  if (name.empty() || !(is_letter(name[0]) || name[0] == '_')) return false;
  for (char c : name) {
    if (!is_body_char(c)) return false;
  }
  return true;
}

std::string sanitize_identifier(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  if (name.empty() || !(is_letter(name[0]) || name[0] == '_')) out += '_';
  for (char c : name) out += is_body_char(c) ? c : '_';
  return out;
}

std::string NameRegistry::claim(std::string_view wanted) {
  const std::string base = sanitize_identifier(wanted);
  std::string name = base;
  for (int suffix = 1; used_.count(name) != 0; ++suffix) {
    name = base + "_" + std::to_string(suffix);
  }
  used_.insert(name);
  return name;
}

}  // namespace linquant::coreml
