// The schema of a config document: the one reader that validates a parsed JSON or YAML
// tree field by field, and the writer that produces such a tree from a config.
#pragma once

#include <string>

#include "key_path.h"
#include "linquant/config/linear_quantizer_config.h"
#include "linquant/config/module_linear_quantizer_config.h"

namespace linquant::config_detail {

// Field names in the order they are written and listed in "allowed: ..." messages.
const std::vector<std::string>& module_config_keys();
const std::vector<std::string>& linear_config_keys();

// Throw ConfigError "<path>: <what is wrong and what is allowed>". Missing fields take
// their defaults. read_linear_config checks only the shape of the document; the
// cross-config rules are LinearQuantizerConfig::validate's job.
ModuleLinearQuantizerConfig read_module_config(const Document& document, const std::string& path);
LinearQuantizerConfig read_linear_config(const Document& document);

// Every field is written, nulls included, so that reading gives back an equal config.
Document to_document(const ModuleLinearQuantizerConfig& config);
Document to_document(const LinearQuantizerConfig& config);

}  // namespace linquant::config_detail
