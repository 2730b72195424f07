// The checkpoint file is a torch::serialize archive: format tag, identity, step, the CPU
// random generator's state, and what the command adds.
#include "checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "app_error.h"
#include "linquant/common/file_io.h"
#include "signal_cleanup.h"

namespace linquant::apps {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFormat = "linquant.checkpoint";
constexpr const char* kFileName = "checkpoint.pt";

fs::path checkpoint_folder(const fs::path& output) {
  std::string text = output.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return fs::path(text + ".checkpoint");
}

// "steps: 400 in the checkpoint, 500 now" for the first option that differs.
std::string first_difference(const std::string& saved, const std::string& now) {
  const nlohmann::json a = nlohmann::json::parse(saved, nullptr, false);
  const nlohmann::json b = nlohmann::json::parse(now, nullptr, false);
  if (a.is_object() && b.is_object()) {
    for (const auto& [key, value] : b.items()) {
      if (!a.contains(key) || a[key] != value) {
        return key + ": " + (a.contains(key) ? a[key].dump() : "missing") + " in the checkpoint, " +
               value.dump() + " now";
      }
    }
  }
  return "the checkpoint was made by another version of linquant";
}

}  // namespace

Checkpoint::Checkpoint(const fs::path& output, std::string identity)
    : folder_(checkpoint_folder(output)), identity_(std::move(identity)) {}

bool Checkpoint::exists() const {
  std::error_code error;
  return fs::exists(folder_ / kFileName, error);
}

void Checkpoint::save(int64_t step, const StateWriter& write) const {
  torch::serialize::OutputArchive archive;
  archive.write("format", c10::IValue(std::string(kFormat)));
  archive.write("identity", c10::IValue(identity_));
  archive.write("step", c10::IValue(step));
  write(archive);
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  at::Tensor rng;
  {
    const std::lock_guard<std::mutex> lock(generator.mutex());
    rng = generator.get_state();
  }
  archive.write("rng", rng, /*is_buffer=*/true);
  std::string bytes;
  archive.save_to([&bytes](const void* data, size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  std::error_code error;
  fs::create_directory(folder_, error);
  if (error) throw UsageError("cannot create " + folder_.string() + ": " + error.message());
  const fs::path temporary = folder_ / (std::string(kFileName) + ".tmp");
  write_file_bytes(temporary, bytes);
  fs::rename(temporary, folder_ / kFileName, error);
  if (error)
    throw UsageError("cannot write " + (folder_ / kFileName).string() + ": " + error.message());
}

int64_t Checkpoint::load(const StateReader& read) const {
  const fs::path file = folder_ / kFileName;
  const std::string bytes = read_file_bytes(file);
  torch::serialize::InputArchive archive;
  c10::IValue format, identity, step;
  try {
    archive.load_from(bytes.data(), bytes.size());
    if (!archive.try_read("format", format) || !format.isString() ||
        format.toStringRef() != kFormat || !archive.try_read("identity", identity) ||
        !archive.try_read("step", step) || !identity.isString() || !step.isInt()) {
      throw UsageError(file.string() + ": not a linquant checkpoint");
    }
  } catch (const c10::Error&) {
    throw UsageError(file.string() + ": not a linquant checkpoint (damaged?)");
  }
  if (identity.toStringRef() != identity_) {
    throw UsageError("cannot resume from " + file.string() +
                     ": it belongs to a run with other "
                     "options (" +
                     first_difference(identity.toStringRef(), identity_) + ")");
  }
  try {
    read(archive);
    at::Tensor rng;
    archive.read("rng", rng, /*is_buffer=*/true);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    const std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(rng);
  } catch (const c10::Error& e) {
    throw UsageError(file.string() + ": damaged checkpoint (" +
                     std::string(e.what_without_backtrace()).substr(0, 200) + ")");
  }
  return step.toInt();
}

std::optional<Checkpoint> open_checkpoint(const fs::path& output, int64_t every, bool resume,
                                          std::string identity) {
  Checkpoint checkpoint(output, std::move(identity));
  if (checkpoint.exists() && !resume) {
    throw UsageError(checkpoint.folder().string() +
                     " holds the checkpoint of an interrupted run: add --resume to continue it, "
                     "or delete the folder");
  }
  if (resume && !checkpoint.exists()) {
    throw UsageError("--resume: no checkpoint in " + checkpoint.folder().string());
  }
  if (every < 0) throw UsageError("--checkpoint-every must be positive");
  if (every == 0 && !resume) return std::nullopt;
  return checkpoint;
}

void Checkpoint::after_step(int64_t step, int64_t total, int64_t every,
                            const StateWriter& write) const {
  if (step >= total) return;  // the run is about to finish: nothing left to resume
  const int signal_number = pending_signal();
  if (signal_number == 0 && (every <= 0 || step % every != 0)) return;
  save(step, write);
  if (signal_number != 0) {
    throw Interrupted(signal_number, "interrupted after step " + std::to_string(step) + " of " +
                                         std::to_string(total) + "; checkpoint in " +
                                         folder_.string() +
                                         ": run the same command with --resume to continue");
  }
}

void Checkpoint::remove() const {
  std::error_code error;
  fs::remove_all(folder_, error);
}

void save_optimizer(torch::serialize::OutputArchive& archive, torch::optim::Optimizer& optimizer,
                    const std::string& key) {
  torch::serialize::OutputArchive part;
  optimizer.save(part);
  archive.write(key, part);
}

void load_optimizer(torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer,
                    const std::string& key) {
  torch::serialize::InputArchive part;
  archive.read(key, part);
  optimizer.load(part);
}

}  // namespace linquant::apps
