// Folders to delete if the process is ended by SIGINT, SIGTERM, SIGHUP or SIGPIPE. The signal
// handler only makes system calls (no allocation, no locks): a signal that lands inside malloc
// while training must not deadlock the cleanup.
#pragma once

#include <string>

namespace linquant::apps {

// Registers `path` (an absolute folder path) for deletion on those signals and installs the
// handlers on first use; returns a handle for forget_on_signal. At most a few paths at once
// (UsageError beyond that, or for a path longer than PATH_MAX).
int remove_on_signal(const std::string& path);
void forget_on_signal(int handle);

// While one lives, SIGINT, SIGTERM and SIGHUP are only recorded (see pending_signal()), so
// that a training loop can stop at the end of a step and write a checkpoint; a second signal
// ends the process at once, as without it.
class DeferredSignals {
 public:
  DeferredSignals();
  ~DeferredSignals();
  DeferredSignals(const DeferredSignals&) = delete;
  DeferredSignals& operator=(const DeferredSignals&) = delete;
};

// The signal recorded while deferred, or 0.
int pending_signal();

}  // namespace linquant::apps
