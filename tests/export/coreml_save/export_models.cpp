// Exports the models the Python tests check (tests/export/python/test_exported_models.py):
// the coremltools tutorial net, a conv-bn-relu net and two "op zoo" nets covering the other
// mappings as torch::nn::Sequential, and the TorchScript resnet18, mobilenet_v2, residual,
// sequence (GRU, LSTM, einsum) and resample (GroupNorm, upsampling, pixel_shuffle, max) test
// nets written by tests/frontend/models/make_torchscript_models.py. Each is quantized with
// LinearQuantizer (calibrated on random data, finalized) and saved as fp16 float, W8A8 iOS17, W8A8
// iOS18 and W4 iOS18 packages (plus a few fp32 and iOS15 variants). Next to every package go the
// inputs and the LibTorch output of the model it was made from, as raw little-endian float32 files,
// and models.json lists it all: names, shapes, the finalized weights and qparams of every
// quantized layer, export times. Each float and finalized graph is also written as an ONNX
// model, listed in onnx_models.json.
//
// usage: export_models OUT_DIR TORCHSCRIPT_MODELS_DIR [MODEL...]
#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/optim/sgd.h>
#include <torch/script.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "linquant/export/coreml/identifier.h"
#include "linquant/export/coreml/save.h"
#include "linquant/export/onnx/save.h"
#include "linquant/frontend/capture.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace fs = std::filesystem;
namespace nn = torch::nn;
using nlohmann::json;

namespace {

struct ModelSource {
  std::string name;
  std::vector<int64_t> input_shape;  // the exported (static) shape; batch included
  // A fresh capture each call, plus a callable making a LinearQuantizer on the same model.
  std::function<linquant::ir::Graph()> capture;
  std::function<std::unique_ptr<linquant::LinearQuantizer>(linquant::LinearQuantizerConfig)>
      quantizer;
};

// config: "float" (the captured graph), or the LinearQuantizer config the model is finalized
// with: "w8" default (qint8 weights), "w4" qint4, "w8u" quint8, "w4u" quint4 weights,
// "affine" the affine scheme (activation zero points other than 0 and 128), "lsq" the
// learnable algorithm (scales and zero points learned for a few SGD steps).
struct Variant {
  std::string name;
  std::string config;
  linquant::coreml::Target target;
  linquant::coreml::ComputePrecision precision;
};

nn::Sequential tutorial_net() {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 12, 3).padding(1)), nn::ReLU(),
                        nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(),
                        nn::Linear(2352, 10), nn::LogSoftmax(1));
}

nn::Sequential conv_bn_relu_net() {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1)), nn::BatchNorm2d(8),
                        nn::ReLU());
}

// Every remaining mapping on a small 2-D net: transposed, grouped and dilated convolutions,
// average pools with and without padding in the average, adaptive pooling to sizes that
// do not divide the input (16 -> 3 x 5),
// BatchNorm1d on [N, C], and the activations the large nets lack.
nn::Sequential op_zoo_2d() {
  return nn::Sequential(
      nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1)), nn::BatchNorm2d(8),
      nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.1)),
      nn::ConvTranspose2d(
          nn::ConvTranspose2dOptions(8, 8, 3).stride(2).padding(1).output_padding(1)),
      nn::ELU(nn::ELUOptions().alpha(0.7)),
      nn::AvgPool2d(nn::AvgPool2dOptions(3).stride(2).padding(1).count_include_pad(false)),
      nn::SiLU(), nn::Conv2d(nn::Conv2dOptions(8, 8, 3).padding(2).dilation(2).groups(2)),
      nn::GELU(nn::GELUOptions().approximate("tanh")),
      nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({3, 5})), nn::Tanh(), nn::Flatten(),
      nn::Linear(120, 32), nn::BatchNorm1d(32), nn::Sigmoid(), nn::Dropout(0.2), nn::Linear(32, 10),
      nn::Softmax(1));
}

// And in 1-D: conv1d, conv_transpose1d, pools over one dimension (adaptive 8 -> 3), relu6
// (clip), gelu exact.
nn::Sequential op_zoo_1d() {
  return nn::Sequential(
      nn::Conv1d(nn::Conv1dOptions(4, 8, 5).stride(2).padding(2)), nn::ReLU6(),
      nn::MaxPool1d(nn::MaxPool1dOptions(3).stride(2).padding(1)),
      nn::ConvTranspose1d(nn::ConvTranspose1dOptions(8, 6, 4).stride(2).padding(1)), nn::GELU(),
      nn::AvgPool1d(nn::AvgPool1dOptions(2)), nn::AdaptiveAvgPool1d(3), nn::Flatten(),
      nn::Linear(18, 5), nn::LogSoftmax(1));
}

