// How a plain (unquoted) YAML scalar is typed. Shared by the reader, which types scalars
// this way, and the writer, which quotes every string that would not read back as a string.
#pragma once

#include <string>

#include "key_path.h"

namespace linquant::config_detail {

// YAML 1.2 core schema: null/Null/NULL/~/empty, true/false (three casings), decimal, 0o
// octal and 0x hex integers, floats including .inf/.nan; anything else is a string.
// yes/no/on/off are strings, unlike in YAML 1.1 readers such as PyYAML.
Document resolve_plain_scalar(const std::string& text);

// Words that YAML 1.1 readers take as booleans; the writer quotes them so files written by
// linquant mean the same thing to those readers.
bool is_yaml11_boolean(const std::string& text);

}  // namespace linquant::config_detail
