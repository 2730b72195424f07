// Atomic outputs: temporary sibling + rename, and cleanup on failure or SIGINT/SIGTERM.
#include "staged_output.h"

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

#include "app_error.h"

namespace linquant::apps {
namespace fs = std::filesystem;
namespace {

// Folders being staged, removed by the signal handler if the run is interrupted. The handler
// runs fs::remove_all, which is not async-signal-safe, but the process is about to end anyway
// and a stale temporary folder is the worse outcome.
std::set<std::string>& live_stagings() {
  static std::set<std::string> paths;
  return paths;
}

extern "C" void remove_stagings_and_exit(int signal_number) {
  for (const std::string& path : live_stagings()) {
    std::error_code error;
    fs::remove_all(path, error);
  }
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

void install_signal_cleanup() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::signal(SIGINT, remove_stagings_and_exit);
    std::signal(SIGTERM, remove_stagings_and_exit);
  });
}

fs::path absolute_normal(const fs::path& path) {
  std::string text = path.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return fs::absolute(fs::path(text)).lexically_normal();
}

}  // namespace

StagedOutput::StagedOutput(fs::path destination, bool overwrite)
    : destination_(absolute_normal(destination)), overwrite_(overwrite) {
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
  if (fs::exists(fs::symlink_status(destination_, error)) && !overwrite_) {
    throw UsageError(destination.string() + " already exists (pass --overwrite to replace it)");
  }
  std::string pattern =
      (parent / ("." + destination_.filename().string() + ".tmp-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw UsageError("cannot write " + destination.string() + ": cannot create a folder in " +
                     parent.string() + " (" + std::strerror(errno) + ")");
  }
  staging_ = pattern;
  // mkdtemp makes the folder private (0700); the output should get the usual permissions.
  const mode_t mask = umask(0);
  umask(mask);
  fs::permissions(staging_, static_cast<fs::perms>(0777 & ~mask), error);
  install_signal_cleanup();
  live_stagings().insert(staging_.string());
}

StagedOutput::~StagedOutput() {
  live_stagings().erase(staging_.string());
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
  live_stagings().erase(staging_.string());
}

}  // namespace linquant::apps
