// An output (folder or file) that appears all at once: everything is written into a hidden
// temporary sibling of the destination, renamed into place by commit(). A run that fails, or
// ends by SIGINT, SIGTERM, SIGHUP or SIGPIPE, leaves nothing behind; what a SIGKILL leaves is
// removed by the next run to the same destination.
#pragma once

#include <filesystem>

namespace linquant::apps {

// What the destination is, which decides what `overwrite` may replace: only something linquant
// itself would have written there, never a device, a link or an unrelated folder.
enum class OutputKind {
  file,          // replaces a regular file
  package,       // replaces a Core ML package (a folder holding Manifest.json)
  train_folder,  // replaces an empty folder or a `linquant train` output folder
};

class StagedOutput {
 public:
  // Checks the destination right away (its parent must be a writable folder; an existing
  // destination needs `overwrite` and must be of `kind`), removes temporary folders that
  // killed runs left for the same destination, and creates the temporary folder. Throws
  // UsageError.
  StagedOutput(std::filesystem::path destination, bool overwrite, OutputKind kind);
  ~StagedOutput();
  StagedOutput(const StagedOutput&) = delete;
  StagedOutput& operator=(const StagedOutput&) = delete;

  // The temporary folder to write into.
  const std::filesystem::path& dir() const { return staging_; }
  const std::filesystem::path& destination() const { return destination_; }

  // Renames the temporary folder to the destination (replacing an old one when allowed).
  // For a single-file output, `entry` names the file inside dir() that becomes the destination.
  void commit(const std::filesystem::path& entry = {});

 private:
  std::filesystem::path destination_;
  std::filesystem::path staging_;
  bool overwrite_;
  OutputKind kind_;
  bool committed_ = false;
  int signal_handle_ = -1;
};

}  // namespace linquant::apps
