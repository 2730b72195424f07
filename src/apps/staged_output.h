// An output (folder or file) that appears all at once: everything is written into a hidden
// temporary sibling of the destination, renamed into place by commit(). A run that fails,
// or is interrupted by Ctrl-C, leaves nothing behind.
#pragma once

#include <filesystem>

namespace linquant::apps {

class StagedOutput {
 public:
  // Checks the destination right away (its parent must be a writable folder; an existing
  // destination needs `overwrite`) and creates the temporary folder. Throws UsageError.
  StagedOutput(std::filesystem::path destination, bool overwrite);
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
  bool committed_ = false;
};

}  // namespace linquant::apps
