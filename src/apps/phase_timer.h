// Wall time per phase of a command, in the order the phases ran.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace linquant::apps {

class PhaseTimer {
 public:
  // Ends the current phase (if any) and starts `name`.
  void start(const std::string& name) {
    stop();
    current_ = name;
    begin_ = std::chrono::steady_clock::now();
  }
  void stop() {
    if (current_.empty()) return;
    add(current_, std::chrono::duration<double>(std::chrono::steady_clock::now() - begin_).count());
    current_.clear();
  }
  // A phase run in several pieces is listed once with its total.
  void add(const std::string& name, double seconds) {
    for (auto& [phase, total] : phases_) {
      if (phase == name) {
        total += seconds;
        return;
      }
    }
    phases_.emplace_back(name, seconds);
  }
  const std::vector<std::pair<std::string, double>>& phases() const { return phases_; }
  double total() const {
    double sum = 0;
    for (const auto& entry : phases_) sum += entry.second;
    return sum;
  }

 private:
  std::vector<std::pair<std::string, double>> phases_;
  std::string current_;
  std::chrono::steady_clock::time_point begin_;
};

}  // namespace linquant::apps
