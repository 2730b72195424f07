// Shared by the benchmark programs: process set-up, what they report about the process, and
// small command-line and statistics helpers.
#pragma once

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace linquant::bench {

// Large activation buffers must stay in the heap between steps instead of going back to the
// kernel and being faulted in again (libtorch-debian.md gotcha 5); PyTorch's side gets the
// same through GLIBC_TUNABLES in bench/run.sh.
inline void tune_malloc() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

// Peak resident set size of this process so far, in MiB (VmHWM).
inline double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0.0;
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

inline double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

// The body of a benchmark's main(): malloc tuned first; a failure is printed with the
// program's name and exits 1.
template <typename Body>
int run_benchmark(const char* program, Body body) {
  tune_malloc();
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
}

// "1,28,28" -> {1, 28, 28}
inline std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> shape;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) shape.push_back(std::stoll(part));
  return shape;
}

}  // namespace linquant::bench
