// Atomic outputs: temporary sibling + rename, and cleanup on failure or SIGINT/SIGTERM.
#include "staged_output.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "app_error.h"
#include "signal_cleanup.h"

namespace linquant::apps {
namespace fs = std::filesystem;
namespace {

// Temporary folders are named ".<destination name>.tmp-<pid>-XXXXXX" (and "...XXXXXX.old"
// while an old output is being replaced), so a later run can tell whose they are.
std::string staging_prefix(const fs::path& destination) {
  return "." + destination.filename().string() + ".tmp-";
}

// Removes the temporary folders of runs to `destination` whose process no longer exists.
void remove_abandoned_stagings(const fs::path& destination) {
  const std::string prefix = staging_prefix(destination);
  std::error_code error;
  for (fs::directory_iterator it(destination.parent_path(), error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789") != dash) {
      continue;  // not named by this scheme: not ours to judge
    }
    const long pid = std::strtol(rest.substr(0, dash).c_str(), nullptr, 10);
    if (pid <= 0 || pid == static_cast<long>(::getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // still running
    std::error_code ignored;
    fs::remove_all(it->path(), ignored);
  }
}

bool is_linquant_train_folder(const fs::path& path) {
  std::error_code error;
  if (fs::is_empty(path, error) && !error) return true;
  return fs::is_regular_file(path / "metrics.json", error) &&
         fs::is_regular_file(path / "quantized_model.pt", error);
}

// UsageError unless an existing `destination` is something `kind` may replace.
void check_replaceable(const fs::path& destination, OutputKind kind) {
  std::error_code error;
  const fs::file_status status = fs::symlink_status(destination, error);
  std::string refusal;
  switch (kind) {
    case OutputKind::file:
      if (!fs::is_regular_file(status)) refusal = "it is not a regular file";
      break;
    case OutputKind::package:
      if (!fs::is_directory(status) || !fs::is_regular_file(destination / "Manifest.json", error)) {
        refusal = "it is not a Core ML package (a folder with Manifest.json)";
      }
      break;
    case OutputKind::train_folder:
      if (!fs::is_directory(status) || !is_linquant_train_folder(destination)) {
        refusal = "it is not an empty folder or the output of `linquant train`";
      }
      break;
  }
  if (!refusal.empty()) {
    throw UsageError("refusing to replace " + destination.string() + ": " + refusal +
                     "; --overwrite replaces only what linquant writes there");
  }
}

fs::path absolute_normal(const fs::path& path) {
  std::string text = path.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return fs::absolute(fs::path(text)).lexically_normal();
}

}  // namespace

StagedOutput::StagedOutput(fs::path destination, bool overwrite, OutputKind kind)
    : destination_(destination.empty() ? fs::path() : absolute_normal(destination)),
      overwrite_(overwrite),
      kind_(kind) {
  if (destination.empty()) throw UsageError("the output path is empty");
  const fs::path parent = destination_.parent_path();
  std::error_code error;
  if (!fs::exists(parent, error)) {
    throw UsageError("cannot write " + destination.string() + ": folder " + parent.string() +
                     " does not exist");
  }
  if (!fs::is_directory(parent, error)) {
    throw UsageError("cannot write " + destination.string() + ": " + parent.string() +
                     " is not a folder");
  }
  if (fs::exists(fs::symlink_status(destination_, error))) {
    if (!overwrite_) {
      throw UsageError(destination.string() + " already exists (pass --overwrite to replace it)");
    }
    check_replaceable(destination_, kind_);
  }
  remove_abandoned_stagings(destination_);
  std::string pattern =
      (parent / (staging_prefix(destination_) + std::to_string(::getpid()) + "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw UsageError("cannot write " + destination.string() + ": cannot create a folder in " +
                     parent.string() + " (" + std::strerror(errno) + ")");
  }
  staging_ = pattern;
  // mkdtemp makes the folder private (0700); the output should get the usual permissions.
  const mode_t mask = umask(0);
  umask(mask);
  fs::permissions(staging_, static_cast<fs::perms>(0777 & ~mask), error);
  signal_handle_ = remove_on_signal(staging_.string());
}

StagedOutput::~StagedOutput() {
  forget_on_signal(signal_handle_);
  if (committed_) return;
  std::error_code error;
  fs::remove_all(staging_, error);
}

void StagedOutput::commit(const fs::path& entry) {
  const fs::path source = entry.empty() ? staging_ : staging_ / entry;
  std::error_code error;
  fs::path old;
  if (fs::exists(fs::symlink_status(destination_, error))) {
    if (!overwrite_)
      throw UsageError(destination_.string() + " already exists (pass --overwrite to replace it)");
    check_replaceable(destination_, kind_);  // it may have appeared since the start
    // Move the old output aside first so that a failed rename can put it back.
    old = staging_.string() + ".old";
    fs::rename(destination_, old, error);
    if (error) throw UsageError("cannot replace " + destination_.string() + ": " + error.message());
  }
  fs::rename(source, destination_, error);
  if (error) {
    std::error_code ignored;
    if (!old.empty()) fs::rename(old, destination_, ignored);
    throw UsageError("cannot write " + destination_.string() + ": " + error.message());
  }
  if (!old.empty()) fs::remove_all(old, error);
  if (!entry.empty()) fs::remove_all(staging_, error);
  committed_ = true;
  forget_on_signal(signal_handle_);
}

}  // namespace linquant::apps
