// MIL identifiers: names of inputs, variables and operations must match
// [A-Za-z_][A-Za-z0-9_@]* and be unique within a program.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>

namespace linquant::coreml {

bool is_valid_identifier(std::string_view name);

// Maps any text to a valid identifier: every character outside [A-Za-z0-9_@] becomes '_'
// ("conv.0.weight" -> "conv_0_weight"), and a leading digit or '@' (or an empty name) gets a
// '_' prefix. Distinct inputs can map to the same identifier; NameRegistry resolves that.
std::string sanitize_identifier(std::string_view name);

// Hands out sanitized identifiers that were not handed out before, by appending "_1", "_2", ...
class NameRegistry {
 public:
  std::string claim(std::string_view wanted);
  bool contains(const std::string& name) const { return used_.count(name) != 0; }

 private:
  std::unordered_set<std::string> used_;
};

}  // namespace linquant::coreml
