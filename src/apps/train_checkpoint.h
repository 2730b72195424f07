// What a `linquant train` checkpoint holds beyond the generic Checkpoint: where the run stands
// (phase, epoch, step, the epoch's running sums), the results of the phases done, the curves,
// and the models and optimizers of the current phase.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "linquant/config/linear_quantizer_config.h"
#include "train_run.h"
#include "training.h"

namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize
namespace torch::nn {
class Module;
}  // namespace torch::nn
namespace torch::optim {
class Optimizer;
}  // namespace torch::optim

namespace linquant {
class LinearQuantizer;
}

namespace linquant::apps {

enum class TrainPhase { float_training = 0, qat = 1 };

struct TrainPosition {
  TrainPhase phase = TrainPhase::float_training;
  int epoch = 0;            // within the phase
  int64_t epoch_steps = 0;  // steps of that epoch done
  EpochProgress progress;   // that epoch's running sums
};

// The options a resumed `train` must share with the interrupted one.
std::string train_identity(const TrainOptions& options, const LinearQuantizerConfig& config);

// In the float phase `float_model` is the model being trained with `float_optimizer`; in the
// QAT phase it is the float model as trained (for the float package), and `quantizer` and
// `qat_optimizer` are the QAT state.
struct TrainState {
  torch::nn::Module* float_model = nullptr;
  torch::optim::Optimizer* float_optimizer = nullptr;
  const LinearQuantizer* quantizer = nullptr;
  torch::optim::Optimizer* qat_optimizer = nullptr;
};

void write_train_state(torch::serialize::OutputArchive& archive, const TrainPosition& position,
                       const TrainResult& result, const TrainState& state);

// Read back: position and results right away; the model and optimizer parts are kept to be
// loaded when the run has built the objects they belong to.
struct TrainResume {
  TrainPosition position;
  double float_accuracy = 0, float_loss = 0;
  int64_t float_parameter_bytes = 0;
  ChartSeries float_curves, qat_curves;
  std::shared_ptr<torch::serialize::InputArchive> float_model, float_optimizer, quantizer,
      qat_optimizer;
};
TrainResume read_train_state(torch::serialize::InputArchive& archive);
// Loads TrainResume::float_model into the model (parameters and buffers by position).
void load_values(torch::serialize::InputArchive& archive, torch::nn::Module& module);

}  // namespace linquant::apps
