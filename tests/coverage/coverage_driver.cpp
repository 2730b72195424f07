// coverage_driver: runs one model of the coverage sweep (scripts/coverage_sweep.sh) through
// the whole public linquant pipeline and records how far it got, and why not further.
//
// usage: coverage_driver MODEL_DIR [--steps 20] [--threads 1] [--fp32]
//
// MODEL_DIR holds model.pt (TorchScript) and inputs.pt (the example tensors), as written
// by tests/coverage/coverage_models.py. The stages, each timed, each with its exceptions
// caught (the first failing stage ends the run):
//
//   load       torch::jit::load(model.pt), torch::jit::pickle_load(inputs.pt)
//   capture    linquant::LinearQuantizer(module, config): the default config with milestones
//              [0, 2, 15, 15]
//   prepare    quantizer.prepare(example inputs)
//   qat        --steps steps of quantizer.step() + SGD (lr 1e-3) on the MSE between the
//              prepared model's outputs and fixed random targets of the same shapes, at
//              batch 8 (the examples are batch 2); float inputs get fresh randn data every
//              step, integer inputs random ids in [0, max of the example)
//   finalize   quantizer.finalize()
//   export     linquant::coreml::save(finalized, MODEL_DIR/model.mlpackage): iOS17, fp16,
//              the example input shapes at batch 1; and the same with Float32 precision,
//              MODEL_DIR/model_fp32.mlpackage, for the checker's per-op test; and
//              linquant::onnx::save(finalized, MODEL_DIR/model.onnx) where the ops map
//              (result.json "onnx": the file, or the exporter's refusal)
//   output     the finalized model on the batch-1 input: MODEL_DIR/finalized_output.pt
//              (a tuple of the output tensors) and MODEL_DIR/finalized_input.pt (a tuple of
//              the input tensors: the first example, float inputs rounded to fp16 so that the
//              fp16 Core ML model sees exactly the same values), both torch::jit::pickle_save;
//              and every activation quantizer's output: MODEL_DIR/finalized_activations.pt
//
// MODEL_DIR/result.json is rewritten before every stage (with "running": STAGE), so a run that
// is killed by a timeout or crashes still says where; at the end it has "stage_reached" (the
// last stage that succeeded, "done" after all), "failed_stage" and "error" (first line of the
// message), "seconds" per stage, the prepared and finalized graphs' node counts by op, their
// quantizer counts, and for every graph output that a quantize_dequantize node of the
// finalized graph produces, that quantizer's scale (the step the checker measures errors in).
// The exit code is 0 when every stage passed, 1 when one failed, 2 for a usage error.
#include <ATen/ATen.h>
#include <linquant/export/coreml/save.h>
#include <linquant/export/onnx/save.h>
#include <linquant/linquant.h>
#include <linquant/quantizer/linear_quantizer.h>
#include <torch/optim/sgd.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// QAT runs at batch 8 whatever batch the model was traced at (2): BatchNorm statistics over two
// samples of 1x1 feature maps make float PyTorch training diverge too (regnet, efficientnet),
// and a batch other than the traced one checks that captured shapes are computed at run time.
constexpr int64_t kTrainBatch = 8;

const std::vector<std::string> kStages = {"load",     "capture", "prepare", "qat",
                                          "finalize", "export",  "output"};

