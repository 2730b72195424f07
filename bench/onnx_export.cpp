// The LibTorch side of the ONNX latency benchmark (bench/onnx_latency.py): quantizes a
// TorchScript model with the default config (prepared, calibrated on random data, finalized),
// writes it as ONNX at batch 1 and 64 (int8 QDQ) next to the float model at the same batches,
// and times the TorchScript model's float forward pass in eval mode at both batches with the
// same thread count ONNX Runtime gets: the baseline of the table.
//
//   linquant_bench_onnx_export MODEL.pt --input C,H,W --out DIR [--threads N] [--runs N]
// Prints one JSON object: the files written and the LibTorch median milliseconds per batch.
#include <torch/script.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_common.h"
#include "linquant/export/onnx/save.h"
#include "linquant/frontend/capture.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace {

using linquant::bench::median;
using linquant::bench::seconds_since;
using Clock = std::chrono::steady_clock;

// Median wall time of forward passes, after two warm-up passes; at least `runs` passes and
// at least one second of them.
double median_ms(torch::jit::Module& module, const at::Tensor& x, int runs) {
  const at::NoGradGuard no_grad;
  for (int k = 0; k < 2; ++k) module.forward({x});
  std::vector<double> times;
  const auto begin = Clock::now();
  while (static_cast<int>(times.size()) < runs || seconds_since(begin) < 1.0) {
    const auto start = Clock::now();
    module.forward({x});
    times.push_back(1000.0 * seconds_since(start));
  }
  return median(times);
}

int run(const std::string& model_path, std::vector<int64_t> input, const std::string& out_dir,
        int threads, int runs) {
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  const std::filesystem::path dir(out_dir);
  std::filesystem::create_directories(dir);
  const std::string stem = std::filesystem::path(model_path).stem().string();
  torch::jit::Module module = torch::jit::load(model_path);
  module.eval();

  auto shape_of = [&](int64_t batch) {
    std::vector<int64_t> shape = input;
    shape.insert(shape.begin(), batch);
    return shape;
  };
  linquant::LinearQuantizer quantizer(module);
  linquant::GraphModule prepared = quantizer.prepare({torch::randn(shape_of(1))});
  {
    const at::NoGradGuard no_grad;
    prepared->train();
    for (int k = 0; k < 4; ++k) prepared->forward(torch::randn(shape_of(8)));
  }
  const linquant::GraphModule finalized = quantizer.finalize();
  const linquant::ir::Graph float_graph = linquant::frontend::capture(module);

  nlohmann::json files;
  for (int64_t batch : {1, 64}) {
    linquant::onnx::SaveOptions options;
    options.overwrite = true;
    options.input_shapes = {shape_of(batch)};
    const std::string b = "b" + std::to_string(batch);
    files["int8"][b] =
        linquant::onnx::save(finalized, (dir / (stem + ".int8." + b)).string(), options);
    files["float"][b] =
        linquant::onnx::save(float_graph, (dir / (stem + ".float." + b)).string(), options);
  }
  nlohmann::json libtorch_ms;
  libtorch_ms["b1"] = median_ms(module, torch::randn(shape_of(1)), runs);
  libtorch_ms["b64"] = median_ms(module, torch::randn(shape_of(64)), std::max(3, runs / 10));
  std::cout << nlohmann::json{{"model", stem},
                              {"input", input},
                              {"threads", threads},
                              {"files", files},
                              {"libtorch_float_ms", libtorch_ms}}
                   .dump()
            << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  linquant::bench::tune_malloc();
  std::string model, input, out;
  int threads = 2, runs = 30;
  for (int k = 1; k < argc; ++k) {
    const std::string arg = argv[k];
    auto next = [&]() -> std::string {
      if (k + 1 >= argc) throw std::runtime_error(arg + " needs a value");
      return argv[++k];
    };
    if (arg == "--input") {
      input = next();
    } else if (arg == "--out") {
      out = next();
    } else if (arg == "--threads") {
      threads = std::stoi(next());
    } else if (arg == "--runs") {
      runs = std::stoi(next());
    } else {
      model = arg;
    }
  }
  if (model.empty() || input.empty() || out.empty()) {
    std::cerr << "usage: linquant_bench_onnx_export MODEL.pt --input C,H,W --out DIR "
                 "[--threads N] [--runs N]\n";
    return 2;
  }
  try {
    return run(model, linquant::bench::parse_shape(input), out, threads, runs);
  } catch (const std::exception& e) {
    std::cerr << "linquant_bench_onnx_export: " << e.what() << "\n";
    return 1;
  }
}
