#include "destination_check.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "linquant/export/export_error.h"

namespace linquant::graph_export {

void check_destination(const std::filesystem::path& path, bool overwrite) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!overwrite && fs::symlink_status(path, ec).type() != fs::file_type::not_found && !ec) {
    throw ExportError("cannot write \"" + path.string() +
                      "\": it already exists; set "
                      "SaveOptions::overwrite = true to replace it");
  }
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (!fs::is_directory(parent, ec)) {
    throw ExportError("cannot write \"" + path.string() + "\": the directory \"" + parent.string() +
                      "\" does not exist");
  }
  if (::access(parent.c_str(), W_OK | X_OK) != 0) {
    throw ExportError("cannot write \"" + path.string() + "\": the directory \"" + parent.string() +
                      "\" is not writable (" + std::strerror(errno) + ")");
  }
}

}  // namespace linquant::graph_export
