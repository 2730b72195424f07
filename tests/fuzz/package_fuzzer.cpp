// libFuzzer harness: the .mlpackage reader behind `linquant inspect` (manifest, model spec,
// MIL program, weight blobs). The input is a file bundle (file_bundle.h) written out as the
// package folder's files. Every input must be summarized or rejected with linquant::Error;
// anything else (a crash, a sanitizer report, another exception, a hang) is a finding.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "file_bundle.h"
#include "fuzz_scratch.h"
#include "linquant/common/error.h"
#include "package_summary.h"

namespace {

namespace fs = std::filesystem;

// The bundle name as a path inside the package: no absolute paths, no "..", at most 6 levels.
fs::path inside(const fs::path& root, const std::string& name) {
  fs::path relative;
  int depth = 0;
  for (const fs::path& part : fs::path(name)) {
    const std::string text = part.string();
    if (text.empty() || text == "/" || text == "." || text == ".." || ++depth > 6) continue;
    relative /= part;
  }
  return relative.empty() ? fs::path() : root / relative;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path root = linquant::fuzz::scratch_file("package") + ".mlpackage";
  std::error_code error;
  fs::remove_all(root, error);
  fs::create_directories(root);
  for (const linquant::fuzz::BundleFile& file : linquant::fuzz::read_bundle(data, size)) {
    if (file.name.find('\0') != std::string::npos) continue;
    const fs::path target = inside(root, file.name);
    if (target.empty()) continue;
    fs::create_directories(target.parent_path(), error);
    if (error || fs::is_directory(target, error)) continue;  // a file where a folder must go
    linquant::fuzz::write_scratch(target.string(), file.data.data(), file.data.size());  // or not
  }
  try {
    if (linquant::apps::is_package_dir(root)) linquant::apps::package_summary(root, true);
  } catch (const linquant::Error&) {
  }
  return 0;
}
