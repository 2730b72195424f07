// save(): check the destination and the graph, build the whole model in memory, and only then
// write it atomically (a temporary file renamed over the destination), so a failure at any
// step leaves nothing behind.
#include "linquant/export/onnx/save.h"

#include <filesystem>

#include "../graph/destination_check.h"
#include "linquant/common/file_io.h"
#include "lowering.h"

namespace linquant::onnx {
namespace {

namespace fs = std::filesystem;

// A directory, device or link at the destination is never replaced, even with overwrite.
void check_file_destination(const fs::path& file, bool overwrite) {
  graph_export::check_destination(file, overwrite);
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(file, ec);
  if (!ec && status.type() != fs::file_type::not_found && status.type() != fs::file_type::regular) {
    throw ExportError("cannot write \"" + file.string() +
                      "\": it exists and is not a regular file");
  }
}

}  // namespace

fs::path model_path(const fs::path& path) {
  if (path.empty()) throw ExportError("the ONNX output path is empty");
  fs::path p(path);
  if (p.extension() != ".onnx") p += ".onnx";
  return p;
}

std::string save(const ir::Graph& graph, const std::string& path, const SaveOptions& options) {
  const fs::path file = model_path(path);
  check_file_destination(file, options.overwrite);
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
