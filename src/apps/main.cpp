// The `linquant` command: subcommands train, quantize, export, inspect. Every failure caused
// by the user's input ends with one line on stderr and exit code 2; nothing prints a stack trace.
#include <c10/util/Exception.h>
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "app_error.h"
#include "checkpoint.h"
#include "cli_common.h"
#include "command.h"
#include "linquant/common/communication_error.h"
#include "worker_launch.h"

namespace {

// glibc returns large activation buffers to the OS after every step and faults them back in
// the next (reference: LibTorch on Debian, gotcha 5); keeping them cuts a training step by ~25%.
void keep_large_allocations() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

int run(int argc, char** argv) {
  linquant::apps::remember_command_line(argc, argv);
  CLI::App root(
      "linquant: quantization-aware training (coremltools' LinearQuantizer) for LibTorch models,\n"
      "and export to Core ML, without Python.",
      "linquant");
  root.footer(
      "\nExamples:\n"
      "  linquant train                        # the Fashion-MNIST QAT tutorial, end to end\n"
      "  linquant train --quick -o /tmp/run    # the same in under a minute\n"
      "  linquant quantize --model m.pt --config qat.yaml --data DIR --steps 500 -o m_w8a8.pt\n"
      "  linquant export linquant_tutorial/quantized_model.pt -o model.mlpackage\n"
      "  linquant inspect linquant_tutorial/model.mlpackage\n"
      "\nRun `linquant COMMAND --help` for the options of a command.");
  root.require_subcommand(0, 1);
  root.set_version_flag("--version", "linquant " LINQUANT_CLI_VERSION);
  std::vector<linquant::apps::Command> commands = {
      linquant::apps::add_train_command(root), linquant::apps::add_quantize_command(root),
      linquant::apps::add_export_command(root), linquant::apps::add_inspect_command(root)};
  try {
    root.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return root.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return root.exit(help);
  } catch (const CLI::CallForVersion& version) {
    return root.exit(version);
  } catch (const CLI::ParseError& error) {
    // One line, like every other bad input, naming the command whose help explains it.
    std::string command = "linquant";
    for (const auto& candidate : commands) {
      if (candidate.app->parsed()) command += " " + candidate.app->get_name();
    }
    std::cerr << command << ": error: " << linquant::one_line(error.what()) << " (see `" << command
              << " --help`)\n";
    return linquant::apps::kExitBadInput;
  }
  for (const auto& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  std::cout << root.help();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  keep_large_allocations();
  using linquant::one_line;
  try {
    return run(argc, argv);
  } catch (const linquant::apps::Interrupted& interrupted) {
    // The checkpoint is written and the temporary output removed: end by the signal itself.
    std::cerr << "\nlinquant: " << interrupted.what() << "\n";
    std::signal(interrupted.signal_number(), SIG_DFL);
    std::raise(interrupted.signal_number());
    return 128 + interrupted.signal_number();
  } catch (const linquant::CommunicationError& error) {
    std::cerr << "linquant: error: " << one_line(error.what()) << "\n";
    return linquant::apps::kExitWorkerLost;
  } catch (const linquant::Error& error) {
    std::cerr << "linquant: error: " << one_line(error.what()) << "\n";
    return linquant::apps::kExitBadInput;
  } catch (const c10::Error& error) {
    // LibTorch rejecting a model or tensor the user gave (shapes, dtypes, files).
    std::cerr << "linquant: error: " << one_line(error.what_without_backtrace()) << "\n";
    return linquant::apps::kExitBadInput;
  } catch (const std::exception& error) {
    std::cerr << "linquant: internal error: " << one_line(error.what()) << "\n";
    return linquant::apps::kExitFailure;
  }
}
