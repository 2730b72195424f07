// The one place the commands call the Core ML exporter (linquant::coreml::save).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "linquant/runtime/graph_module.h"

namespace linquant::apps {

struct PackageSettings {
  std::string target = "iOS17";    // iOS17 | iOS18 (and the macOS aliases the exporter accepts)
  std::string precision = "fp16";  // fp16 | fp32: the float tensors of the program
  bool overwrite = false;
};

// False while this build has no Core ML exporter; commands then skip or refuse exporting.
bool coreml_export_available();

// Writes `model` (float, or finalized with weight metadata; shapes recorded) as an ML Program
// package at `path` and returns the package path. Throws linquant::Error (exit code 2).
std::filesystem::path export_package(const GraphModule& model, const std::filesystem::path& path,
                                     const PackageSettings& settings);

// Total bytes of the files under a package (or the size of a plain file).
uint64_t disk_size(const std::filesystem::path& path);

}  // namespace linquant::apps
