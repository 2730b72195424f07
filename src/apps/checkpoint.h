// Checkpoints of a `linquant quantize` QAT run: everything that decides the rest of the run
// (the quantizer's state, the optimizer's, the step, the random generator), in a folder
// beside the output (OUTPUT.checkpoint/checkpoint.pt, replaced atomically). A run resumed
// from it with the same options and threads ends bit-identical to an uninterrupted one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "linquant/quantizer/linear_quantizer.h"

namespace torch::optim {
class Optimizer;
}  // namespace torch::optim

namespace linquant::apps {

class Checkpoint {
 public:
  // `identity`: a JSON object of the options that must be the same to resume (model, data,
  // config, schedule); a resume with other options is refused naming the first difference.
  Checkpoint(const std::filesystem::path& output, std::string identity);

  const std::filesystem::path& folder() const { return folder_; }
  bool exists() const;

  // Writes the checkpoint after `step` steps (temporary file, then rename).
  void save(const LinearQuantizer& quantizer, torch::optim::Optimizer& optimizer,
            int64_t step) const;
  // Restores a checkpoint into a prepared quantizer and its optimizer; returns its step.
  // UsageError when it belongs to another run or is damaged.
  int64_t load(LinearQuantizer& quantizer, torch::optim::Optimizer& optimizer) const;
  void remove() const;

 private:
  std::filesystem::path folder_;
  std::string identity_;
};

// Thrown at the end of a step when SIGINT/SIGTERM/SIGHUP arrived during a checkpointed run,
// after the checkpoint is written; main() reports it and ends by that signal.
class Interrupted : public std::runtime_error {
 public:
  Interrupted(int signal_number, const std::string& message)
      : std::runtime_error(message), signal_number_(signal_number) {}
  int signal_number() const { return signal_number_; }

 private:
  int signal_number_;
};

}  // namespace linquant::apps
