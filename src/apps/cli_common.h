// Small pieces every command shares: thread setup, config files, milestone options, and the
// formatting of sizes and durations in tables.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "linquant/common/error.h"
#include "linquant/common/file_io.h"
#include "linquant/config/linear_quantizer_config.h"

namespace linquant::apps {

// LibTorch on Debian defaults to one intra-op thread: use what the user asked for, or every core.
int default_thread_count();
// ATen's and OpenBLAS's thread pools both (UsageError below 1).
void set_thread_count(int threads);

// By extension: .json is JSON, anything else YAML (a superset of JSON). A missing file is an
// error here, before the parsers could mistake the path for an inline document.
LinearQuantizerConfig load_config_file(const std::string& path);

// "0,100,300,400" -> the four milestones; UsageError otherwise.
Milestones parse_milestones(const std::string& text);

// The config with `milestones` made effective (on the global config, which decides them),
// keeping the model's scheme and algorithm so validation still passes.
LinearQuantizerConfig with_milestones(LinearQuantizerConfig config, const Milestones& milestones);

// "1,3,28,28" -> {1, 3, 28, 28}; every dimension positive.
std::vector<int64_t> parse_shape(const std::string& text, const std::string& option);


std::string format_seconds(double seconds);  // "0.42 s", "1 min 05 s"
std::string format_clock(double seconds);    // "1:05", for ETAs

}  // namespace linquant::apps