std::string first_line(const std::string& text) {
  const size_t start = text.find_first_not_of(" \n");
  if (start == std::string::npos) return "";
  const size_t end = text.find('\n', start);
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// Keeps a long message readable in JSON: the first lines, at most `limit` characters.
std::string truncated(const std::string& text, size_t limit = 4000) {
  return text.size() <= limit ? text : text.substr(0, limit) + "\n[... truncated]";
}

std::vector<char> read_bytes(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open " + path.string());
  return std::vector<char>((std::istreambuf_iterator<char>(file)),
                           std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& path, const std::vector<char>& bytes) {
  std::ofstream file(path, std::ios::binary);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!file) throw std::runtime_error("cannot write " + path.string());
}

// inputs.pt: {"inputs": a tuple of tensors}, or a list, tuple or single tensor.
std::vector<at::Tensor> tensors_of(const c10::IValue& value) {
  std::vector<at::Tensor> tensors;
  if (value.isGenericDict()) {
    return tensors_of(value.toGenericDict().at("inputs"));
  } else if (value.isTensor()) {
    tensors.push_back(value.toTensor());
  } else if (value.isList()) {
    for (const c10::IValue& item : value.toListRef()) tensors.push_back(item.toTensor());
  } else if (value.isTuple()) {
    for (const c10::IValue& item : value.toTupleRef().elements())
      tensors.push_back(item.toTensor());
  } else {
    throw std::runtime_error("inputs.pt holds a " + value.tagKind() + ", not a list of tensors");
  }
  return tensors;
}

c10::IValue as_tuple(const std::vector<at::Tensor>& tensors) {
  std::vector<c10::IValue> items(tensors.begin(), tensors.end());
  return c10::ivalue::Tuple::create(std::move(items));
}

std::string dtype_name(const at::Tensor& t) { return std::string(c10::toString(t.scalar_type())); }

json describe(const std::vector<at::Tensor>& tensors) {
  json list = json::array();
  for (const at::Tensor& t : tensors) {
    list.push_back({{"shape", t.sizes().vec()}, {"dtype", dtype_name(t)}});
  }
  return list;
}

json graph_summary(const linquant::ir::Graph& graph) {
  std::map<std::string, int64_t> by_op;
  int64_t quantizer_nodes = 0;
  for (const linquant::ir::Node& node : graph.nodes()) {
    ++by_op[linquant::ir::to_string(node.op)];
    if (node.op == linquant::ir::Op::fake_quantize ||
        node.op == linquant::ir::Op::quantize_dequantize) {
      ++quantizer_nodes;
    }
  }
  int64_t weight = 0;
  int64_t activation = 0;
  for (const auto& [name, spec] : graph.quantizers()) (spec.is_weight ? weight : activation)++;
  return {
      {"nodes", graph.nodes().size()},
      {"nodes_without_quantizers", static_cast<int64_t>(graph.nodes().size()) - quantizer_nodes},
      {"nodes_by_op", by_op},
      {"inputs", graph.inputs().size()},
      {"outputs", graph.outputs().size()},
      {"tensors", graph.tensors().size()},
      {"float_modules", graph.float_modules().size()},
      {"weight_quantizers", weight},
      {"activation_quantizers", activation}};
}

// For each graph output: the qparams of the quantize_dequantize node producing it, or null.
json output_quantizers(const linquant::ir::Graph& graph) {
  json list = json::array();
  for (const linquant::ir::ValueId id : graph.outputs()) {
    const std::optional<size_t> producer = graph.producer(id);
    if (!producer || graph.nodes()[*producer].op != linquant::ir::Op::quantize_dequantize) {
      list.push_back(nullptr);
      continue;
    }
    const linquant::ir::Node& node = graph.nodes()[*producer];
    list.push_back({{"node", node.name},
                    {"scale", node.attrs.f("scale")},
                    {"zero_point", node.attrs.i("zero_point")},
                    {"quant_min", node.attrs.i("quant_min")},
                    {"quant_max", node.attrs.i("quant_max")},
                    {"activation_quantizer", node.attrs.s("activation_quantizer", "")}});
  }
  return list;
}

// Fresh inputs like the examples: randn for float tensors, ids in [0, max) for integer ones.
// Fresh random inputs shaped like the examples but with `batch` rows.
std::vector<at::Tensor> random_like(const std::vector<at::Tensor>& examples, int64_t batch) {
  std::vector<at::Tensor> inputs;
  for (const at::Tensor& example : examples) {
    std::vector<int64_t> shape = example.sizes().vec();
    shape[0] = batch;
    if (at::isFloatingType(example.scalar_type())) {
      inputs.push_back(at::randn(shape, example.options()));
    } else if (example.scalar_type() == at::kBool) {
      inputs.push_back(at::randint(0, 2, shape, example.options()));
    } else {
      const int64_t high = std::max<int64_t>(1, example.max().item<int64_t>());
      inputs.push_back(at::randint(0, high, shape, example.options()));
    }
  }
  return inputs;
}

// The first example of the batch; float values rounded to fp16 (the package's input type).
std::vector<at::Tensor> batch_one(const std::vector<at::Tensor>& examples) {
  std::vector<at::Tensor> inputs;
  for (const at::Tensor& example : examples) {
    at::Tensor first = example.narrow(0, 0, 1).clone();
    if (at::isFloatingType(first.scalar_type()))
      first = first.to(at::kHalf).to(first.scalar_type());
    inputs.push_back(first);
  }
  return inputs;
}

struct Driver {
  fs::path dir;
  int steps = 20;
  linquant::coreml::ComputePrecision precision = linquant::coreml::ComputePrecision::Float16;
  json result;

  void write_result() const {
    const fs::path tmp = dir / "result.json.tmp";
    {
      std::ofstream out(tmp);
      // Replace invalid UTF-8 in error messages rather than failing to write the result.
      out << result.dump(1, ' ', false, json::error_handler_t::replace) << "\n";
    }
    fs::rename(tmp, dir / "result.json");
  }

  // Runs one stage; false (and the error recorded) when it threw.
  bool stage(const std::string& name, const std::function<void()>& body) {
    result["running"] = name;
    write_result();
    const auto start = std::chrono::steady_clock::now();
    std::string kind;
    std::string message;
    try {
      body();
    } catch (const linquant::Error& e) {
      kind = "linquant::Error";
      message = e.what();
    } catch (const c10::Error& e) {
      kind = "c10::Error";
      message = e.what_without_backtrace();
    } catch (const std::exception& e) {
      kind = "std::exception";
      message = e.what();
    } catch (...) {
      kind = "unknown";
      message = "unknown exception";
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result["seconds"][name] = seconds;
    result.erase("running");
    if (!kind.empty()) {
      result["failed_stage"] = name;
      result["error"] = first_line(message);
      result["error_type"] = kind;
      result["error_full"] = truncated(message);
      std::cerr << "coverage_driver: " << name << " failed: " << first_line(message) << "\n";
      write_result();
      return false;
    }
    result["stage_reached"] = name;
    std::cerr << "coverage_driver: " << name << " ok (" << seconds << " s)\n";
    write_result();
    return true;
  }

  int run() {
    fs::path model_path = fs::absolute(dir).lexically_normal();
    if (model_path.filename().empty()) model_path = model_path.parent_path();  // "DIR/"
    result = {{"model_dir", model_path.string()},
              {"model", model_path.filename().string()},
              {"stages", kStages},
              {"stage_reached", "none"},
              {"failed_stage", nullptr},
              {"error", nullptr},
              {"steps", steps},
              {"milestones", {0, 2, 15, 15}},
              {"seconds", json::object()},
              {"threads", at::get_num_threads()}};
    for (const char* file : {"result.json", "finalized_output.pt", "finalized_input.pt"}) {
      fs::remove(dir / file);
    }

    torch::jit::Module module;
    std::vector<at::Tensor> examples;
    std::unique_ptr<linquant::LinearQuantizer> quantizer;
    linquant::GraphModule prepared{nullptr};
    linquant::GraphModule finalized{nullptr};

    const bool ok =
        stage("load",
              [&] {
                module = torch::jit::load((dir / "model.pt").string());
                examples = tensors_of(torch::jit::pickle_load(read_bytes(dir / "inputs.pt")));
                if (examples.empty()) throw std::runtime_error("inputs.pt holds no tensors");
                result["inputs"] = describe(examples);
              }) &&
        stage("capture",
              [&] {
                linquant::ModuleLinearQuantizerConfig global;
                global.set_milestones(linquant::Milestones{0, 2, 15, 15});
                linquant::LinearQuantizerConfig config;
                config.set_global(global);
                quantizer = std::make_unique<linquant::LinearQuantizer>(module, config);
              }) &&
        stage("prepare",
              [&] {
                prepared = quantizer->prepare(examples);
                result["prepared"] = graph_summary(prepared->graph());
                result["prepared"]["quantizer_modules"] = prepared->quantizers().size();
                result["prepared"]["parameters"] = prepared->parameters().size();
              }) &&
        stage("qat", [&] { train(*quantizer, prepared, examples); }) &&
        stage("finalize",
              [&] {
                finalized = quantizer->finalize();
                result["finalized"] = graph_summary(finalized->graph());
                result["output_quantizers"] = output_quantizers(finalized->graph());
                // The step of the first output, for the checker and the table.
                const json& first = result["output_quantizers"][0];
                result["output_scale"] = first.is_null() ? json(nullptr) : first["scale"];
              }) &&
        stage("export",
              [&] {
                linquant::coreml::SaveOptions options;  // iOS17, fp16 unless --fp32
                options.overwrite = true;
                options.precision = precision;
                for (const at::Tensor& example : examples) {
                  std::vector<int64_t> shape = example.sizes().vec();
                  shape[0] = 1;
                  options.input_shapes.push_back(shape);
                }
                const std::string package =
                    linquant::coreml::save(finalized, (dir / "model.mlpackage").string(), options);
                result["package"] = package;
                // The checker's per-op test runs on a Float32 twin: no fp16 rounding.
                options.precision = linquant::coreml::ComputePrecision::Float32;
                linquant::coreml::save(finalized, (dir / "model_fp32.mlpackage").string(), options);
                // ONNX where the model's ops map (check_onnx.py checks it); a refusal is data.
                linquant::onnx::SaveOptions onnx_options;
                onnx_options.overwrite = true;
                onnx_options.input_shapes = options.input_shapes;
                onnx_options.opset = linquant::onnx::minimum_opset(finalized->graph());
                try {
                  result["onnx"] = {
                      {"file", linquant::onnx::save(finalized, (dir / "model.onnx").string(),
                                                    onnx_options)}};
                  // The same with uint8 weights, whose integer kernels are exact on every CPU.
                  onnx_options.uint8_weights = true;
                  result["onnx"]["uint8_file"] = linquant::onnx::save(
                      finalized, (dir / "model.uint8.onnx").string(), onnx_options);
                } catch (const linquant::ExportError& e) {
                  result["onnx"] = {{"error", e.what()}};
                }
              }) &&
        stage("output", [&] {
          const std::vector<at::Tensor> inputs = batch_one(examples);
          const at::NoGradGuard no_grad;
          finalized->eval();
          const std::vector<at::Tensor> outputs = finalized->forward(inputs);
          write_bytes(dir / "finalized_input.pt", torch::jit::pickle_save(as_tuple(inputs)));
          write_bytes(dir / "finalized_output.pt", torch::jit::pickle_save(as_tuple(outputs)));
          result["finalized_outputs"] = describe(outputs);
          result["noise_floor"] = noise_floor(*finalized, inputs, outputs);
          save_activations(*finalized, inputs);
        });
    if (ok) {
      result["stage_reached"] = "done";
      write_result();
    }
    return ok ? 0 : 1;
  }

  // Every activation quantizer's output on the batch-1 input, for the checker's per-op test
  // (each quantizer of the package fed LibTorch's inputs): MODEL_DIR/finalized_activations.pt
  // (a tuple of tensors) and result.json "activations" (value name, scale, zero point).
  void save_activations(linquant::GraphModuleImpl& model, const std::vector<at::Tensor>& inputs) {
    const linquant::ir::Graph& graph = model.graph();
    std::vector<bool> keep(graph.num_values(), false);
    json described = json::array();
    std::vector<linquant::ir::ValueId> ids;
    for (const linquant::ir::Node& node : graph.nodes()) {
      if (node.op != linquant::ir::Op::quantize_dequantize) continue;
      const linquant::ir::ValueId id = node.outputs.at(0);
      keep[id] = true;
      ids.push_back(id);
      described.push_back({{"value", graph.value(id).name},
                           {"scale", node.attrs.f("scale")},
                           {"zero_point", node.attrs.i("zero_point")}});
    }
    const std::vector<c10::IValue> kept = model.record_values(inputs, keep);
    std::vector<at::Tensor> tensors;
    for (const linquant::ir::ValueId id : ids) tensors.push_back(kept.at(id).toTensor());
    write_bytes(dir / "finalized_activations.pt", torch::jit::pickle_save(as_tuple(tensors)));
    result["activations"] = described;
  }

  // How far the finalized model's own outputs move when its parameters change by the rounding
  // error of the exported program's arithmetic (about one part in a million for fp32, as
  // another summation order changes a convolution's result; half an fp16 ulp, 2^-11, for
  // fp16): the largest absolute change over five perturbations, per output. A quantized model
  // amplifies such noise where a value crosses a rounding boundary, and so does every other
  // implementation of the same arithmetic (Core ML's included): its error is judged against this
  // floor.
  json noise_floor(linquant::GraphModuleImpl& model, const std::vector<at::Tensor>& inputs,
                   const std::vector<at::Tensor>& outputs) {
    const double relative =
        precision == linquant::coreml::ComputePrecision::Float16 ? 1.0 / 2048 : 1e-6;
    std::vector<double> largest(outputs.size(), 0.0);
    std::vector<std::pair<at::Tensor, at::Tensor>> saved;  // parameter, original values
    for (const at::Tensor& p : model.parameters()) {
      if (at::isFloatingType(p.scalar_type())) saved.emplace_back(p, p.detach().clone());
    }
    for (int trial = 0; trial < 5; ++trial) {
      for (auto& [p, original] : saved) {
        p.detach().copy_(original *
                         (1.0 + relative * at::randn(original.sizes(), original.options())));
      }
      const std::vector<at::Tensor> moved = model.forward(inputs);
      for (size_t k = 0; k < outputs.size() && k < moved.size(); ++k) {
        const double change =
            (moved[k].to(at::kDouble) - outputs[k].to(at::kDouble)).abs().max().item<double>();
        largest[k] = std::max(largest[k], change);
      }
    }
    for (auto& [p, original] : saved) p.detach().copy_(original);
    return largest;
  }

  void train(linquant::LinearQuantizer& q, linquant::GraphModule& model,
             const std::vector<at::Tensor>& examples) {
    model->train();
    torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(1e-3));
    std::vector<at::Tensor> targets;
    json losses = json::array();
    for (int step = 0; step < steps; ++step) {
      q.step();
      const std::vector<at::Tensor> outputs = model->forward(random_like(examples, kTrainBatch));
      if (targets.empty()) {
        for (const at::Tensor& out : outputs) {
          targets.push_back(at::randn(out.sizes(), at::kFloat));
        }
      }
      at::Tensor loss = at::zeros({}, at::kFloat);
      for (size_t k = 0; k < outputs.size(); ++k) {
        loss = loss + at::mse_loss(outputs[k].to(at::kFloat), targets[k].to(at::kFloat));
      }
      optimizer.zero_grad();
      if (loss.requires_grad()) loss.backward();
      optimizer.step();
      const double value = loss.item<double>();
      losses.push_back(std::isfinite(value) ? json(value) : json(nullptr));
      if (!std::isfinite(value)) {
        result["qat_losses"] = losses;
        throw std::runtime_error("QAT loss is not finite at step " + std::to_string(step));
      }
    }
    result["qat_losses"] = losses;
    result["quantizer_steps"] = q.step_count();
  }
};

int usage() {
  std::cerr << "usage: coverage_driver MODEL_DIR [--steps 20] [--threads 1] [--fp32]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  Driver driver;
  driver.dir = argv[1];
  int threads = 1;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--steps" || arg == "--threads") && i + 1 < argc) {
      const int value = std::atoi(argv[++i]);
      if (value < (arg == "--steps" ? 0 : 1)) return usage();
      (arg == "--steps" ? driver.steps : threads) = value;
    } else if (arg == "--fp32") {  // a Float32 program: tells fp16 rounding from mapping errors
      driver.precision = linquant::coreml::ComputePrecision::Float32;
    } else {
      return usage();
    }
  }
  if (!fs::is_directory(driver.dir)) {
    std::cerr << "coverage_driver: " << driver.dir << " is not a directory\n";
    return 2;
  }
  at::set_num_threads(threads);
  at::manual_seed(0);
  try {
    return driver.run();
  } catch (const std::exception& e) {  // writing result.json itself failed
    std::cerr << "coverage_driver: " << e.what() << "\n";
    return 1;
  }
}
