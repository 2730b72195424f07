// `linquant export`: a saved quantized model (finalized, W8A8 or as configured) or a float
// TorchScript model to a Core ML package or an ONNX model (QDQ form).
#include <ATen/ATen.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "app_error.h"
#include "cli_common.h"
#include "command.h"
#include "coreml_export.h"
#include "linquant/common/file_io.h"
#include "linquant/export/coreml/package_writer.h"
#include "linquant/export/coreml/target.h"
#include "linquant/export/onnx/save.h"
#include "model_source.h"
#include "saved_model.h"
#include "staged_output.h"

namespace linquant::apps {
namespace {

struct ExportOptions {
  std::string model_path;
  std::string format = "coreml";
  PackageSettings package;
  std::string input_shape;  // N,C,H,W; required for TorchScript
  std::string output;
  int64_t opset = onnx::SaveOptions{}.opset;
  std::string onnx_weights = "int8";
  int threads = 0;
};

bool is_onnx(const ExportOptions& o) { return o.format == "onnx"; }

std::filesystem::path destination_path(const ExportOptions& o) {
  return is_onnx(o) ? onnx::model_path(o.output) : coreml::package_path(o.output);
}

void write_model(const GraphModule& model, const std::filesystem::path& path,
                 const ExportOptions& o) {
  if (!is_onnx(o)) {
    PackageSettings staged = o.package;
    staged.overwrite = false;  // the staging folder is new; StagedOutput replaces the old one
    export_package(model, path, staged);
    return;
  }
  onnx::SaveOptions options;
  options.opset = o.opset;
  options.uint8_weights = o.onnx_weights == "uint8";
  onnx::save(model, path.string(), options);
}

std::string format_summary(const ExportOptions& o) {
  if (is_onnx(o))
    return "ONNX opset " + std::to_string(o.opset) + ", " + o.onnx_weights + " weights";
  return coreml::to_string(coreml::parse_target(o.package.target)) + ", " + o.package.precision;
}

int run_export(const ExportOptions& o) {
  set_thread_count(o.threads > 0 ? o.threads : default_thread_count());
  std::error_code error;
  if (!std::filesystem::is_regular_file(o.model_path, error)) {
    throw UsageError("model file not found: " + o.model_path);
  }
  coreml::parse_target(o.package.target);
  if (o.output.empty()) throw UsageError("the output path is empty");
  if (is_onnx(o) && (o.opset < onnx::kMinOpset || o.opset > onnx::kMaxOpset)) {
    throw UsageError("--opset " + std::to_string(o.opset) + ": the ONNX export writes opsets " +
                     std::to_string(onnx::kMinOpset) + " to " + std::to_string(onnx::kMaxOpset));
  }
  const std::filesystem::path destination = destination_path(o);
  StagedOutput output(destination, o.package.overwrite,
                      is_onnx(o) ? OutputKind::file : OutputKind::package);
  GraphModule model{nullptr};
  LoadedModel saved;  // keeps the source module alive for the float graph too
  SourceModel source;
  std::string kind;
  if (is_saved_model(o.model_path)) {
    saved = load_quantized_model(o.model_path);
    model = saved.finalized;
    kind = "quantized model";
    if (!o.input_shape.empty()) {
      // Another batch size (or image size) than the one saved: shapes recorded again.
      if (model->graph().inputs().size() != 1) {
        throw UsageError("--input-shape gives one shape; this model has " +
                         std::to_string(model->graph().inputs().size()) + " inputs");
      }
      model->eval();
      model->record_shapes({at::zeros(parse_shape(o.input_shape, "--input-shape"))});
    }
  } else {
    if (o.input_shape.empty()) {
      throw UsageError(o.model_path +
                       " is a TorchScript model: give its input shape with --input-shape N,C,H,W");
    }
    ModelRecipe recipe;
    recipe.torchscript = read_file_bytes(o.model_path);
    recipe.source_name = o.model_path;
    source = load_source_model(recipe);
    model = GraphModule(capture_source(source));
    model->eval();
    model->record_shapes({at::zeros(parse_shape(o.input_shape, "--input-shape"))});
    kind = "float TorchScript model";
  }
  write_model(model, output.dir() / destination.filename(), o);
  output.commit(destination.filename());
  const std::filesystem::path& written = output.destination();
  std::cout << "Exported " << kind << " " << o.model_path << " to " << written.string() << " ("
            << format_summary(o) << ", " << format_bytes(disk_size(written)) << ")\n";
  return kExitOk;
}

}  // namespace

Command add_export_command(CLI::App& root) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* app = root.add_subcommand(
      "export", "Export a saved quantized model or a TorchScript model to Core ML or ONNX.");
  app->footer(
      "\nMODEL is either a quantized model saved by `linquant train` or `linquant quantize`\n"
      "(rebuilt and checked bit for bit, then exported with int8 weights and activation\n"
      "quantize/dequantize), or a TorchScript file, exported as a float model (needs\n"
      "--input-shape). --format onnx writes an ONNX model in QDQ form instead (int8 weights\n"
      "and int32 biases behind DequantizeLinear, QuantizeLinear/DequantizeLinear on every\n"
      "quantized activation), which ONNX Runtime runs with integer kernels. The output is\n"
      "written atomically: on error nothing is left behind.\n"
      "\nExamples:\n"
      "  linquant export linquant_tutorial/quantized_model.pt -o tutorial.mlpackage\n"
      "  linquant export model_w8a8.pt --target ios18 --precision fp32 -o model.mlpackage "
      "--overwrite\n"
      "  linquant export net.pt --input-shape 1,1,28,28 -o net_float.mlpackage\n"
      "  linquant export linquant_tutorial/quantized_model.pt --format onnx -o tutorial.onnx\n");
  app->add_option("MODEL", o->model_path, "saved quantized model or TorchScript file")->required();
  app->add_option("--format", o->format, "output format")
      ->check(CLI::IsMember({"coreml", "onnx"}))
      ->capture_default_str();
  app->add_option("--target", o->package.target, "deployment target: ios17 or ios18")
      ->capture_default_str();
  app->add_option("--precision", o->package.precision,
                  "float precision of the program: fp16 or fp32")
      ->check(CLI::IsMember({"fp16", "fp32"}))
      ->capture_default_str();
  app->add_option("--opset", o->opset,
                  "ONNX operator set, 13 to 21 (21 for 4-bit weights); --format onnx only")
      ->capture_default_str();
  app->add_option("--onnx-weights", o->onnx_weights,
                  "storage of 8-bit weights in ONNX: int8 (the usual QDQ form) or uint8 (zero "
                  "point + 128: exact in ONNX Runtime on x86 CPUs without VNNI, whose int8 "
                  "kernels saturate); --format onnx only")
      ->check(CLI::IsMember({"int8", "uint8"}))
      ->capture_default_str();
  app->add_option("--input-shape", o->input_shape,
                  "input shape N,C,H,W (required for a TorchScript model; for a saved model, "
                  "another batch or image size than the saved one)");
  app->add_option("-o,--output", o->output, "the .mlpackage (or .onnx) to write")->required();
  app->add_flag("--overwrite", o->package.overwrite, "replace an existing package or file");
  app->add_option("--threads", o->threads, "CPU threads (default: every core)");
  return {app, [o] { return run_export(*o); }};
}

}  // namespace linquant::apps
