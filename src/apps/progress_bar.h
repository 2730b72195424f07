// Progress of one phase on stderr: step, loss, accuracy, rate and ETA. On a terminal the line
// is redrawn in place; otherwise (logs, CI, pipes) a plain line is printed every tenth of
// the phase and at its end, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace linquant::apps {

class ProgressBar {
 public:
  // `total` steps of `items_per_step` items each (the rate is shown in items per second).
  ProgressBar(std::string label, int64_t total_steps, std::string item_unit = "img");
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // After step `done` (1-based); `metrics` is shown as is, e.g. "loss 0.4312  acc 84.90%".
  void update(int64_t done, int64_t items_done, const std::string& metrics);
  // Prints the final line (once) with the elapsed time instead of the ETA.
  void finish(const std::string& metrics);

  double elapsed_seconds() const;

  // Terminal detection can be overridden with LINQUANT_PROGRESS=tty|lines|off.
  enum class Mode { tty, lines, off };
  static Mode mode();

 private:
  std::string line(int64_t done, const std::string& metrics, bool final) const;
  void print(const std::string& text, bool final);

  std::string label_;
  int64_t total_;
  std::string unit_;
  Mode mode_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  int64_t items_done_ = 0;
  int last_decile_ = -1;
  bool finished_ = false;
};

}  // namespace linquant::apps
