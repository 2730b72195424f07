// The exception type every linquant failure derives from, so callers can catch one type.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace linquant {

// Messages name the place (a config key path, a node, a file) and what would fix it.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Bad user input in a configuration (JSON, YAML or built in code).
class ConfigError : public Error {
 public:
  using Error::Error;
};

// Unusable tensors or arguments given to a numeric primitive.
class QuantError : public Error {
 public:
  using Error::Error;
};

// A data set that cannot be read (missing, truncated, wrong format).
class DataError : public Error {
 public:
  using Error::Error;
};

// `text` (e.g. a LibTorch error with its context lines) as one line: its non-empty lines joined
// by "; ", cut after `max_chars`.
std::string one_line(const std::string& text, size_t max_chars = std::string::npos);

}  // namespace linquant
