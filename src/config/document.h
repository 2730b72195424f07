// The document layer shared by both config classes: JSON and YAML text (or a file holding
// it) become one ordered JSON tree, so a single reader validates both formats; the writers
// turn the tree back into text.
#pragma once

#include <cstddef>
#include <string>

#include "key_path.h"

namespace linquant::config_detail {

// Document text and the name syntax errors are reported under: the file path when the
// text came from a file, otherwise the root key path "config".
struct Source {
  std::string text;
  std::string name;
};

// Limits that keep a hostile or broken config from taking the machine's memory or time: a
// real config is a few KB and a few levels deep. Exceeding one is a ConfigError.
inline constexpr std::size_t kMaxConfigBytes = std::size_t{16} << 20;
inline constexpr std::size_t kMaxNesting = 64;
// YAML aliases repeat a node wherever they appear, so a few hundred bytes can stand for
// billions of values ("billion laughs"): the expanded document may hold at most this many.
inline constexpr std::size_t kMaxValues = 1000000;

// Decides whether the argument is a path or the document itself and reads the file if it
// is a path. Throws ConfigError "cannot read config file '<path>': <OS reason>".
Source load_source(const std::string& text_or_path);

// Both throw ConfigError "<name>: line L, column C: <what is wrong>" for malformed text,
// and "<key path>: duplicate key ..." when an object repeats a key (the formats' own
// parsers would silently keep one of the two values).
Document parse_json(const Source& source);
// YAML scalars are untyped; plain scalars are resolved like YAML 1.2's core schema
// (true/false, integers, floats, null/~/empty) and quoted scalars stay strings.
// An empty document is an empty object.
Document parse_yaml(const Source& source);

// Pretty JSON with a 2-space indent, ending in a newline.
std::string write_json(const Document& document);
// Block-style YAML that parse_yaml reads back to the same tree.
std::string write_yaml(const Document& document);

}  // namespace linquant::config_detail
