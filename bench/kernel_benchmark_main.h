// The main() of the Google Benchmark programs: the same process set-up (tuned malloc, 2
// LibTorch threads, as bench/run.sh gives the training steps) before running every benchmark.
#pragma once

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <functional>

#include "bench_common.h"

namespace linquant::bench {

// register_benchmarks (optional) adds the benchmarks made at run time, after the flags are read.
inline int run_kernel_benchmarks(int argc, char** argv,
                                 const std::function<void()>& register_benchmarks = {}) {
  tune_malloc();
  at::set_num_threads(2);
  benchmark::Initialize(&argc, argv);
  if (register_benchmarks) register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace linquant::bench
