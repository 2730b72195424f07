// A subcommand of `linquant`: its CLI11 parser and the work it does once parsed.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace linquant::apps {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  // returns the exit code; throws linquant::Error for bad input
};

// One per file, each adding its subcommand (and its --help text with examples) to the root.
Command add_train_command(CLI::App& root);
Command add_quantize_command(CLI::App& root);
Command add_export_command(CLI::App& root);
Command add_inspect_command(CLI::App& root);

}  // namespace linquant::apps
