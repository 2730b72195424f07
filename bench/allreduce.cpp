// Times the collectives of data-parallel training between the workers of a job (launched with
// torchrun's variables, e.g. by bench/data_parallel.py): one SUM all-reduce of N float32
// values, as DataParallel averages a model's gradients in one flat buffer, for each N given.
// Rank 0 prints one JSON line per size: bytes and the median milliseconds over the repetitions.
//
//   WORLD_SIZE=2 RANK=r MASTER_ADDR=127.0.0.1 MASTER_PORT=p linquant_bench_allreduce N...
#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "bench_common.h"
#include "linquant/distributed/data_parallel.h"
#include "linquant/distributed/launch.h"

int main(int argc, char** argv) {
  return linquant::bench::run_benchmark(argv[0], [&] {
    namespace dist = linquant::distributed;
    const auto placement = dist::placement_from_environment();
    if (!placement || argc < 2) {
      throw std::runtime_error("usage: WORLD_SIZE=.. RANK=.. MASTER_ADDR=.. MASTER_PORT=.. " +
                               std::string(argv[0]) + " FLOATS...");
    }
    const auto group = dist::join(*placement, std::chrono::seconds(120));
    constexpr int kWarmup = 3, kRepetitions = 20;
    for (int i = 1; i < argc; ++i) {
      const int64_t n = std::stoll(argv[i]);
      const at::Tensor buffer = at::ones({n}, at::kFloat);
      std::vector<double> times;
      for (int r = 0; r < kWarmup + kRepetitions; ++r) {
        const auto start = std::chrono::steady_clock::now();
        dist::all_reduce_sum(buffer, *group);
        if (r >= kWarmup) times.push_back(linquant::bench::seconds_since(start) * 1e3);
      }
      if (placement->rank == 0) {
        std::cout << nlohmann::json{{"floats", n},
                                    {"bytes", n * 4},
                                    {"workers", placement->world_size},
                                    {"median_ms", linquant::bench::median(times)}}
                         .dump()
                  << std::endl;
      }
    }
    return 0;
  });
}
