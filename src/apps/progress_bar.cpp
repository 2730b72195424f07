// Progress display; see progress_bar.h for the two output modes.
#include "progress_bar.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cli_common.h"

namespace linquant::apps {
namespace {

constexpr int kBarWidth = 24;
constexpr double kRedrawSeconds = 0.1;

}  // namespace

ProgressBar::Mode ProgressBar::mode() {
  if (const char* forced = std::getenv("LINQUANT_PROGRESS")) {
    if (std::strcmp(forced, "tty") == 0) return Mode::tty;
    if (std::strcmp(forced, "lines") == 0) return Mode::lines;
    if (std::strcmp(forced, "off") == 0) return Mode::off;
  }
  return isatty(STDERR_FILENO) ? Mode::tty : Mode::lines;
}

ProgressBar::ProgressBar(std::string label, int64_t total_steps, std::string item_unit)
    : label_(std::move(label)),
      total_(total_steps > 0 ? total_steps : 1),
      unit_(std::move(item_unit)),
      mode_(mode()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)) {}

ProgressBar::~ProgressBar() {
  // A phase cut short by an error leaves the cursor on a fresh line for the error message.
  if (!finished_ && mode_ == Mode::tty && last_decile_ >= 0) std::fputc('\n', stderr);
}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string ProgressBar::line(int64_t done, const std::string& metrics, bool final) const {
  const double elapsed = elapsed_seconds();
  const double fraction = static_cast<double>(done) / static_cast<double>(total_);
  std::string bar(kBarWidth, ' ');
  const int filled = static_cast<int>(fraction * kBarWidth);
  for (int i = 0; i < filled && i < kBarWidth; ++i) bar[i] = '=';
  if (filled < kBarWidth) bar[filled] = '>';
  const double rate = elapsed > 0 ? static_cast<double>(items_done_) / elapsed : 0.0;
  char head[160];
  std::snprintf(head, sizeof head, "%-18s [%s] %*lld/%lld", label_.c_str(), bar.c_str(),
                static_cast<int>(std::to_string(total_).size()), static_cast<long long>(done),
                static_cast<long long>(total_));
  char tail[96];
  if (final) {
    std::snprintf(tail, sizeof tail, "%6.0f %s/s  in %s", rate, unit_.c_str(),
                  format_clock(elapsed).c_str());
  } else {
    const double eta =
        done > 0 ? elapsed * static_cast<double>(total_ - done) / static_cast<double>(done) : -1;
    std::snprintf(tail, sizeof tail, "%6.0f %s/s  ETA %s", rate, unit_.c_str(),
                  format_clock(eta).c_str());
  }
  return std::string(head) + "  " + metrics + (metrics.empty() ? "" : "  ") + tail;
}

void ProgressBar::print(const std::string& text, bool final) {
  if (mode_ == Mode::tty) {
    std::fprintf(stderr, "\r\033[K%s%s", text.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  std::fflush(stderr);
}

void ProgressBar::update(int64_t done, int64_t items_done, const std::string& metrics) {
  items_done_ = items_done;
  if (mode_ == Mode::off || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (mode_ == Mode::tty) {
    if (std::chrono::duration<double>(now - last_draw_).count() < kRedrawSeconds && done < total_)
      return;
    last_draw_ = now;
    last_decile_ = 0;
    print(line(done, metrics, false), false);
    return;
  }
  const int decile = static_cast<int>(10 * done / total_);
  if (decile <= last_decile_ || decile >= 10) return;  // the final line comes from finish()
  last_decile_ = decile;
  if (decile > 0) print(line(done, metrics, false), false);
}

void ProgressBar::finish(const std::string& metrics) {
  if (finished_) return;
  finished_ = true;
  if (mode_ == Mode::off) return;
  print(line(total_, metrics, true), true);
}

}  // namespace linquant::apps
