// One training step of a TorchScript model, timed: LibTorch's own float step, or linquant's
// QAT step on the same module. One mode per process, so the peak memory is that mode's.
//
//   linquant_bench_train_step MODEL.pt MODE --input B,C,H,W [--steps N] [--warmup N] [--threads N]
//   MODE: float       the torch::jit::Module trained as loaded (the LibTorch C++ float step)
//         qat         linquant prepare() with the default config: observers and fake quant on
//         qat_frozen  milestones [0, 0, 2, never]: observers off after two steps (all timed
//                     steps come after that)
// Prints one JSON object. With LINQUANT_BENCH_TRACE=FILE set, the timed steps are also
// recorded with LibTorch's profiler into FILE (chrome://tracing format; bench/profile_summary.py
// totals it per operator).
#include <torch/jit.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/sgd.h>
#include <torch/script.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <memory>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_common.h"
#include "linquant/config/linear_quantizer_config.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace {

using linquant::bench::median;
using linquant::bench::parse_shape;
using linquant::bench::seconds_since;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string model_path, mode;
  std::vector<int64_t> input;
  int steps = 10, warmup = 3, threads = 2;
};

Options parse(int argc, char** argv) {
  if (argc < 3) {
    throw std::runtime_error("usage: " + std::string(argv[0]) +
                             " MODEL.pt float|qat|qat_frozen --input B,C,H,W [--steps N]"
                             " [--warmup N] [--threads N]");
  }
  Options options;
  options.model_path = argv[1];
  options.mode = argv[2];
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--input") options.input = parse_shape(value);
    else if (flag == "--steps") options.steps = std::stoi(value);
    else if (flag == "--warmup") options.warmup = std::stoi(value);
    else if (flag == "--threads") options.threads = std::stoi(value);
    else throw std::runtime_error("unknown option " + flag);
  }
  if (options.input.size() != 4) throw std::runtime_error("--input needs B,C,H,W");
  if (options.mode != "float" && options.mode != "qat" && options.mode != "qat_frozen") {
    throw std::runtime_error("unknown mode " + options.mode);
  }
  return options;
}

int run(const Options& options) {
  torch::set_num_threads(options.threads);
  torch::manual_seed(0);
  const at::Tensor inputs = torch::randn(options.input);
  const at::Tensor labels = torch::randint(0, 10, {options.input[0]});

  torch::jit::Module module = torch::jit::load(options.model_path);
  module.train();
  std::vector<at::Tensor> parameters;
  std::function<at::Tensor()> forward;
  std::optional<linquant::LinearQuantizer> quantizer;
  linquant::GraphModule prepared{nullptr};

  const auto prepare_start = Clock::now();
  if (options.mode == "float") {
    // Run the TorchScript graph op by op under ordinary autograd, as eager LibTorch would:
    // the optimizing executor's differentiable subgraphs made the float step about 1.6x
    // slower than PyTorch's eager step on the tutorial CNN, which would flatter every ratio.
    torch::jit::setGraphExecutorOptimize(false);
    for (const at::Tensor& p : module.parameters()) parameters.push_back(p);
    forward = [&] { return module.forward({inputs}).toTensor(); };
  } else {
    linquant::LinearQuantizerConfig config;
    if (options.mode == "qat_frozen") {
      linquant::ModuleLinearQuantizerConfig global;
      global.set_milestones(linquant::Milestones{0, 0, 2, 1000000});
      config.set_global(global);
    }
    quantizer.emplace(module, config);
    prepared = quantizer->prepare({inputs});
    prepared->train();
    parameters = prepared->parameters();
    forward = [&] { return prepared->forward(inputs); };
  }
  const double prepare_seconds = seconds_since(prepare_start);

  torch::optim::SGD optimizer(parameters, torch::optim::SGDOptions(1e-3).momentum(0.9));
  std::vector<double> step_ms;
  const char* trace_path = std::getenv("LINQUANT_BENCH_TRACE");
  std::unique_ptr<torch::autograd::profiler::RecordProfile> trace;
  for (int step = 0; step < options.warmup + options.steps; ++step) {
    if (trace_path && step == options.warmup) {
      trace = std::make_unique<torch::autograd::profiler::RecordProfile>(trace_path);
    }
    const auto start = Clock::now();
    optimizer.zero_grad();
    const at::Tensor loss = torch::nn::functional::cross_entropy(forward(), labels);
    loss.backward();
    optimizer.step();
    if (quantizer) quantizer->step();
    if (step >= options.warmup) step_ms.push_back(seconds_since(start) * 1e3);
  }
  trace.reset();  // writes the file
  nlohmann::json result = {
      {"side", "linquant"},
      {"model", std::filesystem::path(options.model_path).stem().string()},
      {"mode", options.mode},
      {"batch", options.input[0]},
      {"input", std::vector<int64_t>(options.input.begin() + 1, options.input.end())},
      {"threads", options.threads},
      {"steps", options.steps},
      {"step_ms_median", median(step_ms)},
      {"step_ms_min", *std::min_element(step_ms.begin(), step_ms.end())},
      {"step_ms_all", step_ms},
      {"prepare_s", prepare_seconds},
      {"peak_rss_mib", linquant::bench::peak_rss_mib()}};
  std::cout << result.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return linquant::bench::run_benchmark("linquant_bench_train_step",
                                        [&] { return run(parse(argc, argv)); });
}
