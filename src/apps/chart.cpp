// gnuplot chart of the training curves.
#include "chart.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

#include "linquant/common/file_io.h"
#include "linquant/common/warning.h"

extern char** environ;

namespace linquant::apps {
namespace fs = std::filesystem;
namespace {

// gnuplot strings in single quotes: a quote is doubled.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

void write_block(std::ostream& out, const std::string& name,
                 const std::vector<CurvePoint>& points) {
  out << "# " << name << ": epoch loss accuracy\n";
  for (const CurvePoint& p : points) out << p.epoch << ' ' << p.loss << ' ' << p.accuracy << '\n';
  if (points.empty()) out << "NaN NaN NaN\n";  // gnuplot rejects empty blocks
  out << "\n\n";
}

// Runs gnuplot without a shell (paths may hold any character), its output discarded.
bool run_gnuplot(const fs::path& script) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  const std::string path = script.string();
  char program[] = "gnuplot";
  char* argv[] = {program, const_cast<char*>(path.c_str()), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return false;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

bool draw_training_chart(const fs::path& dir, const std::string& stem, const std::string& title,
                         const ChartSeries& float_series, const ChartSeries& qat_series) {
  const fs::path data = dir / (stem + ".dat");
  const fs::path script = dir / (stem + ".gp");
  const fs::path image = dir / (stem + ".png");
  {
    std::ostringstream out;
    out << "# linquant training curves; blocks (gnuplot index): 0 float train, 1 QAT train, "
           "2 float test, 3 QAT test\n";
    write_block(out, "float train", float_series.train);
    write_block(out, "QAT train", qat_series.train);
    write_block(out, "float test", float_series.test_accuracy);
    write_block(out, "QAT test", qat_series.test_accuracy);
    write_file_bytes(data, out.str());
  }
  {
    // Paths are relative to the script's folder (gnuplot runs with `cd` there), so the folder
    // can be moved and the chart redrawn with `gnuplot curves.gp`.
    std::ostringstream out;
    const std::string dat = quoted(stem + ".dat");
    // One curve: data block `index` (see the .dat header), column 2 (loss) or 3 (accuracy).
    auto curve = [&](int index, int column, const std::string& style, const char* color,
                     const std::string& title) {
      return dat + " index " + std::to_string(index) + " using 1:" + std::to_string(column) +
             " with " + style + " lc rgb " + color + " title " + quoted(title);
    };
    const std::string train_line = "lines lw 2", test_line = "linespoints lw 1 dt 2 pt 7";
    out << "# Redraw with: gnuplot " << stem << ".gp (from this folder)\n"
        << "set terminal pngcairo size 1000,760 font 'Sans,10'\n"
        << "set output " << quoted(stem + ".png") << "\n"
        << "set multiplot layout 2,1 title " << quoted(title) << "\n"
        << "set grid\nset key top right\nset xlabel 'epoch'\n"
        << "float_color = '#1f77b4'\nqat_color = '#d62728'\n"
        << "set ylabel 'training loss'\n"
        << "plot " << curve(0, 2, train_line, "float_color", "float, train") << ", \\\n  "
        << curve(1, 2, train_line, "qat_color", "QAT (W8A8 fake quant), train") << ", \\\n  "
        << curve(2, 2, test_line, "float_color", "float, test loss") << ", \\\n  "
        << curve(3, 2, test_line, "qat_color", "QAT, test loss") << "\n"
        << "set ylabel 'accuracy (%)'\nset key bottom right\n"
        << "plot " << curve(0, 3, "lines lw 1", "float_color", "float, train") << ", \\\n  "
        << curve(1, 3, "lines lw 1", "qat_color", "QAT, train") << ", \\\n  "
        << curve(2, 3, "linespoints lw 2 pt 7", "float_color", "float, test") << ", \\\n  "
        << curve(3, 3, "linespoints lw 2 pt 7", "qat_color", "QAT, test") << "\n"
        << "unset multiplot\n";
    write_file_bytes(script, out.str());
  }
  // gnuplot resolves the relative names against its working directory: run it from `dir`
  // through a small wrapper script that changes there first.
  const fs::path wrapper = dir / ("." + stem + ".run.gp");
  {
    write_file_bytes(wrapper,
                     "cd " + quoted(dir.string()) + "\nload " + quoted(stem + ".gp") + "\n");
  }
  const bool drawn = run_gnuplot(wrapper);
  std::error_code error;
  fs::remove(wrapper, error);
  if (!drawn || !fs::exists(image, error)) {
    fs::remove(image, error);
    warn(
        "gnuplot is not installed or failed: the training chart was not drawn (install gnuplot-nox "
        "and run `gnuplot " +
        stem + ".gp` in the output folder)");
    return false;
  }
  return true;
}

}  // namespace linquant::apps
