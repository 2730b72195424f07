// Shared command-line helpers.
#include "cli_common.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "app_error.h"

namespace linquant::apps {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, separator)) parts.push_back(part);
  return parts;
}

int64_t parse_integer(const std::string& text, const std::string& what) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size())
    throw UsageError(what + ": \"" + text + "\" is not an integer");
  return value;
}

}  // namespace

int default_thread_count() {
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(cores);
}

void set_thread_count(int threads) {
  if (threads < 1) throw UsageError("--threads must be at least 1, got " + std::to_string(threads));
  at::set_num_threads(threads);
  // Linear layers run in OpenBLAS (Debian's libblas.so.3 alternative), whose own thread pool
  // follows OMP_NUM_THREADS, not ATen: without this a run's results (summation order) and
  // speed would depend on the environment. Looked up at run time, since the alternative may
  // be another BLAS.
  using SetBlasThreads = void (*)(int);
  if (void* symbol = dlsym(RTLD_DEFAULT, "openblas_set_num_threads")) {
    reinterpret_cast<SetBlasThreads>(symbol)(threads);
  }
}

LinearQuantizerConfig load_config_file(const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) throw ConfigError("config file not found: " + path);
  if (std::filesystem::is_directory(status)) {
    throw ConfigError("config file " + path + " is a folder, not a file");
  }
  if (!std::filesystem::is_regular_file(status)) {
    throw ConfigError("config file " + path + " is not a regular file");
  }
  return ends_with(path, ".json") ? LinearQuantizerConfig::from_json(path)
                                  : LinearQuantizerConfig::from_yaml(path);
}

Milestones parse_milestones(const std::string& text) {
  const std::vector<std::string> parts = split(text, ',');
  if (parts.size() != 4) {
    throw UsageError(
        "--milestones needs four comma-separated integers (observers on, fake quant "
        "on, observers off, BatchNorm frozen), got \"" +
        text + "\"");
  }
  Milestones milestones{};
  for (size_t i = 0; i < 4; ++i) {
    milestones[i] = parse_integer(parts[i], "--milestones");
    if (milestones[i] < 0)
      throw UsageError("--milestones: values must be >= 0, got \"" + text + "\"");
  }
  return milestones;
}

LinearQuantizerConfig with_milestones(LinearQuantizerConfig config, const Milestones& milestones) {
  if (config.global_config) {
    ModuleLinearQuantizerConfig global = *config.global_config;
    global.set_milestones(milestones);
    config.set_global(global);
    return config;
  }
  ModuleLinearQuantizerConfig global;
  global.set_quantization_scheme(config.quantization_scheme())
      .set_algorithm(config.algorithm())
      .set_milestones(milestones);
  config.set_global(global);
  return config;
}

std::vector<int64_t> parse_shape(const std::string& text, const std::string& option) {
  std::vector<int64_t> shape;
  for (const std::string& part : split(text, ',')) {
    const int64_t dim = parse_integer(part, option);
    if (dim < 1) throw UsageError(option + ": dimensions must be positive, got \"" + text + "\"");
    shape.push_back(dim);
  }
  if (shape.empty()) throw UsageError(option + ": empty shape");
  return shape;
}

std::string format_seconds(double seconds) {
  char buffer[32];
  if (seconds < 60) {
    std::snprintf(buffer, sizeof buffer, "%.2f s", seconds);
  } else {
    const long total = std::lround(seconds);
    std::snprintf(buffer, sizeof buffer, "%ld min %02ld s", total / 60, total % 60);
  }
  return buffer;
}

std::string format_clock(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?:??";
  const long total = std::lround(seconds);
  char buffer[32];
  if (total >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%ld:%02ld:%02ld", total / 3600, total / 60 % 60,
                  total % 60);
  } else {
    std::snprintf(buffer, sizeof buffer, "%ld:%02ld", total / 60, total % 60);
  }
  return buffer;
}

}  // namespace linquant::apps
