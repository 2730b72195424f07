// `linquant inspect FILE`: what a TorchScript model captures to, what a saved quantized model
// holds (recipe, quantization table, sizes), or what an .mlpackage or .onnx file contains.
#include <ATen/ATen.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "app_error.h"
#include "cli_common.h"
#include "command.h"
#include "linquant/common/file_io.h"
#include "linquant/export/onnx/model_summary.h"
#include "linquant/ir/attribute_keys.h"
#include "model_source.h"
#include "package_summary.h"
#include "saved_model.h"

namespace linquant::apps {
namespace {

struct InspectOptions {
  std::string path;
  bool graph = false;  // print the whole graph / op listing
};

// Op histogram, tensor totals and, on request, the listing of a captured or finalized graph.
void print_graph_summary(const ir::Graph& graph, bool full) {
  std::map<std::string, int> ops;
  for (const ir::Node& node : graph.nodes()) ++ops[ir::to_string(node.op)];
  int64_t parameters = 0, parameter_bytes = 0, buffers = 0;
  for (const auto& [name, entry] : graph.tensors()) {
    (entry.is_parameter ? parameters : buffers) += entry.tensor.numel();
    if (entry.is_parameter)
      parameter_bytes += entry.tensor.numel() * static_cast<int64_t>(entry.tensor.element_size());
  }
  std::cout << "  " << graph.nodes().size() << " nodes:";
  for (const auto& [op, count] : ops) std::cout << " " << op << " x" << count;
  std::cout << "\n  " << parameters << " parameters ("
            << format_bytes(static_cast<uint64_t>(parameter_bytes)) << " as stored), " << buffers
            << " buffer elements\n";
  if (full) std::cout << ir::to_string(graph) << "\n";
}

void inspect_torchscript(const InspectOptions& o) {
  ModelRecipe recipe;
  recipe.torchscript = read_file_bytes(o.path);
  recipe.source_name = o.path;
  const SourceModel source = load_source_model(recipe);
  const ir::Graph graph = capture_source(source);
  std::cout << "TorchScript model " << o.path << " (" << format_bytes(recipe.torchscript.size())
            << ")\n";
  std::cout << "Captured graph:\n";
  print_graph_summary(graph, true);
}

void inspect_saved_model(const InspectOptions& o) {
  const LoadedModel loaded = load_quantized_model(o.path);
  const ModelRecipe& recipe = loaded.recipe;
  std::cout << "Quantized model " << o.path << " ("
            << format_bytes(std::filesystem::file_size(o.path))
            << "; rebuilt and checked bit for bit)\n";
  std::cout << "  source: " << (recipe.builtin.empty() ? "TorchScript " : "built-in ")
            << recipe.source_name;
  if (!recipe.torchscript.empty())
    std::cout << " (" << format_bytes(recipe.torchscript.size()) << " embedded)";
  std::cout << "\n  input: [";
  for (size_t i = 0; i < recipe.input_shape.size(); ++i)
    std::cout << (i ? ", " : "") << recipe.input_shape[i];
  std::printf("], normalized as (x - %.4f) / %.4f; %lld classes\n", recipe.normalization.mean,
              recipe.normalization.std, static_cast<long long>(recipe.num_classes));
  std::fflush(stdout);
  const nlohmann::json metadata = nlohmann::json::parse(loaded.metadata_json, nullptr, false);
  if (metadata.is_object() && metadata.contains("test_accuracy")) {
    std::cout << "  recorded test accuracy: " << metadata["test_accuracy"].dump() << "\n";
  }
  std::cout << "Config:\n" << recipe.config.to_yaml() << "\n";
  std::cout << "Quantizers (report):\n" << loaded.quantizer->report().to_string() << "\n\n";

  // Sizes: float32 weights before, and the finalized weights at their bit width.
  const ir::Graph& graph = loaded.finalized->graph();
  int64_t float_bytes = 0, quantized_bytes = 0;
  for (const ir::Node& node : graph.nodes()) {
    if (!ir::op_info(node.op).weighted || !node.attrs.has(ir::attr::weight)) continue;
    const at::Tensor& weight = graph.tensor(node.attrs.s(ir::attr::weight)).tensor;
    float_bytes += weight.numel() * 4;
    const int64_t bits =
        node.attrs.has(ir::attr::weight_bits) ? node.attrs.i(ir::attr::weight_bits) : 32;
    quantized_bytes += (weight.numel() * bits + 7) / 8;
  }
  std::cout << "Weights: " << format_bytes(static_cast<uint64_t>(float_bytes)) << " as float32, "
            << format_bytes(static_cast<uint64_t>(quantized_bytes))
            << " quantized (scales not counted)\n";
  std::cout << "Finalized graph:\n";
  print_graph_summary(graph, o.graph);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t k = 0; k < shape.size(); ++k) {
    text += (k ? ", " : "") + (shape[k] < 0 ? std::string("?") : std::to_string(shape[k]));
  }
  return text + "]";
}

void inspect_onnx(const InspectOptions& o) {
  const std::string bytes = read_file_bytes(o.path);
  onnx::ModelSummary summary;
  try {
    summary = onnx::summarize_model(bytes);
  } catch (const Error& e) {
    throw UsageError(o.path + ": " + e.what());
  }
  std::cout << "ONNX model " << o.path << " (" << format_bytes(bytes.size()) << "; IR version "
            << summary.ir_version << ", opset " << summary.opset
            << (summary.producer.empty() ? "" : ", written by " + summary.producer) << ")\n";
  for (const auto& input : summary.inputs) {
    std::cout << "  input  " << input.name << ": " << input.type << " " << shape_text(input.shape)
              << "\n";
  }
  for (const auto& output : summary.outputs) {
    std::cout << "  output " << output.name << ": " << output.type << " "
              << shape_text(output.shape) << "\n";
  }
  int64_t nodes = 0;
  for (const auto& [op, count] : summary.op_counts) nodes += count;
  std::cout << "  " << nodes << " nodes:";
  for (const auto& [op, count] : summary.op_counts) std::cout << " " << op << " x" << count;
  std::cout << "\n  " << summary.initializer_count << " initializers:";
  for (const auto& [type, size] : summary.initializer_bytes) {
    std::cout << " " << type << " " << format_bytes(static_cast<uint64_t>(size));
  }
  std::cout << "\n";
  if (o.graph) {
    for (const std::string& line : summary.nodes) std::cout << "    " << line << "\n";
  }
}

int run_inspect(const InspectOptions& o) {
  const std::filesystem::path path(o.path);
  std::error_code error;
  if (!std::filesystem::exists(path, error)) throw UsageError("file not found: " + o.path);
  if (is_package_dir(path)) {
    std::cout << package_summary(path, o.graph);
  } else if (std::filesystem::is_directory(path, error)) {
    throw UsageError(o.path + " is a folder but not an .mlpackage (no Manifest.json)");
  } else if (path.extension() == ".onnx") {
    inspect_onnx(o);
  } else if (is_saved_model(path)) {
    inspect_saved_model(o);
  } else {
    inspect_torchscript(o);
  }
  return kExitOk;
}

}  // namespace

Command add_inspect_command(CLI::App& root) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* app = root.add_subcommand(
      "inspect",
      "Describe a TorchScript model, a saved quantized model, an .mlpackage or an .onnx file.");
  app->footer(
      "\nFor a TorchScript model: the graph linquant captures (what prepare() works on).\n"
      "For a quantized model saved by train/quantize: its source, config, the report() table of\n"
      "every quantizer, and float vs quantized weight sizes. For an .mlpackage: inputs,\n"
      "outputs, metadata, the MIL ops of the program and the file sizes. For an .onnx file:\n"
      "opset, inputs, outputs, node counts by op type and initializer sizes by type.\n"
      "\nExamples:\n"
      "  linquant inspect linquant_tutorial/model.mlpackage --graph\n"
      "  linquant inspect linquant_tutorial/quantized_model.pt\n"
      "  linquant inspect linquant_tutorial/model.onnx --graph\n"
      "  linquant inspect resnet18.pt\n");
  app->add_option("FILE", o->path, "model file or .mlpackage folder")->required();
  app->add_flag("--graph", o->graph, "also list every node / MIL operation / ONNX node");
  return {app, [o] { return run_inspect(*o); }};
}

}  // namespace linquant::apps
