// `linquant train`: coremltools' LinearQuantizer tutorial as one command. Float training of
// a built-in net, QAT with LinearQuantizer, finalize, evaluation, the Core ML packages, the
// saved quantized model, metrics, the report table and a chart, all in one output folder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chart.h"
#include "linquant/data/idx_dataset.h"
#include "phase_timer.h"
#include "worker_launch.h"

namespace linquant::apps {

struct TrainOptions {
  std::string data_dir = kDefaultFashionMnistDir;
  std::string config_path;         // YAML/JSON LinearQuantizerConfig; default config if empty
  std::string model = "tutorial";  // tutorial | tutorial_bn
  int epochs = 4;                  // float epochs (the tutorial's 4)
  int qat_epochs = 4;              // QAT epochs (the tutorial's 4)
  int64_t batch_size = 128;
  double lr = 1e-3;  // Adam, eps 1e-7, as the tutorial
  uint64_t seed = 0;
  // One intra-op thread: the tutorial nets are too small to gain from more (measured on 2
  // cores: --quick 10-12 s with 1 thread, 12 s with 2 on a quiet machine and 36 s with 2 when
  // other processes share the cores, where OpenMP's waiting threads lose their time slices).
  int threads = 1;
  std::string output = "linquant_tutorial";
  std::string milestones;  // "a,b,c,d"; empty: the config's, else the default schedule
  std::string milestone_unit = "steps";  // steps | epochs
  std::string target = "iOS17";
  int64_t train_size = 0;  // use the first N training images (0: all)
  bool quick = false;
  bool overwrite = false;
  int64_t checkpoint_every = 0;  // steps (float and QAT counted together); 0: none
  bool resume = false;
  LaunchOptions launch;  // --nproc: data-parallel worker processes
};

// --quick: one float and one QAT epoch on the first 12000 training images.
void apply_quick_mode(TrainOptions& options);

// Runs the whole flow; returns the exit code. Bad input throws linquant::Error.
int run_train(const TrainOptions& options);

// Everything the final table and metrics.json report.
struct TrainResult {
  double float_accuracy = 0, fake_quant_accuracy = 0, finalized_accuracy = 0;
  double float_loss = 0, fake_quant_loss = 0, finalized_loss = 0;
  int64_t float_package_bytes = -1, quantized_package_bytes = -1;  // -1: not exported
  int64_t onnx_bytes = -1;                                         // -1: not exported
  std::string precision = "W8A8";  // the global config's weight/activation bits ("W4A8")
  int64_t float_parameter_bytes = 0, saved_model_bytes = 0;
  std::vector<int64_t> milestones_steps;
  int64_t steps_per_epoch = 0;
  int64_t train_images = 0, test_images = 0;
  float input_mean = 0.0f, input_std = 1.0f;  // model input = (pixel / 255 - mean) / std
  int threads = 1;                            // intra-op threads the run used (per worker)
  int workers = 1;                            // data-parallel worker processes
  ChartSeries float_curves, qat_curves;
  PhaseTimer timer;
  bool chart_drawn = false;
};

// metrics.json (all numbers, curves, options) and the table printed at the end.
std::string train_metrics_json(const TrainOptions& options, const TrainResult& result,
                               const std::string& config_json);
std::string train_summary_table(const TrainOptions& options, const TrainResult& result,
                                const std::string& output_dir);

}  // namespace linquant::apps
