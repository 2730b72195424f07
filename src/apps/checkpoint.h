// Checkpoints of a training run (`linquant quantize`, `linquant train`): everything that
// decides the rest of the run (models, optimizers, the step, the random generator), in a
// folder beside the output (OUTPUT.checkpoint/checkpoint.pt, replaced atomically). A run
// resumed from it with the same options and threads ends bit-identical to an uninterrupted one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize
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

  using StateWriter = std::function<void(torch::serialize::OutputArchive&)>;
  using StateReader = std::function<void(torch::serialize::InputArchive&)>;

  // Writes the checkpoint after `step` steps (temporary file, then rename): the random
  // generator's state and whatever `write` adds (models, optimizers, progress).
  void save(int64_t step, const StateWriter& write) const;
  // Restores the random generator and hands the archive to `read`; returns the step.
  // UsageError when it belongs to another run or is damaged.
  int64_t load(const StateReader& read) const;
  void remove() const;

  // The end of step `step` of `total`: saves a checkpoint every `every` steps (0: never), and
  // when a signal asked the run to stop (DeferredSignals), saves one and throws Interrupted.
  void after_step(int64_t step, int64_t total, int64_t every, const StateWriter& write) const;

 private:
  std::filesystem::path folder_;
  std::string identity_;
};

// The checkpoint of a run writing `output` when --checkpoint-every (every > 0) or --resume ask
// for one, else none. UsageError for a checkpoint an interrupted run left without --resume (it
// is never silently overwritten), for --resume without one, and for every < 0.
std::optional<Checkpoint> open_checkpoint(const std::filesystem::path& output, int64_t every,
                                          bool resume, std::string identity);

// Pieces of a checkpoint, each in a sub-archive under `key`.
void save_optimizer(torch::serialize::OutputArchive& archive, torch::optim::Optimizer& optimizer,
                    const std::string& key = "optimizer");
void load_optimizer(torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer,
                    const std::string& key = "optimizer");

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
