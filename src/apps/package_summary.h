// A readable summary of an .mlpackage, parsed with the exporter's own protobuf classes:
// interface, metadata, the MIL program's ops (counts and listing), and file sizes.
#pragma once

#include <filesystem>
#include <string>

namespace linquant::apps {

bool is_package_dir(const std::filesystem::path& path);

// Throws linquant::Error naming the file when the package cannot be read.
std::string package_summary(const std::filesystem::path& package, bool list_ops);

}  // namespace linquant::apps
