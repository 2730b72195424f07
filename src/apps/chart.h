// Training curves of float and QAT training, drawn by gnuplot (Debian's gnuplot-nox) into a
// PNG. The data file and the gnuplot script are kept beside it so the chart can be redrawn.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "training.h"

namespace linquant::apps {

struct ChartSeries {
  std::vector<CurvePoint> train;          // per-window training loss/accuracy
  std::vector<CurvePoint> test_accuracy;  // one point per epoch (loss, accuracy on the test set)
};

// Writes <stem>.dat and <stem>.gp into `dir` and runs gnuplot on it to make <stem>.png.
// Returns false (after a warning naming the script to run by hand) when gnuplot is missing or
// fails.
bool draw_training_chart(const std::filesystem::path& dir, const std::string& stem,
                         const std::string& title, const ChartSeries& float_series,
                         const ChartSeries& qat_series);

}  // namespace linquant::apps