ModelSource sequential_source(const std::string& name, nn::Sequential model,
                              std::vector<int64_t> shape) {
  ModelSource source;
  source.name = name;
  source.input_shape = std::move(shape);
  source.capture = [model] { return linquant::frontend::capture(model); };
  source.quantizer = [model](linquant::LinearQuantizerConfig config) {
    return std::make_unique<linquant::LinearQuantizer>(model, std::move(config));
  };
  return source;
}

ModelSource script_source(const std::string& name, const fs::path& file,
                          std::vector<int64_t> shape) {
  auto module = std::make_shared<torch::jit::Module>(torch::jit::load(file.string()));
  ModelSource source;
  source.name = name;
  source.input_shape = std::move(shape);
  source.capture = [module] { return linquant::frontend::capture(*module); };
  source.quantizer = [module](linquant::LinearQuantizerConfig config) {
    return std::make_unique<linquant::LinearQuantizer>(*module, std::move(config));
  };
  return source;
}

// Random inputs that fp16 represents exactly, so an fp16 model interface loses nothing and
// the comparison measures the program alone.
at::Tensor fp16_exact_randn(const std::vector<int64_t>& shape) {
  return at::randn(shape).to(at::kHalf).to(at::kFloat);
}

void write_f32(const fs::path& path, const at::Tensor& tensor) {
  const at::Tensor t = tensor.detach().to(at::kFloat).contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(t.data_ptr<float>()),
            static_cast<std::streamsize>(t.numel() * sizeof(float)));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

json tensor_file(const fs::path& dir, const std::string& stem, const at::Tensor& tensor) {
  const std::string file = stem + ".f32";
  write_f32(dir / file, tensor);
  return json{{"file", file}, {"shape", tensor.sizes().vec()}};
}

