// Time to get from a TorchScript file to a Core ML package: load, capture + prepare,
// finalize, and coreml::save (W8A8, iOS17), for one model per process. One calibration
// forward pass between prepare and finalize gives the observers a range; it is reported but
// is not part of the conversion time.
//
//   linquant_bench_pipeline MODEL.pt --input C,H,W [--threads N]
// Prints one JSON object.
#include <torch/script.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_common.h"
#include "linquant/export/coreml/save.h"
#include "linquant/quantizer/linear_quantizer.h"

namespace {

using linquant::bench::seconds_since;
using Clock = std::chrono::steady_clock;

int run(const std::string& model_path, std::vector<int64_t> input, int threads) {
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  input.insert(input.begin(), 1);
  const at::Tensor example = torch::randn(input);
  input[0] = 8;
  const at::Tensor calibration = torch::randn(input);

  auto start = Clock::now();
  torch::jit::Module module = torch::jit::load(model_path);
  const double load_s = seconds_since(start);

  start = Clock::now();
  linquant::LinearQuantizer quantizer(module);
  linquant::GraphModule prepared = quantizer.prepare({example});
  const double prepare_s = seconds_since(start);

  start = Clock::now();
  {
    const at::NoGradGuard no_grad;
    prepared->train();
    prepared->forward(calibration);
  }
  const double calibrate_s = seconds_since(start);

  start = Clock::now();
  linquant::GraphModule finalized = quantizer.finalize();
  const double finalize_s = seconds_since(start);

  const std::filesystem::path out =
      std::filesystem::temp_directory_path() /
      ("linquant_bench_" + std::to_string(::getpid()) + ".mlpackage");
  start = Clock::now();
  linquant::coreml::save(finalized, out.string());
  const double export_s = seconds_since(start);
  uintmax_t package_bytes = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(out)) {
    if (entry.is_regular_file()) package_bytes += entry.file_size();
  }
  std::filesystem::remove_all(out);

  const nlohmann::json result = {{"model", std::filesystem::path(model_path).stem().string()},
                                 {"threads", threads},
                                 {"load_s", load_s},
                                 {"prepare_s", prepare_s},
                                 {"calibrate_s", calibrate_s},
                                 {"finalize_s", finalize_s},
                                 {"export_s", export_s},
                                 {"prepare_finalize_export_s", prepare_s + finalize_s + export_s},
                                 {"package_mib", static_cast<double>(package_bytes) / (1 << 20)},
                                 {"peak_rss_mib", linquant::bench::peak_rss_mib()}};
  std::cout << result.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return linquant::bench::run_benchmark("linquant_bench_pipeline", [&] {
    if (argc < 4 || std::string(argv[2]) != "--input") {
      throw std::runtime_error(std::string("usage: ") + argv[0] +
                               " MODEL.pt --input C,H,W [--threads N]");
    }
    const std::vector<int64_t> input = linquant::bench::parse_shape(argv[3]);
    const int threads = argc >= 6 && std::string(argv[4]) == "--threads" ? std::stoi(argv[5]) : 2;
    return run(argv[1], input, threads);
  });
}
