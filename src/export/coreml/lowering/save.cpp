// save(): check the destination and the graph, record shapes if needed, build the whole MIL
// program and its serialized files in memory, and only then hand them to the atomic package
// writer, so a failure at any step leaves nothing behind.
#include "linquant/export/coreml/save.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "linquant/export/coreml/export_error.h"
#include "linquant/export/coreml/package_writer.h"
#include "lowering.h"

namespace linquant::coreml {
namespace {

namespace fs = std::filesystem;

// The package writer checks all of this again; checking first spares building a program
// that could never be written.
void check_destination(const fs::path& package, bool overwrite) {
  std::error_code ec;
  if (!overwrite && fs::symlink_status(package, ec).type() != fs::file_type::not_found && !ec) {
    throw ExportError("cannot write \"" + package.string() + "\": it already exists; set "
                      "SaveOptions::overwrite = true to replace it");
  }
  const fs::path parent = package.has_parent_path() ? package.parent_path() : fs::path(".");
  if (!fs::is_directory(parent, ec)) {
    throw ExportError("cannot write \"" + package.string() + "\": the directory \"" +
                      parent.string() + "\" does not exist");
  }
  if (::access(parent.c_str(), W_OK | X_OK) != 0) {
    throw ExportError("cannot write \"" + package.string() + "\": the directory \"" +
                      parent.string() + "\" is not writable (" + std::strerror(errno) + ")");
  }
}

ModelInfo model_info(const SaveOptions& options) {
  ModelInfo info;
  info.short_description = "Exported by linquant";
  info.source = "linquant";
  info.user_defined["linquant.target"] = to_string(options.target);
  info.user_defined["linquant.precision"] = to_string(options.precision);
  return info;
}

}  // namespace

std::string save(const ir::Graph& graph, const std::string& path, const SaveOptions& options) {
  const fs::path package = package_path(path);
  check_destination(package, options.overwrite);
  lowering::check_exportable(graph, options);
  const graph_export::ShapedGraph shaped(graph, options.input_shapes);
  const ProgramBuilder program =
      lowering::build_program(shaped.graph(), options, &shaped.constants());
  const PackageContents contents = build_package_contents(program, model_info(options));
  return write_package(package, contents, PackageWriteOptions{options.overwrite}).string();
}

std::string save(const GraphModule& model, const std::string& path, const SaveOptions& options) {
  if (!model) throw ExportError("save(): the GraphModule is empty (nullptr)");
  return save(model->graph(), path, options);
}

}  // namespace linquant::coreml
