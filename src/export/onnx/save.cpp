// save(): check the destination and the graph, build the whole model in memory, and only then
// write it atomically (a temporary file renamed over the destination), so a failure at any
// step leaves nothing behind.
#include "linquant/export/onnx/save.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "linquant/common/file_io.h"
#include "lowering.h"

namespace linquant::onnx {
namespace {

namespace fs = std::filesystem;

fs::path model_path(const std::string& path) {
  if (path.empty()) throw ExportError("the ONNX output path is empty");
  fs::path p(path);
  if (p.extension() != ".onnx") p += ".onnx";
  return p;
}

void check_destination(const fs::path& file, bool overwrite) {
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(file, ec);
  if (!ec && status.type() != fs::file_type::not_found) {
    if (!overwrite) {
      throw ExportError("cannot write \"" + file.string() +
                        "\": it already exists; set "
                        "SaveOptions::overwrite = true to replace it");
    }
    if (status.type() != fs::file_type::regular) {
      throw ExportError("cannot write \"" + file.string() +
                        "\": it exists and is not a regular "
                        "file");
    }
  }
  const fs::path parent = file.has_parent_path() ? file.parent_path() : fs::path(".");
  if (!fs::is_directory(parent, ec)) {
    throw ExportError("cannot write \"" + file.string() + "\": the directory \"" + parent.string() +
                      "\" does not exist");
  }
  if (::access(parent.c_str(), W_OK | X_OK) != 0) {
    throw ExportError("cannot write \"" + file.string() + "\": the directory \"" + parent.string() +
                      "\" is not writable (" + std::strerror(errno) + ")");
  }
}

}  // namespace

std::string save(const ir::Graph& graph, const std::string& path, const SaveOptions& options) {
  const fs::path file = model_path(path);
  check_destination(file, options.overwrite);
  const std::string bytes = model_bytes(graph, options);
  try {
    replace_file_bytes(file, bytes);
  } catch (const Error& e) {
    throw ExportError(e.what());
  }
  return file.string();
}

std::string save(const GraphModule& model, const std::string& path, const SaveOptions& options) {
  if (!model) throw ExportError("save(): the GraphModule is empty (nullptr)");
  return save(model->graph(), path, options);
}

}  // namespace linquant::onnx
