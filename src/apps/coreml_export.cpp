// The commands' single call site of the Core ML exporter (linquant::coreml::save).
#include "coreml_export.h"

#include <algorithm>
#include <cctype>

#include "app_error.h"
#include "linquant/export/coreml/package_writer.h"
#include "linquant/export/coreml/save.h"

namespace linquant::apps {
namespace fs = std::filesystem;

bool coreml_export_available() {
  return true;
}

fs::path export_package(const GraphModule& model, const fs::path& path,
                        const PackageSettings& settings) {
  coreml::SaveOptions options;
  options.target = coreml::parse_target(settings.target);
  std::string precision = settings.precision;
  std::transform(precision.begin(), precision.end(), precision.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (precision == "fp16" || precision == "float16") {
    options.precision = coreml::ComputePrecision::Float16;
  } else if (precision == "fp32" || precision == "float32") {
    options.precision = coreml::ComputePrecision::Float32;
  } else {
    throw UsageError("--precision must be fp16 or fp32, got \"" + settings.precision + "\"");
  }
  options.overwrite = settings.overwrite;
  // The exporter's own message speaks of SaveOptions; the command's user has a flag.
  const fs::path destination = coreml::package_path(path);
  std::error_code error;
  if (!settings.overwrite && fs::exists(fs::symlink_status(destination, error))) {
    throw UsageError(destination.string() + " already exists (pass --overwrite to replace it)");
  }
  return coreml::save(model, path.string(), options);
}

uint64_t disk_size(const fs::path& path) {
  std::error_code error;
  if (fs::is_regular_file(path, error)) return fs::file_size(path, error);
  uint64_t total = 0;
  for (fs::recursive_directory_iterator it(path, error), end; !error && it != end;
       it.increment(error)) {
    if (it->is_regular_file(error)) total += it->file_size(error);
  }
  return total;
}

}  // namespace linquant::apps
