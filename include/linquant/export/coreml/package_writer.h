// Writes an .mlpackage directory atomically: everything goes into a temporary sibling directory
// that is renamed into place only once complete, so a failure never leaves a partial package.
#pragma once

#include <filesystem>

#include "linquant/export/coreml/model_spec.h"

namespace linquant::coreml {

struct PackageWriteOptions {
  // Replace an existing file or directory at the destination. Without it an existing
  // destination is an error and is left untouched.
  bool overwrite = false;
};

// The destination used for `path`: ".mlpackage" is appended unless the last path component
// already ends with it ("out/model" -> "out/model.mlpackage"); trailing separators are ignored.
std::filesystem::path package_path(const std::filesystem::path& path);

// Writes <package>/Manifest.json, Data/com.apple.CoreML/model.mlmodel and
// Data/com.apple.CoreML/weights/weight.bin and returns the package path. The parent directory
// must exist. Throws ExportError naming the path and the OS reason; on failure nothing new is
// left on disk.
std::filesystem::path write_package(const std::filesystem::path& path,
                                    const PackageContents& contents,
                                    const PackageWriteOptions& options = {});

// build_package_contents + write_package.
std::filesystem::path save_package(const std::filesystem::path& path,
                                   const ProgramBuilder& program, const ModelInfo& info = {},
                                   const PackageWriteOptions& options = {});

}  // namespace linquant::coreml