std::vector<float> floats(const at::Tensor& tensor) {
  const at::Tensor t = tensor.detach().to(at::kFloat).contiguous();
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

std::vector<int64_t> ints(const at::Tensor& tensor) {
  const at::Tensor t = tensor.detach().to(at::kLong).contiguous();
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

// What the Python side needs to check weights exactly: the finalized float weight and its
// qparams, by the name of the constexpr op the exporter gives it.
json quantized_weights(const linquant::ir::Graph& graph, const fs::path& dir,
                       const std::string& stem) {
  json weights = json::array();
  std::set<std::string> seen;
  for (const auto& node : graph.nodes()) {
    if (!node.attrs.has("weight_scale")) continue;
    const std::string& name = node.attrs.s("weight");
    if (!seen.insert(name).second) continue;
    const at::Tensor& w = graph.tensor(name).tensor;
    json entry = tensor_file(dir, stem + ".weight." + std::to_string(seen.size()), w);
    entry["node"] = node.name;
    entry["tensor"] = name;
    entry["constexpr"] = linquant::coreml::sanitize_identifier(name) + "_dequantized";
    entry["scale"] = floats(graph.tensor(node.attrs.s("weight_scale")).tensor);
    entry["zero_point"] = ints(graph.tensor(node.attrs.s("weight_zero_point")).tensor);
    entry["axis"] = node.attrs.i("weight_axis");
    entry["bits"] = node.attrs.i("weight_bits");
    weights.push_back(entry);
  }
  return weights;
}

std::uintmax_t directory_size(const fs::path& dir) {
  std::uintmax_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

json export_variant(const fs::path& dir, const std::string& model_name, const Variant& variant,
                    const linquant::ir::Graph& graph, const linquant::coreml::SaveOptions& base,
                    const std::vector<at::Tensor>& inputs, const std::vector<at::Tensor>& outputs) {
  const std::string stem = model_name + "." + variant.name;
  linquant::coreml::SaveOptions options = base;
  options.target = variant.target;
  options.precision = variant.precision;
  options.overwrite = true;
  const auto start = std::chrono::steady_clock::now();
  const std::string package = linquant::coreml::save(graph, (dir / stem).string(), options);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

  json entry{{"model", model_name},
             {"variant", variant.name},
             {"package", package},
             {"quantized", variant.config != "float"},
             {"config", variant.config},
             {"target", linquant::coreml::to_string(variant.target)},
             {"precision", linquant::coreml::to_string(variant.precision)},
             {"export_ms", ms},
             {"package_bytes", directory_size(package)}};
  json in = json::array();
  for (size_t k = 0; k < inputs.size(); ++k) {
    in.push_back(tensor_file(dir, stem + ".input" + std::to_string(k), inputs[k]));
  }
  json out = json::array();
  for (size_t k = 0; k < outputs.size(); ++k) {
    out.push_back(tensor_file(dir, stem + ".expected" + std::to_string(k), outputs[k]));
  }
  entry["inputs"] = in;
  entry["outputs"] = out;
  entry["weights"] =
      variant.config != "float" ? quantized_weights(graph, dir, stem) : json::array();
  std::ofstream(dir / (stem + ".graph.txt")) << linquant::ir::to_string(graph);
  std::cout << stem << ": " << ms << " ms, " << entry["package_bytes"] << " bytes\n";
  return entry;
}

// The same graph as an ONNX model (QDQ form; opset 21 for 4-bit weights), with its inputs and
// LibTorch outputs, for test_onnx_models.py. Models with ops the ONNX export does not map yet
// record the error instead.
json export_onnx(const fs::path& dir, const std::string& model_name, const std::string& config,
                 const linquant::ir::Graph& graph, const std::vector<int64_t>& input_shape,
                 const std::vector<at::Tensor>& inputs, const std::vector<at::Tensor>& outputs) {
  const std::string stem = model_name + "." + config;
  linquant::onnx::SaveOptions options;
  options.opset = config == "w4" || config == "w4u" ? 21 : 13;
  options.overwrite = true;
  options.input_shapes = {input_shape};
  json entry{{"model", model_name}, {"config", config}, {"opset", options.opset}};
  try {
    entry["file"] = linquant::onnx::save(graph, (dir / stem).string(), options);
    options.uint8_weights = true;
    entry["uint8_file"] = linquant::onnx::save(graph, (dir / (stem + ".uint8")).string(), options);
    options.uint8_weights = false;
    options.integer_bias = false;
    entry["float_bias_file"] =
        linquant::onnx::save(graph, (dir / (stem + ".float_bias")).string(), options);
  } catch (const linquant::ExportError& e) {
    entry["error"] = e.what();
    std::cout << stem << ".onnx: " << e.what() << "\n";
    return entry;
  }
  json in = json::array();
  for (size_t k = 0; k < inputs.size(); ++k) {
    in.push_back(tensor_file(dir, stem + ".onnx_input" + std::to_string(k), inputs[k]));
  }
  json out = json::array();
  for (size_t k = 0; k < outputs.size(); ++k) {
    out.push_back(tensor_file(dir, stem + ".onnx_expected" + std::to_string(k), outputs[k]));
  }
  entry["inputs"] = in;
  entry["outputs"] = out;
  // The scale of each output's quantizer, where a quantize_dequantize produces it.
  json output_scales = json::array();
  for (linquant::ir::ValueId id : graph.outputs()) {
    json scale = nullptr;
    for (const auto& node : graph.nodes()) {
      if (node.outputs.at(0) == id && node.op == linquant::ir::Op::quantize_dequantize) {
        scale = node.attrs.f("scale");
      }
    }
    output_scales.push_back(scale);
  }
  entry["output_scales"] = output_scales;
  // Every finalized activation quantizer, for the check that the ONNX graph holds them all.
  json quantizers = json::array();
  for (const auto& node : graph.nodes()) {
    if (node.op != linquant::ir::Op::quantize_dequantize) continue;
    // Its input comes from a quantizer with the same parameters, directly or through ops that
    // keep values on the grid: the exporter reuses those integers.
    bool reuses_input = false;
    linquant::ir::ValueId value = node.inputs.at(0);
    for (bool walking = true; walking;) {
      walking = false;
      for (const auto& other : graph.nodes()) {
        if (other.outputs.empty() || other.outputs.at(0) != value) continue;
        using linquant::ir::Op;
        if (other.op == Op::quantize_dequantize) {
          reuses_input = other.attrs.f("scale") == node.attrs.f("scale") &&
                         other.attrs.i("zero_point") == node.attrs.i("zero_point");
        } else if (other.op == Op::max_pool || other.op == Op::flatten || other.op == Op::reshape ||
                   other.op == Op::permute || other.op == Op::transpose ||
                   other.op == Op::identity || other.op == Op::dropout) {
          value = other.inputs.at(0);
          walking = true;
        }
        break;
      }
    }
    quantizers.push_back({{"value", graph.value(node.outputs.at(0)).name},
                          {"scale", node.attrs.f("scale")},
                          {"zero_point", node.attrs.i("zero_point")},
                          {"quant_min", node.attrs.i("quant_min")},
                          {"reuses_input", reuses_input}});
  }
  entry["activation_quantizers"] = quantizers;
  std::cout << stem << ".onnx written\n";
  return entry;
}

std::vector<at::Tensor> run(linquant::GraphModule& module, const std::vector<at::Tensor>& inputs) {
  const at::NoGradGuard no_grad;
  module->eval();
  return module->forward(inputs);
}

// Captured, prepared with the given config, calibrated on random data and finalized.
linquant::GraphModule quantize(const ModelSource& source, linquant::LinearQuantizerConfig config) {
  auto quantizer = source.quantizer(std::move(config));
  linquant::GraphModule prepared =
      quantizer->prepare({at::randn(source.input_shape)}, /*inplace=*/false);
  std::vector<int64_t> calibration_shape = source.input_shape;
  calibration_shape[0] = std::max<int64_t>(2, calibration_shape[0]);
  {
    const at::NoGradGuard no_grad;
    for (int i = 0; i < 4; ++i) {
      prepared->forward(std::vector<at::Tensor>{at::randn(calibration_shape)});
    }
  }
  if (quantizer->config().algorithm() == linquant::Algorithm::learnable) {
    // LSQ: the observers initialized scales and zero points; a few SGD steps learn them.
    for (auto& [name, fq] : prepared->quantizers()) fq->disable_observer();
    torch::optim::SGD optimizer(prepared->parameters(), torch::optim::SGDOptions(1e-3));
    for (int i = 0; i < 3; ++i) {
      const at::Tensor out =
          prepared->forward(std::vector<at::Tensor>{at::randn(calibration_shape)}).at(0);
      const at::Tensor loss = out.pow(2).mean();
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
    }
  }
  return quantizer->finalize();
}

linquant::LinearQuantizerConfig config_named(const std::string& name) {
  using linquant::WeightDtype;
  linquant::ModuleLinearQuantizerConfig module;
  if (name == "w4") module.set_weight_dtype(WeightDtype::qint4);
  if (name == "w8u") module.set_weight_dtype(WeightDtype::quint8);
  if (name == "w4u") module.set_weight_dtype(WeightDtype::quint4);
  if (name == "affine") module.set_quantization_scheme(linquant::QuantizationScheme::affine);
  if (name == "lsq") module.set_algorithm(linquant::Algorithm::learnable);
  linquant::LinearQuantizerConfig config;
  config.set_global(module);
  return config;
}

std::vector<Variant> variants_for(const std::string& model) {
  using linquant::coreml::ComputePrecision;
  using linquant::coreml::Target;
  constexpr auto fp16 = ComputePrecision::Float16;
  constexpr auto fp32 = ComputePrecision::Float32;
  std::vector<Variant> v = {
      {"float_fp16_ios17", "float", Target::iOS17, fp16},
      {"w8a8_ios17", "w8", Target::iOS17, fp16},
      {"w8a8_ios18", "w8", Target::iOS18, fp16},
      {"w4_ios18", "w4", Target::iOS18, fp16},
  };
  if (model == "tutorial" || model == "conv_bn_relu" || model == "resnet18") {
    v.push_back({"w8a8_ios17_fp32", "w8", Target::iOS17, fp32});
    v.push_back({"float_fp32_ios17", "float", Target::iOS17, fp32});
  }
  if (model == "op_zoo_2d" || model == "op_zoo_1d") {
    v.push_back({"w8a8_ios18_fp32", "w8", Target::iOS18, fp32});
    v.push_back({"float_fp32_ios17", "float", Target::iOS17, fp32});
  }
  if (model == "tutorial" || model == "resnet18") {
    v.push_back({"lsq_ios17", "lsq", Target::iOS17, fp16});
  }
  if (model == "tutorial") {
    // fp16 before iOS16: fp32 model interface with casts inside.
    v.push_back({"float_fp16_ios15", "float", Target::iOS15, fp16});
  }
  if (model == "conv_bn_relu" || model == "op_zoo_2d") {
    // Unsigned weights (zero point vectors, uint8/uint4 data, offsets) and affine activations.
    v.push_back({"w8u_ios17_fp32", "w8u", Target::iOS17, fp32});
    v.push_back({"w8u_ios18", "w8u", Target::iOS18, fp16});
    v.push_back({"w4u_ios18_fp32", "w4u", Target::iOS18, fp32});
    v.push_back({"affine_ios17_fp32", "affine", Target::iOS17, fp32});
    v.push_back({"affine_ios18", "affine", Target::iOS18, fp16});
  }
  return v;
}

json export_model(const fs::path& dir, const ModelSource& source, json& onnx_entries) {
  json entries = json::array();
  const std::vector<at::Tensor> inputs = {fp16_exact_randn(source.input_shape)};

  // Float: the captured graph as is; save() records its shapes for the requested input.
  const linquant::ir::Graph float_graph = source.capture();
  linquant::GraphModule float_module(float_graph);
  const std::vector<at::Tensor> float_outputs = run(float_module, inputs);
  linquant::coreml::SaveOptions float_options;
  float_options.input_shapes = {source.input_shape};

  // One finalized model per config, with its LibTorch outputs.
  std::map<std::string, std::pair<linquant::GraphModule, std::vector<at::Tensor>>> finalized;
  for (const Variant& variant : variants_for(source.name)) {
    if (variant.config == "float") {
      entries.push_back(export_variant(dir, source.name, variant, float_graph, float_options,
                                       inputs, float_outputs));
      continue;
    }
    auto it = finalized.find(variant.config);
    if (it == finalized.end()) {
      linquant::GraphModule model = quantize(source, config_named(variant.config));
      std::vector<at::Tensor> outputs = run(model, inputs);
      it = finalized.emplace(variant.config, std::make_pair(model, outputs)).first;
    }
    entries.push_back(export_variant(dir, source.name, variant, it->second.first->graph(), {},
                                     inputs, it->second.second));
  }
  onnx_entries.push_back(export_onnx(dir, source.name, "float", float_graph, source.input_shape,
                                     inputs, float_outputs));
  for (const auto& [config, model] : finalized) {
    onnx_entries.push_back(export_onnx(dir, source.name, config, model.first->graph(),
                                       source.input_shape, inputs, model.second));
  }
  return entries;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: export_models OUT_DIR TORCHSCRIPT_MODELS_DIR [MODEL...]\n";
    return 2;
  }
  try {
    const fs::path dir = argv[1];
    const fs::path scripts = argv[2];
    fs::create_directories(dir);
    std::set<std::string> wanted(argv + 3, argv + argc);
    auto want = [&](const std::string& name) { return wanted.empty() || wanted.count(name); };

    at::manual_seed(0);
    std::vector<ModelSource> sources;
    auto add_sequential = [&](const std::string& name, nn::Sequential model,
                              std::vector<int64_t> shape) {
      if (want(name)) {
        sources.push_back(sequential_source(name, std::move(model), std::move(shape)));
      }
    };
    auto add_script = [&](const std::string& name, const std::string& file,
                          std::vector<int64_t> shape) {
      if (want(name)) sources.push_back(script_source(name, scripts / file, std::move(shape)));
    };
    // Batch sizes: the exported models keep the batch of these shapes (no flexible shapes).
    add_sequential("tutorial", tutorial_net(), {2, 1, 28, 28});
    add_sequential("conv_bn_relu", conv_bn_relu_net(), {1, 3, 8, 8});
    add_script("resnet18", "resnet18_traced.pt", {1, 3, 64, 64});
    add_script("mobilenet_v2", "mobilenet_v2_traced.pt", {1, 3, 64, 64});
    add_sequential("op_zoo_2d", op_zoo_2d(), {2, 3, 16, 16});
    add_sequential("op_zoo_1d", op_zoo_1d(), {2, 4, 32});
    add_script("residual", "residual_traced.pt", {2, 3, 8, 8});
    add_script("sequence", "sequence_traced.pt", {2, 5, 6});
    add_script("resample", "resample_traced.pt", {2, 3, 6, 6});

    json all = json::array();
    json onnx = json::array();
    for (const ModelSource& source : sources) {
      for (auto& entry : export_model(dir, source, onnx)) all.push_back(entry);
    }
    std::ofstream(dir / "models.json") << all.dump(1);
    std::ofstream(dir / "onnx_models.json") << onnx.dump(1);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "export_models: " << e.what() << "\n";
    return 1;
  }
}
