// save(): check the destination and the graph, record shapes if needed, build the whole MIL
// program and its serialized files in memory, and only then hand them to the atomic package
// writer, so a failure at any step leaves nothing behind.
#include "linquant/export/coreml/save.h"

#include <filesystem>

#include "../../graph/destination_check.h"
#include "linquant/export/coreml/export_error.h"
#include "linquant/export/coreml/package_writer.h"
#include "lowering.h"

namespace linquant::coreml {
namespace {

namespace fs = std::filesystem;

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
  // The package writer checks this again; checking first spares building a program that
  // could never be written.
  graph_export::check_destination(package, options.overwrite);
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
