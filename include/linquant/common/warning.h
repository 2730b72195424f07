// Warnings that do not stop the work (odd milestones, never-observed observers, ...).
// They go to stderr unless a handler is installed, which tests use to capture them.
#pragma once

#include <functional>
#include <string>

namespace linquant {

using WarningHandler = std::function<void(const std::string&)>;

// Reports a warning through the current handler.
void warn(const std::string& message);

// Installs a handler and returns the previous one; an empty handler restores stderr.
WarningHandler set_warning_handler(WarningHandler handler);

// Captures warnings for the lifetime of the object (for tests and for callers that
// want to show warnings their own way).
class ScopedWarningCapture {
 public:
  ScopedWarningCapture();
  ~ScopedWarningCapture();
  ScopedWarningCapture(const ScopedWarningCapture&) = delete;
  ScopedWarningCapture& operator=(const ScopedWarningCapture&) = delete;

  const std::string& text() const { return text_; }
  int count() const { return count_; }

 private:
  WarningHandler previous_;
  std::string text_;
  int count_ = 0;
};

}  // namespace linquant
